"""cwsc.runtime.outputs: outputs checked before any work and committed together, or not at all."""

import errno
import os
import shutil
import subprocess
import sys

import pytest
from backend_testing import RunningRun, lock_folder, snapshot, unlock_folder

from cwsc.errors import BadInput, OutputRefused
from cwsc.runtime import outputs as outputs_module
from cwsc.runtime.outputs import Outputs, clean_stale


def test_outputs_are_put_in_place_together(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"old a")
    with Outputs({"A": tmp_path / "a.tif", "B": tmp_path / "b.tif", "C": None}) as out:
        assert out.temporary("C") is None
        assert out.temporary("A").parent == tmp_path and out.temporary("A").name.startswith(".a.tif.cwsc-")
        out.temporary("A").write_bytes(b"new a")
        out.temporary("B").write_bytes(b"new b")
        assert (tmp_path / "a.tif").read_bytes() == b"old a"  # nothing moves before the end
    assert snapshot(tmp_path) == {"a.tif": b"new a", "b.tif": b"new b"}


def test_atomic_output_removes_the_partial_file_on_failure(tmp_path):
    (tmp_path / "y.tif").write_bytes(b"before")
    with pytest.raises(RuntimeError):
        with Outputs({"OUTPUT": tmp_path / "y.tif"}) as out:
            out.temporary("OUTPUT").write_bytes(b"half")
            raise RuntimeError("boom")
    assert snapshot(tmp_path) == {"y.tif": b"before"}


def test_a_later_output_that_fails_rolls_the_earlier_ones_back(tmp_path, monkeypatch):
    for name in ("a.tif", "b.tif", "a.tif.aux.xml"):
        (tmp_path / name).write_bytes(b"old " + name.encode())
    before = snapshot(tmp_path)
    real = os.replace

    def failing(src, dst):
        if ".part" in str(src) and str(dst).endswith("b.tif"):  # B cannot take its place
            raise OSError(errno.EPERM, "Operation not permitted", str(dst))
        return real(src, dst)

    out = Outputs({"A": tmp_path / "a.tif", "B": tmp_path / "b.tif", "C": tmp_path / "c.tif"})
    with pytest.raises(OutputRefused, match="could not be put in place.*every previous file was kept"):
        with out:
            for label in "ABC":
                out.temporary(label).write_bytes(b"new")
            (tmp_path / (out.temporary("A").name + ".aux.xml")).write_bytes(b"new aux")
            monkeypatch.setattr(outputs_module.os, "replace", failing)
    assert snapshot(tmp_path) == before  # old a (and its sidecar) back, no c


def test_an_output_that_is_an_input_is_refused(tmp_path):
    q = tmp_path / "q.tif"
    q.write_bytes(b"48 months of runoff")
    (tmp_path / "link").symlink_to(tmp_path)
    for same in (q, tmp_path / "." / "q.tif", tmp_path / "link" / "q.tif", tmp_path / "sub" / ".." / "q.tif"):
        with pytest.raises(OutputRefused, match="OUTPUT_CWSC: .* is the input RUNOFF"):
            with Outputs({"OUTPUT_CWSC": same}, inputs={"RUNOFF": str(q)}):
                pass
    os.link(q, tmp_path / "hard.tif")
    with pytest.raises(OutputRefused, match="is the input RUNOFF"):
        Outputs({"OUTPUT_CWSC": tmp_path / "hard.tif"}, inputs={"RUNOFF": q}).__enter__()
    with pytest.raises(OutputRefused, match="is the input PREDICTORS"):
        Outputs({"OUTPUT": q}, inputs={"PREDICTORS": [tmp_path / "p.tif", q]}).__enter__()
    assert snapshot(tmp_path) == {"q.tif": b"48 months of runoff", "hard.tif": b"48 months of runoff"}


def test_two_outputs_that_are_one_file_are_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").symlink_to(tmp_path / "x")
    with pytest.raises(OutputRefused, match="OUTPUT_CWSC and OUTPUT_KGE are the same file"):
        with Outputs({"OUTPUT_CWSC": tmp_path / "x" / "c.tif", "OUTPUT_KGE": tmp_path / "y" / "." / "c.tif"}):
            pass
    assert snapshot(tmp_path) == {}


def test_extensions_name_the_format_written(tmp_path):
    with pytest.raises(OutputRefused, match=r"OUTPUT: .*masked.png' must end in \.tif or \.tiff.*GeoTIFF"):
        Outputs({"OUTPUT": tmp_path / "masked.png"}).__enter__()
    with pytest.raises(OutputRefused, match=r"OUTPUT_REPORT: .* must end in \.html"):
        Outputs({"OUTPUT_REPORT": tmp_path / "r.pdf"}, kinds={"OUTPUT_REPORT": "report"}).__enter__()
    with Outputs({"OUTPUT": tmp_path / "MAP.TIFF"}) as out:
        out.temporary("OUTPUT").write_bytes(b"x")
    assert snapshot(tmp_path) == {"MAP.TIFF": b"x"}


def test_output_folder_must_exist_and_be_writable(tmp_path):
    with pytest.raises(OutputRefused, match="OUTPUT: the folder .*nope' does not exist"):
        Outputs({"OUTPUT": tmp_path / "nope" / "x.tif"}).__enter__()
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
    elif not lock_folder(ro):
        pytest.skip("root writes anywhere and chattr +i is not available")
    try:
        with pytest.raises(OutputRefused, match="OUTPUT: the folder .*ro' cannot be written"):
            Outputs({"OUTPUT": ro / "x.tif"}).__enter__()
    finally:
        unlock_folder(ro)
        ro.chmod(0o755)
    assert snapshot(tmp_path) == {}


