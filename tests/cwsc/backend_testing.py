"""Helpers for the backend tests: real GeoTIFFs written with rasterio, real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def write_tif(
    path,
    data,
    transform=(0.5, 0, -10.0, 0, -0.5, 60.0),
    crs="EPSG:4326",
    nodata=-9999.0,
    descriptions=None,
    units=None,
    as_is=False,
):
    """Write float ``data`` (rows, cols) or (bands, rows, cols) with NaN as nodata; ``as_is``:
    the values as they are (NaN, inf, a sentinel that ``nodata`` may or may not declare), as a
    faulty file has them; ``units``: every band's unit."""
    import rasterio
    from affine import Affine

    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if not as_is:
        data = np.where(np.isfinite(data), data, nodata).astype(np.float32)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype="float32",
        crs=crs,
        transform=Affine(*transform),
        nodata=nodata,
    ) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
        if units:
            dst.units = [units] * data.shape[0]
    return Path(path)


def read_tif(path):
    import rasterio

    with rasterio.open(path) as src:
        data = src.read().astype(np.float32)
        if src.nodata is not None:
            data[data == src.nodata] = np.nan
        return data, src.profile, list(src.descriptions)


def run_backend(*args, timeout=600, **kwargs):
    """Run ``python -m cwsc`` as the plugin does (``CWSC_JSON=1``: JSON-lines events); returns
    (exit code, events, stderr)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", CWSC_JSON="1")
    proc = subprocess.run(
        [sys.executable, "-m", "cwsc", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kwargs,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, events, proc.stderr


def last_event(events, kind):
    matches = [e for e in events if e["event"] == kind]
    return matches[-1] if matches else None


def start_backend(args, env=None):
    """Start ``python -m cwsc`` as the plugin does (``CWSC_JSON=1``; ``env``: extra variables);
    the caller reads its events."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", CWSC_JSON="1", **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "cwsc", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def terminate_when(proc, ready, delay=0.0, timeout=120, timings=None):
    """Read events until ``ready(event)``; then SIGTERM; return (exit code, events). With a
    ``timings`` dict, ``timings["stop_s"]`` is the time from SIGTERM to the process's exit and
    ``timings["stderr"]`` what it wrote on stderr."""
    events, t0 = [], time.monotonic()
    sent = None
    for line in proc.stdout:
        events.append(json.loads(line))
        if ready(events[-1]):
            time.sleep(delay)
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            break
        assert time.monotonic() - t0 < timeout
    rest, err = proc.communicate(timeout=60)
    if timings is not None:
        timings["stderr"] = err
        if sent is not None:
            timings["stop_s"] = time.monotonic() - sent
    events += [json.loads(x) for x in rest.splitlines() if x.strip()]
    return proc.returncode, events


def expect_bad_input(args, pattern, folder=None):
    """Run the backend with ``args``: exit 2, a bad_input event containing ``pattern``, and
    (with ``folder``) no model, report or partial file left there."""
    rc, events, err = run_backend(*args)
    assert rc == 2, err
    e = last_event(events, "error")
    assert e["kind"] == "bad_input" and pattern in e["message"], e["message"]
    if folder is not None:
        assert not any(p.suffix in (".pt", ".html") or ".part" in p.name for p in folder.iterdir())


#: A tiny network for command tests.
TINY = ["--blocks", "1", "--widths", "4,8,8", "--patch-size", "5"]


def train_args(files, out, *extra):
    return [
        "train",
        "--predictors",
        *files["predictors"],
        "--labels",
        files["labels"],
        "--kge",
        files["kge"],
        "--out-model",
        out,
        *TINY,
        *extra,
    ]


