"""The commit protocol under stops and kills (issue 27, files lost): a journal written before
the first rename, a lock per output folder, a stop that waits for the commit, and a cleaner
that reads the journal. The file-system windows are held open with the ``CWSC_TEST_PAUSE``
fault hook (a slow network share), not by luck."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from backend_testing import calibrate_args, run_backend, snapshot, start_backend

pytestmark = pytest.mark.slow  # subprocess runs of the backend, tens of seconds in all

NAMES = ("cwsc.tif", "kge.tif", "details.tif")


def _three(paths, folder, *extra):
    return calibrate_args(paths, folder, **{"--out-details": folder / "details.tif"}) + list(extra)


def _wait(proc, condition, timeout=120):
    t0 = time.monotonic()
    while not condition():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() - t0 < timeout
        time.sleep(0.01)


def _journal(folder):
    return list(folder.glob(".cwsc-commit-*.journal"))


def _complete(folder):
    import json

    try:
        return all(json.loads(j.read_text())["complete"] for j in _journal(folder)) and bool(_journal(folder))
    except (OSError, ValueError, KeyError):
        return False  # being replaced


def _outputs(folder):
    return tuple((folder / n).read_bytes() for n in NAMES)


def test_a_kill_during_the_commit_is_rolled_back_by_the_next_run(forcing, previous_outputs):
    paths, _ = forcing
    out = previous_outputs
    before = snapshot(out)
    proc = start_backend(_three(paths, out), env={"CWSC_TEST_PAUSE": "commit=3"})
    _wait(proc, lambda: (out / "cwsc.tif").read_bytes() != before["cwsc.tif"])
    proc.kill()  # SIGKILL halfway through the renames: nothing of ours runs
    proc.communicate(timeout=60)
    assert (out / "kge.tif").read_bytes() == before["kge.tif"] and _journal(out)
    # The next run into the folder (here a small one with another output) finds the journal:
    # the previous maps come back, every one of them, and nothing of the killed run is left.
    rc, events, err = run_backend(
        "mask", "--labels", out / "cwsc.tif", "--kge", out / "cwsc.tif", "--out", out / "masked.tif"
    )
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert any("killed while putting its outputs in place: rolled back" in m for m in logs), logs
    assert {k: v for k, v in snapshot(out).items() if k != "masked.tif"} == before


def test_a_kill_after_the_last_rename_is_finished_by_the_next_run(forcing, tmp_path, previous_outputs):
    from cwsc.runtime.outputs import clean_stale

    paths, _ = forcing
    out = previous_outputs
    before = snapshot(out)
    proc = start_backend(_three(paths, out), env={"CWSC_TEST_PAUSE": "commit=2,committed=3"})
    # Kill inside the pause after the journal says every file is in place; the renames
    # alone are not enough (on a loaded machine the kill can land before that mark).
    _wait(proc, lambda: all((out / n).read_bytes() != before[n] for n in NAMES) and _complete(out))
    new = _outputs(out)
    proc.kill()
    proc.communicate(timeout=60)
    lines = clean_stale(out)
    assert any("finished it" in line for line in lines), lines
    assert _outputs(out) == new and not _journal(out)
    assert not [n for n in snapshot(out) if ".cwsc-" in n]


def test_sigterm_during_a_slow_commit_keeps_the_finished_run(forcing, previous_outputs):
    paths, _ = forcing
    out = previous_outputs
    before = snapshot(out)
    proc = start_backend(_three(paths, out), env={"CWSC_TEST_PAUSE": "commit=1.5"})
    _wait(proc, lambda: bool(_journal(out)))
    proc.send_signal(signal.SIGTERM)  # the watchdog's grace (0.5 s) ends inside the commit
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "outputs are kept" in stdout and '"result"' in stdout
    assert all((out / n).read_bytes() != before[n] for n in NAMES)
    assert not [n for n in snapshot(out) if ".cwsc-" in n]


def test_sigterm_during_the_replaceable_check_leaves_every_file(forcing, previous_outputs):
    paths, _ = forcing
    out = previous_outputs
    before = snapshot(out)
    proc = start_backend(_three(paths, out), env={"CWSC_TEST_PAUSE": "replaceable=2"})
    _wait(proc, lambda: not (out / "cwsc.tif").exists())  # renamed to its backup name
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "Traceback" not in err
    assert snapshot(out) == before


def test_a_stop_during_the_start_up_leaves_no_temporary(forcing, previous_outputs):
    paths, _ = forcing
    out = previous_outputs
    before = snapshot(out)
    proc = start_backend(_three(paths, out), env={"CWSC_TEST_PAUSE": "temporaries=2"})
    _wait(proc, lambda: any(".part" in p.name for p in out.iterdir()))
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert snapshot(out) == before


@pytest.mark.slow
def test_two_runs_into_the_same_outputs_commit_one_after_the_other(forcing, tmp_path):
    paths, _ = forcing
    references = []
    for seed in ("1", "2"):
        folder = tmp_path / f"alone {seed}"
        folder.mkdir()
        rc, _, err = run_backend(*_three(paths, folder, "--seed", seed))
        assert rc == 0, err
        references.append(_outputs(folder))
    assert references[0] != references[1]
    out = tmp_path / "shared"
    out.mkdir()
    runs = [
        start_backend(_three(paths, out, "--seed", seed), env={"CWSC_TEST_PAUSE": "commit=1"})
        for seed in ("1", "2")
    ]
    for proc in runs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    assert _outputs(out) in references  # one run's set, never a mix
    assert not [n for n in snapshot(out) if ".cwsc-" in n]


def test_a_backup_without_a_journal_is_kept_when_its_file_exists(tmp_path):
    """The old cleaner deleted any backup whose destination existed; a backup now goes only
    where a journal says its commit finished."""
    from cwsc.runtime.outputs import clean_stale

    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "c.tif").write_bytes(b"the new map")
    backup = tmp_path / f".c.tif.cwsc-{dead.pid}-0123abcd.backup"
    backup.write_bytes(b"the old map")
    lines = clean_stale(tmp_path)
    assert backup.read_bytes() == b"the old map" and any("kept" in line for line in lines), lines
