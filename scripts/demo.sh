#!/usr/bin/env bash
# `make demo`: the whole CWSC workflow on the built-in twin-experiment region, driven
# through qgis_process exactly as a scripting user would. Results land in demo-output/.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s%3N)
# QGIS first: without it (and without root) stop at once with the command to run.
bash scripts/ensure_qgis.sh
make --no-print-directory setup
t1=$(date +%s%3N)
make --no-print-directory deploy
t2=$(date +%s%3N)
export CWSC_SETUP_MS=$((t1 - t0)) CWSC_DEPLOY_MS=$((t2 - t1))
export QT_QPA_PLATFORM=offscreen
exec /usr/bin/python3 scripts/demo.py "$@"
