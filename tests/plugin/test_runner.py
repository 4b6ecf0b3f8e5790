"""The backend runner against a stand-in backend: events, errors, cancel, environment.
Fast: the stand-in is a few lines of stdlib Python."""

import os
import sys
import time
from pathlib import Path

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from cwsc_qgis import runner

FAKE_MAIN = r"""
import json, os, signal, subprocess, sys, time

def emit(event, **kw):
    sys.stdout.write(json.dumps(dict(event=event, **kw), ensure_ascii=False) + "\n")
    sys.stdout.flush()

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "ok":
    emit("progress", fraction=0.25, stage="read")
    emit("log", level="info", message="hello ünïcode")
    emit("log", level="warning", message="careful")
    print("not json at all", flush=True)
    emit("progress", fraction=0.75, stage="train", epoch=1, train_loss=0.5)
    out = args[args.index("--out") + 1]
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("x")
    emit("result", outputs={"OUTPUT": out}, metrics={"n": 3, "argv": args})
elif cmd == "bad":
    emit("error", kind="bad_input", message="KGE: 'x.tif' is on another grid")
    sys.exit(2)
elif cmd == "boom":
    sys.stderr.write("Traceback (most recent call last):\n  File 'x.py'\nValueError: deep inside\n")
    emit("error", kind="internal", message="ValueError: deep inside")
    sys.exit(1)
elif cmd == "crash":
    sys.stderr.write("Segmentation fault somewhere\n")
    sys.stderr.flush()
    os._exit(7)
elif cmd == "noresult":
    sys.exit(0)
elif cmd == "counting":
    for i in range(1, 101):
        emit("progress", fraction=0.9 * i / 100, stage="calibrating: %s of 2,298 cells" % format(23 * i, ","))
    emit("progress", fraction=0.95, stage="writing the outputs")
    emit("result", outputs={}, metrics={})
elif cmd == "env":
    emit("result", outputs={}, metrics={k: os.environ.get(k) for k in (
        "PYTHONPATH", "PYTHONHOME", "PYTHONUNBUFFERED", "PYTHONIOENCODING", "GDAL_DATA")}
        | {"cwd": os.getcwd()})
elif cmd == "sleep":
    # a worker that ignores SIGTERM (only SIGKILL stops it) and a backend that does not
    worker = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
    if "--stubborn" in args:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        def stop(signum, frame):
            emit("error", kind="cancelled", message="stopped")
            sys.exit(3)
        signal.signal(signal.SIGTERM, stop)
    out = args[args.index("--out") + 1]
    # the backend's temporary name (cwsc/runtime/outputs.py): .<name>.cwsc-<pid>-<token>.part
    part = os.path.join(os.path.dirname(out), ".%s.cwsc-%d-0abc1234.part" % (os.path.basename(out), os.getpid()))
    open(part, "w").close()
    emit("log", level="info", message="worker %d" % worker.pid)
    i = 0
    while True:
        i += 1
        emit("progress", fraction=min(i / 1000, 1), stage="train")
        time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake backend")
    (root / "cwsc").mkdir()
    (root / "cwsc" / "__init__.py").write_text("", encoding="utf-8")
    (root / "cwsc" / "__main__.py").write_text(FAKE_MAIN, encoding="utf-8")
    return str(root)


class RecordingFeedback(QgsProcessingFeedback):
    def __init__(self, cancel_after_progress=None):
        super().__init__()
        self.progress = []
        self.infos, self.warnings, self.texts = [], [], []
        self.cancel_after = cancel_after_progress
        self.cancelled_at = None

    def setProgress(self, value):  # noqa: N802
        self.progress.append(value)
        super().setProgress(value)
        if (
            self.cancel_after is not None
            and len(self.progress) >= self.cancel_after
            and self.cancelled_at is None
        ):
            self.cancelled_at = time.monotonic()
            self.cancel()

    def pushInfo(self, text):  # noqa: N802
        self.infos.append(text)

    def pushWarning(self, text):  # noqa: N802
        self.warnings.append(text)

    def setProgressText(self, text):  # noqa: N802
        self.texts.append(text)


def _run(fake_root, command, args=(), feedback=None, outputs=()):
    return runner.run_backend(
        command,
        list(args),
        feedback=feedback or RecordingFeedback(),
        outputs=outputs,
        python=sys.executable,
        root=fake_root,
        check=False,
    )


def test_events_become_feedback_and_result(fake_root, tmp_path):
    out = tmp_path / "wêird nämé" / "out put.tif"
    out.parent.mkdir()
    fb = RecordingFeedback()
    result = _run(fake_root, "ok", ["--out", str(out)], fb)
    assert result["outputs"]["OUTPUT"] == str(out)
    assert result["metrics"]["argv"] == ["--out", str(out)]  # non-ASCII and spaces intact
    assert out.read_text() == "x"
    assert fb.progress == [25.0, 75.0]
    assert "hello ünïcode" in fb.infos
    assert any("train_loss=0.5" in i for i in fb.infos)
    assert fb.warnings == ["careful"]
    assert fb.texts == ["read", "train"]


def test_bad_input_is_a_readable_exception(fake_root):
    with pytest.raises(QgsProcessingException) as err:
        _run(fake_root, "bad")
    assert str(err.value) == "CWSC bad: KGE: 'x.tif' is on another grid"


def test_internal_error_carries_the_stderr_tail(fake_root):
    with pytest.raises(QgsProcessingException) as err:
        _run(fake_root, "boom")
    text = str(err.value)
    assert "ValueError: deep inside" in text and "Backend stderr (last lines)" in text
    assert "File 'x.py'" in text


def test_crash_without_event(fake_root):
    with pytest.raises(QgsProcessingException) as err:
        _run(fake_root, "crash")
    assert "exit status 7" in str(err.value) and "Segmentation fault" in str(err.value)


def test_no_result_is_an_error(fake_root):
    with pytest.raises(QgsProcessingException, match="without a result"):
        _run(fake_root, "noresult")


def test_clean_environment(fake_root, monkeypatch):
    monkeypatch.setenv("PYTHONHOME", "/qgis/python/home")
    monkeypatch.setenv("PYTHONPATH", "/qgis/python/path")
    monkeypatch.setenv("GDAL_DATA", "/qgis/gdal")
    metrics = _run(fake_root, "env")["metrics"]
    assert metrics["PYTHONPATH"] == fake_root
    assert metrics["PYTHONHOME"] is None and metrics["GDAL_DATA"] is None
    assert metrics["PYTHONUNBUFFERED"] == "1" and metrics["PYTHONIOENCODING"] == "utf-8"
    assert os.path.samefile(metrics["cwd"], fake_root)


def _group_members(pgid):
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            alive.append(int(entry.name))
    return alive


@pytest.mark.serial
@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
@pytest.mark.parametrize("stubborn", [False, True], ids=["backend-stops", "backend-ignores-sigterm"])
def test_cancel_stops_the_process_tree_within_2s(fake_root, tmp_path, stubborn):
    out = tmp_path / "out.tif"
    fb = RecordingFeedback(cancel_after_progress=5)
    args = ["--out", str(out)] + (["--stubborn"] if stubborn else [])
    with pytest.raises(runner.BackendCancelled):
        _run(fake_root, "sleep", args, fb, outputs=[str(out)])
    elapsed = time.monotonic() - fb.cancelled_at
    pgid = runner.BackendRun.last.proc.pid
    assert _group_members(pgid) == []
    print(
        f"\ncancel ({'stubborn' if stubborn else 'cooperative'} backend): process tree gone "
        f"{elapsed:.2f} s after Cancel"
    )
    assert elapsed < 2.0
    assert list(tmp_path.iterdir()) == []  # no output, no partial file


def test_a_failed_run_removes_no_output_and_no_other_runs_file(fake_root, tmp_path):
    """Problem 3 of issue 13: a failed run deleted a finished output of another run that
    was written to the same path while it ran, and that run's temporaries."""
    out = tmp_path / "cwsc.tif"
    out.write_bytes(b"another run's finished map")
    other = tmp_path / ".cwsc.tif.cwsc-{}-89abcdef.part".format(os.getppid())
    other.write_bytes(b"another run's temporary")
    with pytest.raises(QgsProcessingException):
        _run(fake_root, "bad", [], RecordingFeedback(), outputs=[str(out)])
    assert out.read_bytes() == b"another run's finished map"
    assert other.read_bytes() == b"another run's temporary"


def test_a_counting_stage_is_a_few_log_lines_not_a_hundred(fake_root):
    """QGIS's dialog writes every progress text as a log line: "calibrating: N of 2,298 cells"
    a hundred times was noise; the count goes to the log about every quarter of the run, the
    progress bar shows the rest, and a new stage always gets its line."""
    feedback = RecordingFeedback()
    _run(fake_root, "counting", feedback=feedback)
    counting = [t for t in feedback.texts if t.startswith("calibrating")]
    assert 2 <= len(counting) <= 5, feedback.texts
    assert counting[0] == "calibrating: 23 of 2,298 cells"
    assert feedback.texts[-1] == "writing the outputs"
    assert len(feedback.progress) == 101  # the bar still moves with every event
