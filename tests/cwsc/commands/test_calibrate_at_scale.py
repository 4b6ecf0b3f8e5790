"""``python -m cwsc calibrate`` on every core, on a Dask cluster, and resumed after a kill:
real rasters, real subprocesses, a real scheduler and workers on localhost."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from backend_testing import (
    DaskCluster,
    last_event,
    lock_folder,
    run_backend,
    snapshot,
    start_backend,
    unlock_folder,
    write_tif,
)

from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

pytestmark = pytest.mark.slow  # subprocess runs of the backend, tens of seconds in all

ROWS, COLS, MONTHS = 6, 8, 60
#: 47 land cells in shards of 6: 8 shards.
SHARDS = ["--shard-cells", "6"]
FAST = ["--max-evaluations", "150", "--models", "DWBM,SWBM", "--seed", "11", *SHARDS]
NAMES = ("cwsc.tif", "kge.tif", "details.tif")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forcing")
    cells = ROWS * COLS
    p, e = synthetic_forcing(cells, MONTHS, seed=8)
    q = synthetic_runoff("DWBM", p, e, random_params("DWBM", cells, seed=8), seed=8)
    cube = lambda a: a.T.reshape(MONTHS, ROWS, COLS).copy()  # noqa: E731
    p, e, q = cube(p), cube(e), cube(q)
    p[:, 2, 3] = e[:, 2, 3] = q[:, 2, 3] = np.nan  # an ocean cell
    return {
        "--precip": write_tif(folder / "p.tif", p),
        "--pet": write_tif(folder / "e.tif", e),
        "--runoff": write_tif(folder / "q.tif", q),
    }


def _args(inputs, out, *extra):
    out.mkdir(parents=True, exist_ok=True)
    pairs = {
        **{k: str(v) for k, v in inputs.items()},
        "--out-cwsc": str(out / "cwsc.tif"),
        "--out-kge": str(out / "kge.tif"),
        "--out-details": str(out / "details.tif"),
    }
    return ["calibrate", *[x for kv in pairs.items() for x in kv], *FAST, *map(str, extra)]


def _outputs(out):
    return {n: (out / n).read_bytes() for n in NAMES}


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """The outputs of a plain run in this process's workers (no work folder)."""
    out = tmp_path_factory.mktemp("reference")
    rc, events, err = run_backend(*_args(inputs, out, "--workers", "1"))
    assert rc == 0, err
    assert last_event(events, "result")["metrics"]["shards"] == 8
    return _outputs(out)


def test_every_worker_count_writes_the_same_bytes(inputs, reference, tmp_path):
    for workers in (2, 3):
        rc, events, err = run_backend(*_args(inputs, tmp_path / str(workers), "--workers", workers))
        assert rc == 0, err
        assert last_event(events, "result")["metrics"]["workers"] == workers
        assert _outputs(tmp_path / str(workers)) == reference
        fractions = [
            e["fraction"] for e in events if e["event"] == "progress" and e["stage"].startswith("calibrating")
        ]
        assert all(0 <= f <= 1 for f in fractions) and fractions[-1] == 1.0
        assert any(e["event"] == "log" and f"in {workers} worker processes" in e["message"] for e in events)


def test_a_dask_cluster_writes_the_same_bytes(inputs, reference, tmp_path):
    with DaskCluster(tmp_path / "dask", workers=2) as cluster:
        rc, events, err = run_backend(*_args(inputs, tmp_path / "out", "--dask-scheduler", cluster.address))
    assert rc == 0, err
    assert any(e["event"] == "log" and "on the Dask cluster" in e["message"] for e in events)
    assert _outputs(tmp_path / "out") == reference


