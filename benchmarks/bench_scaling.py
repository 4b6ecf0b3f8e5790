"""Calibration on every core, on a Dask cluster, and resumed: the calibrate command, timed.

Prints, measured in the same run on the same grid (DWBM, 240 months, default settings):
- cells/s and parallel efficiency (time of 1 worker / (n x time of n workers)) for 1, 2, 4 ...
  up to every core (target >= 85 % at 2 workers, >= 80 % at 16), with the peak RSS of the
  command and of its largest worker;
- the same grid on a local Dask cluster (a scheduler and 2 single-threaded worker processes)
  against the process pool with 2 workers (target: within 10 %);
- a run killed (SIGKILL) at half way and resumed from its work folder: the resumed run's time
  against a full run (target <= 60 %), and whether the outputs are byte-identical.

Environment: CWSC_BENCH_QUICK=1 shrinks it; CWSC_BENCH_SCALING_CELLS sets the land cells
(default: 4096, or 2048 per core on machines with more than two cores).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_calibrate import twin_cells

QUICK = os.environ.get("CWSC_BENCH_QUICK", "0") == "1"
ROOT = Path(__file__).resolve().parents[1]
MONTHS = 120 if QUICK else 240


def _write_grid(folder: Path, cells: int) -> list[str]:
    import rasterio
    from rasterio.transform import from_origin

    width = 64
    height = -(-cells // width)
    p, e, q = twin_cells(cells, MONTHS, seed=4)
    args = []
    for name, data in (("precip", p), ("pet", e), ("runoff", q)):
        cube = np.full((MONTHS, height * width), -9999.0, np.float32)
        cube[:, :cells] = data.T
        path = folder / f"{name}.tif"
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=width,
            height=height,
            count=MONTHS,
            dtype="float32",
            crs="EPSG:4326",
            nodata=-9999.0,
            transform=from_origin(0, 60, 0.5, 0.5),
        ) as dst:
            dst.write(cube.reshape(MONTHS, height, width))
        args += [f"--{name}", str(path)]
    return args


def _outputs(out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    return ["--out-cwsc", str(out / "cwsc.tif"), "--out-kge", str(out / "kge.tif")]


def _run(args: list[str], kill_at: float | None = None) -> dict:
    """Run the calibrate command; its wall time, peak RSS (MiB) of the command and of its
    largest worker process, and its metrics. ``kill_at``: SIGKILL once this fraction of the
    shards is done."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cwsc", "--json", "calibrate", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    peaks = {"command": 0.0, "worker": 0.0}
    stop = threading.Event()

    def sample() -> None:
        me = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                peaks["command"] = max(peaks["command"], me.memory_info().rss / 2**20)
                for child in me.children(recursive=True):
                    peaks["worker"] = max(peaks["worker"], child.memory_info().rss / 2**20)
            except psutil.Error:
                pass
            stop.wait(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    result = error = None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "result":
            result = event
        if event["event"] == "error":
            error = event.get("message")
        stage = event.get("stage", "")
        if kill_at is not None and stage.startswith("calibrating: "):
            done, total = int(stage.split()[1]), int(stage.split()[3])
            if done >= kill_at * total:
                proc.send_signal(signal.SIGKILL)
                break
    err = proc.communicate()[1]
    stop.set()
    watcher.join()
    seconds = time.perf_counter() - t0
    if kill_at is None and proc.returncode != 0:
        raise RuntimeError(f"calibrate failed (exit {proc.returncode}): {error or err[-400:]}")
    return {"seconds": seconds, **peaks, "metrics": (result or {}).get("metrics", {})}


def _worker_counts(cores: int) -> list[int]:
    counts = [1]
    while counts[-1] * 2 <= cores:
        counts.append(counts[-1] * 2)
    if counts[-1] != cores:
        counts.append(cores)
    return counts[:2] if QUICK else counts


def main() -> None:
    from cwsc.hydro.calibration.shards import available_cores

    cores = available_cores()
    default = 2048 if QUICK else max(4096, 2048 * cores if cores > 2 else 4096)
    cells = int(os.environ.get("CWSC_BENCH_SCALING_CELLS", default))
    print(
        f"{cells} land cells x {MONTHS} months, DWBM, default settings, {cores} cores "
        f"(load average {os.getloadavg()[0]:.1f} at start)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = _write_grid(tmp, cells) + ["--models", "DWBM"]
        times = {}
        for n in _worker_counts(cores):
            r = _run(inputs + _outputs(tmp / f"w{n}") + ["--workers", str(n)])
            times[n] = r["seconds"]
            eff = times[1] / (n * r["seconds"])
            print(
                f"{n:>3} worker{'s' if n > 1 else ' '}: {r['seconds']:6.1f} s, "
                f"{cells / r['seconds']:7.1f} cells/s, parallel efficiency {eff:5.1%}, "
                f"peak RSS command {r['command']:.0f} MiB, largest worker {r['worker']:.0f} MiB"
                + ("  (target >= 85 % at 2 workers)" if n == 2 else "")
                + ("  (target >= 80 % at 16 workers)" if n == 16 else ""),
                flush=True,
            )

        two = min(2, cores)
        pool = times.get(two) or _run(inputs + _outputs(tmp / "pool") + ["--workers", str(two)])["seconds"]
        _bench_dask(inputs, tmp, two, pool)

        # Resume: killed at half way (as by a crash or a reboot), then run again.
        work = tmp / "work"
        args = inputs + _outputs(tmp / "resumed") + ["--workers", str(two), "--work-dir", str(work)]
        full = times[two] if two in times else pool
        _run(args, kill_at=0.5)
        saved = len(list(work.glob("calibrate-*/shard-*.npz")))
        again = _run(args)
        same = (
            all(
                (tmp / "resumed" / n).read_bytes() == (tmp / f"w{two}" / n).read_bytes()
                for n in ("cwsc.tif", "kge.tif")
            )
            if two in times
            else "not compared"
        )
        print(
            f"killed at half way ({saved} shards saved), resumed: {again['seconds']:.1f} s = "
            f"{again['seconds'] / full:.0%} of a full run ({full:.1f} s; target <= 60 %), "
            f"{again['metrics'].get('shards_resumed')} shards resumed, outputs identical: {same}"
        )


def _bench_dask(inputs: list[str], tmp: Path, workers: int, pool_seconds: float) -> None:
    try:
        from distributed import LocalCluster
    except ImportError:
        print("Dask: 'distributed' is not installed; skipped")
        return
    env = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env}" if env else str(ROOT)
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        r = _run(inputs + _outputs(tmp / "dask") + ["--dask-scheduler", cluster.scheduler_address])
    os.environ["PYTHONPATH"] = env
    same = (
        all(
            (tmp / "dask" / n).read_bytes() == (tmp / f"w{workers}" / n).read_bytes()
            for n in ("cwsc.tif", "kge.tif")
        )
        if (tmp / f"w{workers}").exists()
        else "not compared"
    )
    print(
        f"Dask, local scheduler and {workers} workers: {r['seconds']:.1f} s = "
        f"{r['seconds'] / pool_seconds:.2f} x the process pool with {workers} workers "
        f"(target <= 1.10), outputs identical: {same}",
        flush=True,
    )
