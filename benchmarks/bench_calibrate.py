"""Calibration throughput and quality: the lockstep SCE-UA against spotpy's sceua.

Prints, measured in the same run on the same synthetic DWBM cells (240 months):
- ms per cell and model of ``calibrate_model`` with the default settings (target <= 5 ms):
  C kernels (the CPU default), torch compiled and torch eager, with the speed ratios;
- spotpy's ``sceua`` with 10 restarts (the original's protocol) on a sample of those cells:
  cells/s, the throughput ratio and both median calibration KGEs (target: within 0.01);
- the global case (60,000 cells x 360 months x 3 models): measured on CUDA when present,
  else a projection from the CPU scaling, labelled as such;
- the peak RSS of ``python -m cwsc calibrate`` on a 720 x 360 grid of 360 months.

Environment: CWSC_BENCH_QUICK=1 shrinks everything; CWSC_BENCH_CELLS, CWSC_BENCH_SPOTPY_CELLS
set the sample sizes; CWSC_BENCH_RESTARTS=1 adds the restarts measurement (median
calibration KGE of the best of r restarts against ten); CWSC_BENCH_RSS=0 skips the RSS run.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

QUICK = os.environ.get("CWSC_BENCH_QUICK", "0") == "1"
MONTHS = 240
SPOTPY_SEEDS = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29)  # the original's ten runs
TARGET_MS = 5.0


def _cells(quick_default: int, full_default: int, var: str) -> int:
    return int(os.environ.get(var, quick_default if QUICK else full_default))


def twin_cells(cells: int, months: int = MONTHS, seed: int = 0, model: str = "DWBM"):
    """Synthetic cells of ``model``: forcing and noisy runoff (cells, months)."""
    from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

    p, e = synthetic_forcing(cells, months, seed)
    prm = random_params(model, cells, seed)
    q = synthetic_runoff(model, p, e, prm, noise=0.15, seed=seed)
    return p, e, q


# --------------------------------------------------------------------------------------
# spotpy's SCE-UA needs one model run per call: a plain-Python DWBM (conserving), float64.
# --------------------------------------------------------------------------------------


def _fu(phi: float, a: float) -> float:
    if phi <= 0.0:
        return 0.0
    m = max(phi, 1.0)
    u = math.exp(-a * abs(math.log(phi)))
    return max(0.0, (1.0 + phi - m) - m * math.expm1(math.log1p(u) / a))


def dwbm_python(p, e0, sc, a1, a2, kg):
    """The conserving DWBM of cwsc.hydro.models, one cell, plain Python (for spotpy)."""
    sc = max(sc, 0.1)
    s, g = 0.1 * sc, 0.001
    out = []
    for pt, et in zip(p, e0):
        if pt >= 0.01:
            e0p = min(et, 50.0 * pt)
            x = min(pt * _fu(max((e0p + sc - s) / pt, 0.0), a1), pt)
        else:
            e0p, x = et, pt
        qd = pt - x
        w = x + s
        if w > 1e-12:
            e0w = min(e0p, 50.0 * w)
            y = min(w * _fu((e0w + sc) / w, a2), w)
            ev = min(w * _fu(e0w / w, a2), y)
        else:
            y = ev = 0.0
        r = w - y
        s = y - ev
        qb = kg * g
        g = g - qb + r
        out.append(qd + qb)
    return np.array(out)


def spotpy_calibrate(p, e, q, warmup: int, cal_end: int, max_evaluations: int = 1000):
    """Best calibration KGE of spotpy's sceua with ten seeded runs (seed protocol) per cell."""
    import spotpy

    from cwsc.hydro.metrics import kge
    from cwsc.hydro.models import PARAMETERS

    class Setup:
        def __init__(self, pc, ec, qc):
            self.pc, self.ec, self.qc = pc, ec, qc
            self.params = [
                spotpy.parameter.Uniform(k, lo, hi, optguess=min(max(init, lo), hi))
                for k, (lo, hi, init) in PARAMETERS["DWBM"].items()
            ]

        def parameters(self):
            return spotpy.parameter.generate(self.params)

        def simulation(self, x):
            return dwbm_python(self.pc, self.ec, *[float(v) for v in x])

        def evaluation(self):
            return self.qc

        def objectivefunction(self, simulation, evaluation):
            k = kge(np.asarray(simulation)[warmup:cal_end], evaluation[warmup:cal_end])
            return 1.0 - float(k) if np.isfinite(k) else 1e6

    out = []
    for i in range(p.shape[0]):
        best = -np.inf
        for seed in SPOTPY_SEEDS:
            np.random.seed(seed)
            sampler = spotpy.algorithms.sceua(
                Setup(p[i].astype(float), e[i].astype(float), q[i].astype(float)),
                dbformat="ram",
                save_sim=False,
                random_state=seed,
            )
            _quiet(sampler.sample, max_evaluations, ngs=2, kstop=10, pcento=1e-2, peps=1e-3)
            res = sampler.getdata()
            best = max(best, 1.0 - float(np.min(res["like1"])))
        out.append(best)
    return np.array(out)