def test_a_scheduler_without_the_package_is_refused_before_any_work(inputs, tmp_path):
    """The scheduler unpickles the task graph too: one lacking cwsc is named in one line
    (exit code of bad input, no traceback) and nothing is written."""
    stand_in = tmp_path / "elsewhere" / "cwsc"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'cwsc'\")\n")
    with DaskCluster(tmp_path / "dask", workers=1, scheduler_path=stand_in.parent) as cluster:
        rc, events, err = run_backend(*_args(inputs, tmp_path / "out", "--dask-scheduler", cluster.address))
    assert rc == 2, err
    message = last_event(events, "error")["message"]
    assert message.startswith(f"DASK_SCHEDULER: scheduler {cluster.address} cannot import the cwsc package")
    assert "\n" not in message and "Traceback" not in err
    assert not any(e["event"] == "progress" and e["stage"].startswith("calibrating:") for e in events)
    assert snapshot(tmp_path / "out") == {}


@pytest.mark.serial
def test_a_scheduler_that_does_not_answer_is_refused_quickly(inputs, tmp_path):
    t0 = time.monotonic()
    rc, events, err = run_backend(*_args(inputs, tmp_path / "out", "--dask-scheduler", "tcp://127.0.0.1:9"))
    assert time.monotonic() - t0 < 25
    assert rc == 2, err
    message = last_event(events, "error")["message"]
    assert message.startswith("DASK_SCHEDULER: no Dask scheduler answers at") and "127.0.0.1:9" in message
    assert snapshot(tmp_path / "out") == {}


def _kill_at_half(args, shards=8):
    """Start a run and SIGKILL it once half its shards are saved in its work folder (as a
    crash or a reboot)."""
    work = Path(args[args.index("--work-dir") + 1])
    proc = start_backend(args)
    for _ in proc.stdout:
        if len(list(work.glob("calibrate-*/shard-*.npz"))) >= shards // 2:
            proc.send_signal(signal.SIGKILL)
            break
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_a_killed_run_resumes_from_its_work_folder_with_the_same_bytes(inputs, reference, tmp_path):
    work = tmp_path / "work"
    out = tmp_path / "out"
    args = _args(inputs, out, "--workers", "1", "--work-dir", work)
    _kill_at_half(args)
    saved = sorted(work.glob("calibrate-*/shard-*.npz"))
    assert 4 <= len(saved) < 8 and not list(work.glob("calibrate-*/.*.part"))
    assert not any((out / n).exists() for n in NAMES)

    rc, events, err = run_backend(*args)
    assert rc == 0, err
    metrics = last_event(events, "result")["metrics"]
    assert metrics["shards_resumed"] == len(saved)
    assert any(
        e["event"] == "log" and f"continuing from {len(saved)} finished shards" in e["message"]
        for e in events
    )
    assert _outputs(out) == reference
    assert not work.exists()  # made by the run, removed on success
    # What the killed run left beside the outputs was cleaned.
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)