def leftovers(folder):
    """Partial (temporary) files left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def objective_case(model, form, objective, dtype, cells=40, months=120, columns=600, seed=4):
    """A calibration objective to hold a kernel to the torch reference: synthetic cells,
    missing months, one undefined cell, random columns."""
    import torch

    from cwsc.hydro import metrics
    from cwsc.hydro.models import PARAMETERS, Forcing
    from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

    p, e = synthetic_forcing(cells, months, seed)
    q = synthetic_runoff(model, p, e, random_params(model, cells, seed), noise=0.15, seed=seed)
    q[3, 20:50] = np.nan  # missing months are skipped
    q[7, :] = np.nan  # a cell with no defined metric
    pt, et, qt = (torch.as_tensor(a, dtype=dtype).T.contiguous() for a in (p, e, q))
    forcing = Forcing(model, pt, et, form)
    w, c = 12, 90
    target = metrics.CalibrationTarget(qt, slice(w, c), objective)
    g = torch.Generator().manual_seed(seed)
    cell = torch.randint(0, cells, (columns,), generator=g)
    lo = torch.tensor([b[0] for b in PARAMETERS[model].values()], dtype=torch.float64)
    hi = torch.tensor([b[1] for b in PARAMETERS[model].values()], dtype=torch.float64)
    x = lo + torch.rand(columns, len(lo), generator=g, dtype=torch.float64) * (hi - lo)
    x[:5, 0] = lo[0]  # parameters on the bounds (DWBM: sc = 0)
    x[5:10, -1] = hi[-1]
    return forcing, target, cell, x, w, c


def dwbm_cells(cells: int, months: int, seed: int):
    """Forcing and noisy DWBM runoff (cells, months) for the calibration comparisons."""
    from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

    p, e = synthetic_forcing(cells, months, seed=seed)
    q = synthetic_runoff("DWBM", p, e, random_params("DWBM", cells, seed=seed), noise=0.1, seed=seed)
    return p, e, q


def lock_folder(path) -> bool:
    """Make ``path`` immutable (``chattr +i``: root cannot write there either); False where
    the file system or the machine does not allow it."""
    import shutil

    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def unlock_folder(path) -> None:
    import shutil

    if shutil.which("chattr") is not None:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def snapshot(folder):
    """Every file below ``folder`` (hidden ones too) and its bytes: what a failed run must
    leave as it was."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()
    }


class DaskCluster:
    """A real ``dask.distributed`` scheduler and ``workers`` workers, each its own process on
    localhost (one thread each), started from the environment where the package is installed,
    with no PYTHONPATH, as a user would start them. ``scheduler_path``: a folder put first on
    the scheduler's path (a stand-in package there makes a scheduler that lacks cwsc)."""

    def __init__(self, folder, workers: int = 2, scheduler_path=None):
        self.folder = Path(folder)
        self.count = workers
        self.scheduler_path = scheduler_path
        self.scheduler = None
        self.workers: list[subprocess.Popen] = []
        self.address = None

    def _env(self, path=None):
        env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
        env.pop("PYTHONPATH", None)
        if path is not None:
            env["PYTHONPATH"] = str(path)
        return env

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        info = self.folder / "scheduler.json"
        self.scheduler = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(info),
            ],
            cwd=self.folder,
            env=self._env(self.scheduler_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert time.monotonic() < deadline and self.scheduler.poll() is None, "no scheduler"
            time.sleep(0.2)
        time.sleep(0.2)
        self.address = json.loads(info.read_text())["address"]
        for _ in range(self.count):
            self.add_worker()
        self.wait_for(self.count)
        return self

    def add_worker(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                self.address,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--no-nanny",
            ],
            cwd=self.folder,
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.workers.append(proc)
        return proc

    def wait_for(self, count: int, timeout: float = 90) -> None:
        from distributed import Client

        with Client(self.address, timeout="20s") as client:
            client.wait_for_workers(count, timeout=timeout)

    def __exit__(self, *exc) -> None:
        for proc in self.workers + [self.scheduler]:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.workers + [self.scheduler]:
            if proc is not None:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


# -- the fault catalogues (tests/cwsc/test_faults*.py, tests/cwsc/runtime/test_commit.py) --
ROWS, COLS, MONTHS = 3, 4, 48
FAST = ["--max-evaluations", "30"]


def refused(args, *words, code=2):
    """Run the backend, expect ``code`` and an error event naming ``words``; no traceback."""
    rc, events, err = run_backend(*args)
    error = last_event(events, "error")
    assert rc == code, (rc, error, err[-2000:])
    assert error is not None and "Traceback" not in error["message"]
    for w in words:
        assert w in error["message"], error["message"]
    assert "Traceback" not in err
    return error["message"]


def calibrate_args(paths, folder, **over):
    base = {
        "--precip": paths["p"],
        "--pet": paths["e"],
        "--runoff": paths["q"],
        "--out-cwsc": folder / "cwsc.tif",
        "--out-kge": folder / "kge.tif",
        **over,
    }
    return ["calibrate", *[str(x) for kv in base.items() for x in kv], *FAST]


_HOLD_OUTPUTS = """
import sys, time
from cwsc.runtime.outputs import Outputs

with Outputs({"OUTPUT": sys.argv[1]}) as out:
    print(out.temporary("OUTPUT"), flush=True)
    time.sleep(float(sys.argv[2]))
    raise SystemExit(0)
"""


class RunningRun:
    """Another process whose run is working on ``output`` (its temporary created, its lock
    held) until the ``with`` block ends; the block gets that temporary's path."""

    def __init__(self, output, seconds: float = 60.0):
        self.args = [sys.executable, "-c", _HOLD_OUTPUTS, str(output), str(seconds)]

    def __enter__(self) -> Path:
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        return Path(self.proc.stdout.readline().strip())

    def __exit__(self, *exc) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=30)
