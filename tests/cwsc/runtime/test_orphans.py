"""A backend nobody listens to ends on its own (issue 27, hangs and orphans): when its stdout
closes (``cwsc calibrate ... | head``, the plugin gone) or the process that started it dies,
it removes what it made and exits within seconds, its worker processes with it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from backend_testing import ROOT, calibrate_args

pytestmark = pytest.mark.slow  # subprocess runs of the backend, tens of seconds in all


def _long_run(paths, out):
    return (
        [sys.executable, "-m", "cwsc", "--json"]
        + calibrate_args(paths, out)[:-2]
        + [
            "--max-evaluations",
            "50000",
            "--restarts",
            "32",
            "--workers",
            "2",
        ]
    )


def _backend_tree(text):
    """The pids of the backend whose command line holds ``text`` and of its descendants."""
    parents, commands = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                commands[int(pid)] = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as fh:
                parents[int(pid)] = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree = {pid for pid, cmd in commands.items() if "-m cwsc" in cmd and text in cmd}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


def _gone_within(pids, seconds):
    t0 = time.monotonic()
    while any(os.path.exists(f"/proc/{pid}") for pid in pids):
        if time.monotonic() - t0 > seconds:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.serial
def test_a_closed_stdout_ends_the_run(forcing, tmp_path):
    paths, _ = forcing
    out = tmp_path / "piped"
    out.mkdir()
    command = " ".join(shlex.quote(str(a)) for a in _long_run(paths, out)) + " | head -n 3"
    t0 = time.monotonic()
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.count("\n") == 3
    # bash waits for the whole pipeline: the backend ended once head had its lines.
    assert time.monotonic() - t0 < 30
    assert not _backend_tree(str(out))
    assert [p.name for p in out.iterdir()] == []


@pytest.mark.serial
def test_the_death_of_the_parent_ends_the_run(forcing, tmp_path):
    paths, _ = forcing
    out = tmp_path / "orphaned"
    out.mkdir()
    events = tmp_path / "events.txt"
    # bash starts the backend with its events going into a pipe that `cat` keeps reading;
    # killing bash leaves the backend without its parent but with a reader.
    command = (
        " ".join(shlex.quote(str(a)) for a in _long_run(paths, out)) + f" | cat > {shlex.quote(str(events))}"
    )
    shell = subprocess.Popen(["bash", "-c", command], cwd=ROOT)
    t0 = time.monotonic()
    while "calibrating" not in (events.read_text() if events.exists() else ""):
        assert time.monotonic() - t0 < 120 and shell.poll() is None
        time.sleep(0.1)
    tree = _backend_tree(str(out))
    assert tree
    shell.send_signal(signal.SIGKILL)
    shell.wait(timeout=30)
    assert _gone_within(tree, 10), tree
    assert [p.name for p in out.iterdir()] == []