def test_another_run_s_shards_are_named_and_not_used(inputs, reference, tmp_path):
    work = tmp_path / "work"
    rc, _, err = run_backend(*_args(inputs, tmp_path / "a", "--work-dir", work, "--keep-work"))
    assert rc == 0, err
    kept = sorted(work.glob("calibrate-*/shard-*.npz"))
    assert len(kept) == 8
    # Another seed: the saved shards belong to another run.
    args = _args(inputs, tmp_path / "b", "--work-dir", work)
    args[args.index("--seed") + 1] = "12"
    rc, events, err = run_backend(*args)
    assert rc == 0, err
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert any("holds 8 finished shards of another run" in m and "seed 11 -> 12" in m for m in logs), logs
    assert last_event(events, "result")["metrics"]["shards_resumed"] == 0
    assert sorted(work.glob("calibrate-*/shard-*.npz")) == kept  # left as they were

    # A changed input: named as changed.
    runoff = inputs["--runoff"]
    stat = os.stat(runoff)
    os.utime(runoff, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        rc, events, err = run_backend(*_args(inputs, tmp_path / "c", "--work-dir", work))
    finally:
        os.utime(runoff, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert rc == 0, err
    assert any("RUNOFF changed" in e["message"] for e in events if e["event"] == "log")
    assert _outputs(tmp_path / "c") == reference


def test_a_work_folder_that_cannot_be_written_is_refused_before_any_work(inputs, tmp_path):
    work = tmp_path / "locked"
    work.mkdir()
    if not lock_folder(work):
        pytest.skip("chattr +i is not available here")
    try:
        rc, events, err = run_backend(*_args(inputs, tmp_path / "out", "--work-dir", work))
    finally:
        unlock_folder(work)
    assert rc == 2, err
    message = last_event(events, "error")["message"]
    assert message.startswith("WORK_DIR: cannot write in") and str(work) in message
    assert not any(e["event"] == "progress" and e["stage"].startswith("calibrating") for e in events)
    assert snapshot(tmp_path / "out") == {} and list(work.iterdir()) == []


def test_workers_end_with_a_killed_command(inputs, tmp_path):
    import psutil

    proc = start_backend(_args(inputs, tmp_path / "out", "--workers", "2", "--max-evaluations", "3000"))
    children = []
    for line in proc.stdout:
        if json.loads(line).get("stage", "").startswith("calibrating: "):
            children = psutil.Process(proc.pid).children(recursive=True)
            break
    assert len(children) >= 2, children  # the workers (and their server) are running
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.cmdline() for p in alive]


def test_an_input_replaced_by_one_of_the_same_size_and_time_is_not_resumed(inputs, tmp_path):
    import rasterio

    work = tmp_path / "work"
    own = {k: tmp_path / Path(v).name for k, v in inputs.items()}
    for k, v in inputs.items():
        own[k].write_bytes(Path(v).read_bytes())
    rc, _, err = run_backend(*_args(own, tmp_path / "a", "--work-dir", work, "--keep-work"))
    assert rc == 0, err
    runoff = own["--runoff"]
    stat = os.stat(runoff)
    with rasterio.open(runoff) as r:
        q = r.read(masked=True).filled(np.nan)
    write_tif(runoff, q * 1.5)  # other water, the same size (uncompressed) ...
    os.utime(runoff, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and the same time
    assert os.stat(runoff).st_size == stat.st_size
    rc, events, err = run_backend(*_args(own, tmp_path / "b", "--work-dir", work))
    assert rc == 0, err
    assert any("RUNOFF changed (its content)" in e["message"] for e in events if e["event"] == "log")
    assert last_event(events, "result")["metrics"]["shards_resumed"] == 0


def test_a_second_run_into_a_work_folder_in_use_is_refused(inputs, tmp_path):
    work = tmp_path / "work"
    first = start_backend(
        _args(inputs, tmp_path / "a", "--work-dir", work), env={"CWSC_TEST_PAUSE": "commit=2,committed=2"}
    )
    for line in first.stdout:
        if '"calibrating' in line:
            break
    rc, events, err = run_backend(*_args(inputs, tmp_path / "b", "--work-dir", work))
    assert rc == 2, err
    message = last_event(events, "error")["message"]
    assert message.startswith("WORK_DIR: another run (process ") and "wait for it to finish" in message
    assert snapshot(tmp_path / "b") == {}
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(NAMES)


@pytest.mark.serial
def test_an_address_that_is_not_a_dask_scheduler_is_refused_within_seconds(inputs, tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    web = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        t0 = time.monotonic()
        while True:  # until the web server listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() - t0 < 30
                time.sleep(0.1)
        for address, words, limit in (
            (f"tcp://127.0.0.1:{port}", "is not a Dask scheduler", 20),
            ("http2://somewhere:8786", "which Dask does not speak", 5),
        ):
            t0 = time.monotonic()
            rc, events, err = run_backend(*_args(inputs, tmp_path / "out", "--dask-scheduler", address))
            assert time.monotonic() - t0 < limit
            assert rc == 2, err
            assert words in last_event(events, "error")["message"]
            assert snapshot(tmp_path / "out") == {}
    finally:
        web.terminate()
        web.wait(timeout=10)