def _quiet(fn, *args, **kwargs):
    """spotpy prints a lot; keep the benchmark's output readable."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------------------


def bench_throughput(cells: int):
    """ms per cell and model, DWBM, default settings, on the three CPU paths in the same run:
    the C kernels (the default on CPU, float32), torch's compiled month blocks (the fallback
    where no C compiler is found; compile time printed apart, as it is paid once per process
    and cached on disk; CWSC_BENCH_COMPILED=0 skips it) and torch eager (the baseline)."""
    import torch

    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.calibration.shard import calibrate_model
    from cwsc.hydro.engines import cpu as cpu_kernels
    from cwsc.hydro.engines.selection import Tuning
    from cwsc.hydro.options import DEFAULT_RESTARTS

    torch.set_num_threads(os.cpu_count() or 1)
    p, e, q = twin_cells(cells)
    paths = [("C kernels", Tuning(kernels=True))]
    if not cpu_kernels.available():
        print(f"C kernels: not available here ({cpu_kernels.why_not()})")
        paths = []
    if os.environ.get("CWSC_BENCH_COMPILED", "1") != "0":
        t0 = time.perf_counter()
        calibrate_model(
            "DWBM",
            p[:16],
            e[:16],
            q[:16],
            CalibrationConfig(models=("DWBM",)),
            tuning=Tuning(kernels=False, compile=True),
        )
        print(
            f"torch compiled: compiling the DWBM month blocks and objective (or loading them "
            f"from the inductor cache): {time.perf_counter() - t0:.1f} s in this process; the "
            f"shard workers load them from the cache",
            flush=True,
        )
        paths.append(("torch compiled", Tuning(kernels=False, compile=True)))
    paths.append(("torch eager", Tuning(kernels=False, compile=False)))
    results = {}
    for label, how in paths:
        config = CalibrationConfig(models=("DWBM",))
        t0 = time.perf_counter()
        lab = calibrate_model("DWBM", p, e, q, config, tuning=how)
        dt = time.perf_counter() - t0
        ms = dt / cells * 1e3
        results[label] = (lab, ms)
        evals = float(np.mean(lab.evaluations)) / DEFAULT_RESTARTS
        print(
            f"ours ({label}): DWBM, {cells} cells x {MONTHS} months, {DEFAULT_RESTARTS} restarts "
            f"({evals:.0f} evaluations per restart on average), {os.cpu_count()} cores: "
            f"{dt:.1f} s = {ms:.2f} ms per cell and model (target <= {TARGET_MS} ms: "
            f"{'met' if ms <= TARGET_MS else 'NOT met'}), {cells / dt:.1f} cells/s",
            flush=True,
        )
        print(
            f"ours ({label}): median calibration KGE {np.nanmedian(lab.kge_cal):.4f}, "
            f"validation {np.nanmedian(lab.kge_val):.4f}",
            flush=True,
        )
    base = results["torch eager"][1]
    for label, (_, ms) in results.items():
        if label != "torch eager":
            print(f"{label} / torch eager speed: {base / ms:.2f}x")
    lab, ms = results[paths[0][0]]
    return p, e, q, lab, ms


def bench_spotpy(p, e, q, lab, ms, sample: int) -> None:
    from cwsc.hydro.calibration.config import CalibrationConfig

    w, c = CalibrationConfig().periods(MONTHS)
    t0 = time.perf_counter()
    kge_spot = spotpy_calibrate(p[:sample], e[:sample], q[:sample], w, c)
    dt = time.perf_counter() - t0
    spot_cps = sample / dt
    ours_cps = 1e3 / ms
    ours_med = float(np.nanmedian(lab.kge_cal[:sample]))
    spot_med = float(np.nanmedian(kge_spot))
    print(
        f"spotpy sceua (10 seeded runs, maxn 1000, ngs 2, kstop 10): {sample} cells in {dt:.1f} s "
        f"= {spot_cps:.3f} cells/s; ours {ours_cps:.1f} cells/s: ratio {ours_cps / spot_cps:.0f}x"
    )
    print(
        f"median calibration KGE on those {sample} cells: ours {ours_med:.4f}, spotpy "
        f"{spot_med:.4f}, difference {ours_med - spot_med:+.4f} (target: within 0.01)"
    )


def bench_restarts(cells: int, model: str = "DWBM") -> None:
    """Median calibration KGE of the best of r restarts, against ten restarts."""
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.calibration.shard import calibrate_model

    p, e, q = twin_cells(cells, seed=1, model=model)
    lab = calibrate_model(model, p, e, q, CalibrationConfig(models=(model,), restarts=10))
    obj = lab.restart_objective
    ten = float(np.nanmedian(1.0 - np.nanmin(obj, axis=1)))
    print(
        f"restarts ({model}, {cells} cells, {MONTHS} months): median calibration KGE of 10 restarts {ten:.4f}"
    )
    for r in (1, 2, 3, 5):
        med = float(np.nanmedian(1.0 - np.nanmin(obj[:, :r], axis=1)))
        print(
            f"  best of {r:2d}: {med:.4f} ({med - ten:+.4f}; within 0.005: "
            f"{'yes' if med >= ten - 0.005 else 'no'})"
        )


def bench_global() -> None:
    import torch

    cells, months, models = 60_000, 360, 3
    if torch.cuda.is_available():
        from cwsc.hydro.calibration.config import CalibrationConfig
        from cwsc.hydro.calibration.driver import calibrate

        n = 6_000 if QUICK else cells
        p, e, q = twin_cells(n, months, seed=2)
        config = CalibrationConfig(device="cuda")
        calibrate(p[:256], e[:256], q[:256], config)  # warm-up (compile, CUDA init)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        calibrate(p, e, q, config)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        scale = cells / n
        label = "measured" if n == cells else f"measured on {n} cells, scaled x{scale:.0f}"
        print(
            f"global case on {torch.cuda.get_device_name()}: {cells} cells x {months} months x "
            f"{models} models: {dt * scale:.0f} s ({label}; target <= 120 s)"
        )
    else:
        # CPU scaling: each model measured on a sample of the global case's shape (360 months,
        # default settings); time grows linearly with the cells.
        from cwsc.hydro.calibration.config import CalibrationConfig
        from cwsc.hydro.calibration.shard import calibrate_model

        n = 256 if QUICK else 1024
        p, e, q = twin_cells(n, months, seed=2)
        per_cell = {}
        for model in ("DWBM", "SWBM", "TVGM"):
            if model != "DWBM":
                p, e, q = twin_cells(n, months, seed=2, model=model)
            t0 = time.perf_counter()
            calibrate_model(model, p, e, q, CalibrationConfig(models=(model,)))
            per_cell[model] = (time.perf_counter() - t0) / n
        est = cells * sum(per_cell.values())
        figures = ", ".join(f"{m} {v * 1e3:.1f} ms" for m, v in per_cell.items())
        print(
            f"global case {cells} cells x {months} months x {models} models: no CUDA here; "
            f"PROJECTION from this CPU ({n} cells x {months} months per model, per cell: "
            f"{figures}): {est / 60:.0f} min on this CPU (target on one H100: 2 min)"
        )


def _peak_rss(cmd: list[str]) -> tuple[float, float, str]:
    """(peak RSS in MiB, seconds, "ok" or the failure) of the wrapped command ``cmd``."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    dt = time.perf_counter() - t0
    try:
        peak_kb, rc = (int(v) for v in proc.stdout.split()[-2:])
    except ValueError:
        peak_kb, rc = 0, -1
    return peak_kb / 1024, dt, "ok" if rc == 0 else f"exit {rc}: {proc.stderr[-300:]}"


