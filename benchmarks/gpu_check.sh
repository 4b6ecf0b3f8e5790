#!/usr/bin/env bash
# The CUDA checks, for a machine with an NVIDIA GPU and the backend's packages:
#   bash benchmarks/gpu_check.sh [OUT_DIR]
# CUDA tests, the GPU benchmarks (calibration global case in-process and through the whole
# command, training samples/s, global-grid prediction), the CPU scaling benchmark on the
# machine's cores, and the demo workflow's backend commands with --device cuda, timed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-/tmp/cwsc-gpu}}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -m cwsc --json info | tail -1 | cut -c1-700; echo
echo "== CUDA tests"; $PY -m pytest -q -p no:cacheprovider tests/backend -k "cuda or triton" --ignore tests/cwsc/hydro/test_metrics.py 2>&1 | tail -4
t() { local s=$(date +%s%N); "$@"; local rc=$?; echo "   -> rc $rc, $(( ($(date +%s%N) - s) / 1000000 )) ms"; }
echo "== GPU benchmarks"
CWSC_BENCH_QUICK=${CWSC_BENCH_QUICK:-1} timeout 200 $PY -c "import benchmarks.bench_calibrate as b; b.bench_global()"
echo "== global case, the whole calibrate command on CUDA (60,000 land cells x 360 months x 3 models)"
timeout 300 $PY -m benchmarks global 2>&1 | grep -vE "^$|^---"
echo "== CPU scaling on this machine's cores (workers 1, 2, 4 ... N; Dask; resume)"
timeout 420 $PY -m benchmarks scaling 2>&1 | grep -vE "^$"
[ -n "${CWSC_GPU_ML_BENCH:-}" ] && CWSC_BENCH_QUICK=1 timeout 300 $PY -m benchmarks train predict 2>&1 | grep -iE "gpu|===|fail|error" 
D=$OUT/demo; mkdir -p $D
echo "== demo region, backend commands on CUDA"
t $PY -m cwsc --json demo-data --out $D/data --seed 42 | tail -1 | cut -c1-200
t $PY -m cwsc --json calibrate --precip $D/data/precipitation.tif --pet $D/data/pet.tif \
  --runoff $D/data/runoff.tif --device cuda --seed 42 --out-cwsc $D/cwsc_labels.tif \
  --out-kge $D/kge.tif --out-details $D/details.tif | tail -1 | cut -c1-600
t $PY -m cwsc --json mask --labels $D/cwsc_labels.tif --kge $D/kge.tif --out $D/masked.tif | tail -1
t $PY -m cwsc --json train --predictors $D/data/predictors/*.tif --labels $D/masked.tif --device cuda \
  --seed 42 --out-model $D/model.pt --out-report $D/report.html | tail -1 | cut -c1-600
t $PY -m cwsc --json predict --model $D/model.pt --predictors $D/data/predictors/*.tif --device cuda \
  --out $D/cwsc.tif | tail -1 | cut -c1-300
t $PY -m cwsc --json evaluate --cwsc $D/cwsc.tif --reference $D/data/true_cwsc.tif --out-report $D/eval.html \
  | tail -1 | cut -c1-400