def test_an_output_that_cannot_be_replaced_is_refused_before_any_work(tmp_path):
    old = tmp_path / "kge.tif"
    old.write_bytes(b"last year's KGE")
    if not lock_folder(old):
        pytest.skip("chattr +i is not available here")
    try:
        with pytest.raises(OutputRefused, match="OUTPUT_KGE: .*kge.tif' exists and cannot be replaced"):
            with Outputs({"OUTPUT_CWSC": tmp_path / "c.tif", "OUTPUT_KGE": old}):
                raise AssertionError("the work must not start")
    finally:
        unlock_folder(old)
    assert snapshot(tmp_path) == {"kge.tif": b"last year's KGE"}


def test_a_name_too_long_for_its_temporary_name_is_refused(tmp_path):
    name = "c" * 245 + ".tif"  # fine alone, too long with the run's suffix
    with pytest.raises(OutputRefused, match="OUTPUT: the file name .* is too long"):
        Outputs({"OUTPUT": tmp_path / name}).__enter__()
    assert snapshot(tmp_path) == {}


def test_free_space_is_checked_once_the_sizes_are_known(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(
        BadInput,
        match=r"OUTPUT_CWSC: not enough space in .*: about [\d,]+ MB "
        r"needed, [\d,]+ MB free",
    ):
        with Outputs({"OUTPUT_CWSC": tmp_path / "c.tif"}) as out:
            out.need({"OUTPUT_CWSC": 2 * free})
    with Outputs({"OUTPUT_CWSC": tmp_path / "c.tif"}) as out:
        out.need({"OUTPUT_CWSC": 1000})
        out.temporary("OUTPUT_CWSC").write_bytes(b"ok")
    assert snapshot(tmp_path) == {"c.tif": b"ok"}


def test_a_full_disk_is_reported_as_such_and_leaves_nothing(tmp_path):
    (tmp_path / "c.tif").write_bytes(b"old")
    with pytest.raises(OutputRefused, match="the disk is full.*nothing was written or replaced"):
        with Outputs({"OUTPUT_CWSC": tmp_path / "c.tif"}) as out:
            out.temporary("OUTPUT_CWSC").write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert snapshot(tmp_path) == {"c.tif": b"old"}


def test_temporaries_are_unique_per_run_and_a_failure_removes_only_its_own(tmp_path):
    first = Outputs({"OUTPUT": tmp_path / "cwsc.tif"}).__enter__()
    first.temporary("OUTPUT").write_bytes(b"first run")
    with pytest.raises(RuntimeError):
        with Outputs({"OUTPUT": tmp_path / "cwsc.tif"}) as second:
            assert second.temporary("OUTPUT") != first.temporary("OUTPUT")
            raise RuntimeError("the second run fails")
    assert first.temporary("OUTPUT").read_bytes() == b"first run"  # the other run's file stays
    first.commit()
    assert snapshot(tmp_path) == {"cwsc.tif": b"first run"}


def test_leftovers_of_a_killed_run_are_cleaned_by_the_next_run(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    with RunningRun(tmp_path / "other.tif") as alive:  # another process, working
        alive.write_bytes(b"a running run's file")
        (tmp_path / f".cwsc.tif.cwsc-{dead}-0123abcd.part").write_bytes(b"partial")
        (tmp_path / f".cwsc.tif.cwsc-{dead}-0123abcd.part.aux.xml").write_bytes(b"partial aux")
        (tmp_path / f".kge.tif.cwsc-{dead}-0123abcd.backup").write_bytes(b"the old kge")
        done = clean_stale(tmp_path)
        assert len(done) == 3 and any("put back 'kge.tif'" in line for line in done)
        assert {k: v for k, v in snapshot(tmp_path).items() if not k.endswith(".lock")} == {
            "kge.tif": b"the old kge",
            alive.name: b"a running run's file",
        }


_STUCK_IN_C = """
import ctypes, sys
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs

def command():
    with Outputs({"OUTPUT": sys.argv[1]}) as out:
        out.temporary("OUTPUT").write_bytes(b"half a map")
        protocol.progress(0.5, "working")
        # A long call in C (ctypes releases the GIL): Python's handler cannot run until it returns.
        ctypes.CDLL(None).system(b"sleep 8 >/dev/null 2>&1 </dev/null")

sys.exit(protocol.run(command))
"""


@pytest.mark.serial
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.slow
def test_a_stop_during_a_long_call_in_c_still_ends_the_run_at_once(tmp_path):
    import json
    import signal
    import time

    from backend_testing import ROOT

    script = tmp_path / "stuck.py"
    script.write_text(_STUCK_IN_C)
    out = tmp_path / "out" / "map.tif"
    out.parent.mkdir()
    out.write_bytes(b"the user's map")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"),
    )
    assert json.loads(proc.stdout.readline())["stage"] == "working"
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    stop_s = time.monotonic() - sent
    rest, err = proc.communicate(timeout=30)
    events = [json.loads(x) for x in rest.splitlines() if x.strip()]
    print(f"\nSIGTERM inside an 8 s C call: gone {stop_s:.2f} s later")
    assert proc.returncode == 3, err
    assert stop_s < 3.0
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "cancelled"
    assert sorted(p.name for p in out.parent.iterdir()) == ["map.tif"]
    assert out.read_bytes() == b"the user's map"