def bench_rss() -> None:
    """Peak RSS of the calibrate command on a 720 x 360 grid of 360 months (a subprocess)."""
    import rasterio
    from rasterio.transform import from_origin

    width, height, months = (180, 90, 120) if QUICK else (720, 360, 360)
    land_cells = 1024 if QUICK else 4096
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        p, e, q = twin_cells(land_cells, months, seed=3)
        # Land: a band of rows in the middle of the grid, the rest ocean (nodata).
        flat = np.full((height * width,), np.nan, np.float32)
        start = (height // 2) * width
        idx = start + np.arange(land_cells)
        profile = dict(
            driver="GTiff",
            width=width,
            height=height,
            count=months,
            dtype="float32",
            crs="EPSG:4326",
            transform=from_origin(-180, 90, 360 / width, 180 / height),
            nodata=-9999.0,
            tiled=True,
            blockxsize=256 if width >= 256 else 16,
            blockysize=256 if height >= 256 else 16,
            compress="deflate",
        )
        for name, data in (("p", p), ("e", e), ("q", q)):
            with rasterio.open(tmp / f"{name}.tif", "w", **profile) as dst:
                for b in range(months):
                    band = flat.copy()
                    band[idx] = data[:, b]
                    dst.write(np.where(np.isfinite(band), band, -9999.0).reshape(height, width), b + 1)
        del rng
        # A wrapper process reports the peak RSS of its child (the calibrate command and the
        # descendants it waited for, such as torch.compile workers), not of this benchmark.
        wrapper = (
            "import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:], "
            "stdout=subprocess.DEVNULL).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)"
        )
        cmd = [
            sys.executable,
            "-c",
            wrapper,
            sys.executable,
            "-m",
            "cwsc",
            "calibrate",
            "--precip",
            str(tmp / "p.tif"),
            "--pet",
            str(tmp / "e.tif"),
            "--runoff",
            str(tmp / "q.tif"),
            "--out-cwsc",
            str(tmp / "cwsc.tif"),
            "--out-kge",
            str(tmp / "kge.tif"),
            "--out-details",
            str(tmp / "details.tif"),
            "--max-evaluations",
            "60",
        ]
        peak_mb, dt, status = _peak_rss(cmd)
        print(
            f"peak RSS of `calibrate` on {width} x {height} cells x {months} months "
            f"({land_cells} land cells calibrated, 3 models, max 60 evaluations so that it "
            f"finishes; the grid, I/O and outputs are full size): {peak_mb:.0f} MiB, "
            f"{dt:.0f} s, {status}"
        )
        # prepare on the same files: the whole read, resample and write path of real data.
        cmd = [
            sys.executable,
            "-c",
            wrapper,
            sys.executable,
            "-m",
            "cwsc",
            "prepare",
            "--precip",
            str(tmp / "p.tif"),
            "--pet",
            str(tmp / "e.tif"),
            "--runoff",
            str(tmp / "q.tif"),
            "--precip-start",
            "1981-01",
            "--pet-start",
            "1981-01",
            "--runoff-start",
            "1981-01",
            "--out-precip",
            str(tmp / "P.tif"),
            "--out-pet",
            str(tmp / "E.tif"),
            "--out-runoff",
            str(tmp / "Q.tif"),
            "--out-predictors",
            str(tmp / "predictors"),
        ]
        peak_mb, dt, status = _peak_rss(cmd)
        print(
            f"`prepare` of the same grid (three inputs, predictors): {dt:.0f} s (target under "
            f"120 s), peak RSS {peak_mb:.0f} MiB, {status}"
        )


def main() -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {os.cpu_count()} cores, load average {load:.1f} at start (a shared, loaded "
        "machine slows every figure below; threads fight at each parallel region)"
    )
    cells = _cells(1024, 4096, "CWSC_BENCH_CELLS")
    sample = _cells(2, 8, "CWSC_BENCH_SPOTPY_CELLS")
    p, e, q, lab, ms = bench_throughput(cells)
    bench_spotpy(p, e, q, lab, ms, sample)
    if os.environ.get("CWSC_BENCH_RESTARTS", "0") == "1":
        for model in ("DWBM", "TVGM"):
            bench_restarts(_cells(128, 384, "CWSC_BENCH_RESTART_CELLS"), model)
    bench_global()
    if os.environ.get("CWSC_BENCH_RSS", "1") != "0":
        bench_rss()


if __name__ == "__main__":
    main()
