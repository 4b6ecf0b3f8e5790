"""The command line: for a person at a terminal (a progress bar, readable warnings, a summary,
errors in the words they typed, Ctrl-C in one line, every default in --help) and, with
``--json``, the JSON-lines protocol the plugin reads, unchanged."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest
from backend_testing import FAST, ROOT, calibrate_args, last_event, run_backend

CWSC = [sys.executable, "-m", "cwsc"]


def _human(args, timeout=300):
    """``cwsc ARGS`` as a person runs it in a script (no --json): (exit code, stdout, stderr)."""
    done = subprocess.run(
        [*CWSC, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    return done.returncode, done.stdout, done.stderr


def _on_a_terminal(args, timeout=300):
    """``cwsc ARGS`` with stderr on a terminal of 120 columns (a pseudo-terminal):
    (exit code, stdout, what the terminal received)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    received = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's last writer is gone
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc = subprocess.Popen(
        [*CWSC, *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    os.close(slave)
    out, _ = proc.communicate(timeout=timeout)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, out, b"".join(received).decode("utf-8", "replace")


@pytest.mark.slow
def test_a_terminal_run_shows_a_progress_bar_and_a_summary(forcing, tmp_path):
    paths, _ = forcing
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, terminal = _on_a_terminal(calibrate_args(paths, out))
    assert code == 0, terminal
    # the bar: the stage with the cells done, the share and the time left
    frames = terminal.split("\r")
    assert any("calibrating:" in f and "of 12 cells" in f and "%|" in f and " left" in f for f in frames), (
        frames
    )
    assert '{"event"' not in terminal + stdout
    # the summary: what was written (as the options the user typed) and the main figures
    assert stdout.startswith("cwsc calibrate: done in ")
    assert f"--out-cwsc  {out / 'cwsc.tif'}" in stdout and f"--out-kge   {out / 'kge.tif'}" in stdout
    assert "cells calibrated" in stdout and "median kge" in stdout


@pytest.mark.slow
def test_without_a_terminal_the_stages_are_lines(forcing, tmp_path):
    """A run whose stderr goes to a log file: one line per stage, no bar redrawn."""
    paths, _ = forcing
    code, stdout, stderr = _human(calibrate_args(paths, tmp_path))
    assert code == 0, stderr
    assert "\r" not in stderr and "%|" not in stderr
    assert any(line.startswith("[") and "calibrating:" in line for line in stderr.splitlines()), stderr
    assert "Written:" in stdout


@pytest.mark.slow
def test_json_lines_are_the_plugins_protocol_unchanged(forcing, tmp_path):
    """``--json`` (before or after the command): every stdout line one event, written as
    ``json.dumps`` writes it; nothing for a person on stdout."""
    paths, _ = forcing
    args = calibrate_args(paths, tmp_path)
    for argv in (["--json", *args], [*args, "--json"]):
        done = subprocess.run([*CWSC, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        events = [json.loads(line) for line in lines]
        assert [json.dumps(e, ensure_ascii=False) for e in events] == lines
        assert events[0] == {"event": "progress", "fraction": 0.0, "stage": "starting calibrate"}
        assert events[-1]["event"] == "result" and "cells_calibrated" in events[-1]["metrics"]
        assert "Written:" not in done.stdout + done.stderr


@pytest.mark.slow
def test_quiet_keeps_the_warnings_only(forcing, tmp_path):
    paths, _ = forcing
    code, stdout, stderr = _human([*calibrate_args(paths, tmp_path), "--quiet"])
    assert code == 0, stderr
    assert stdout == ""
    assert all(line.startswith("warning: ") for line in stderr.splitlines()), stderr
    assert (tmp_path / "cwsc.tif").exists()


@pytest.mark.slow
def test_errors_name_the_option_the_user_typed(forcing, tmp_path):
    """The backend's message names PRECIPITATION (the plugin shows that); the command line
    says --precip, in one line, without a traceback; exit 2."""
    paths, _ = forcing
    args = calibrate_args({**paths, "p": tmp_path / "missing.tif"}, tmp_path)
    code, stdout, stderr = _human(args)
    assert code == 2 and stdout == ""
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("cwsc calibrate: --precip") and "missing.tif" in lines[-1], stderr
    assert "PRECIPITATION" not in stderr and "Traceback" not in stderr
    rc, events, _ = run_backend(*args)
    assert rc == 2 and last_event(events, "error")["message"].startswith("PRECIPITATION")


def test_usage_mistakes_name_the_option_and_show_the_usage(forcing, tmp_path):
    paths, _ = forcing
    code, stdout, stderr = _human([*calibrate_args(paths, tmp_path), "--kge-threshold", "high"])
    assert code == 2 and stdout == ""
    assert stderr.startswith("usage: cwsc calibrate")
    assert "--kge-threshold must be a number, got 'high'" in stderr and "MODEL_KGE_THRESHOLD" not in stderr


def test_usage_errors_are_bad_input_events_with_json():
    code, events, _ = run_backend("mask", "--labels", "x.tif")
    assert code == 2 and last_event(events, "error")["kind"] == "bad_input"


@pytest.mark.slow
def test_ctrl_c_during_a_run_is_one_line(forcing, tmp_path):
    """Ctrl-C at a terminal reaches the whole process group, the worker processes too: the
    run stops with one line, exit 3, no traceback from any process, no output left."""
    paths, _ = forcing
    args = [
        *calibrate_args(paths, tmp_path)[: -len(FAST)],
        *("--max-evaluations", "50000", "--restarts", "16", "--workers", "2", "--shard-cells", "4"),
    ]
    proc = subprocess.Popen(
        [*CWSC, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    seen, t0 = [], time.monotonic()
    for line in proc.stderr:  # the stages, one line each (no terminal)
        seen.append(line)
        if "calibrating:" in line:
            break
        assert time.monotonic() - t0 < 120, seen
    time.sleep(1.0)  # the workers are calibrating
    os.killpg(proc.pid, signal.SIGINT)
    out, rest = proc.communicate(timeout=60)
    stderr = "".join(seen) + rest
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr and "leaked" not in stderr, stderr
    assert rest.strip().splitlines()[-1] == "cwsc calibrate: stopped (Ctrl-C); your files are as they were."
    assert out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.tif", "p.tif", "q.tif"]


@pytest.mark.parametrize("command", ["calibrate", "train", "learn", "evaluate-catchments", "mask"])
def test_help_opens_with_what_the_command_does_and_shows_every_default(command):
    from cwsc.cli import build_parser, command_options

    done = subprocess.run([*CWSC, command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    summary = next(a for a in build_parser()._actions if a.dest == "command")
    said = next(a.help for a in summary._choices_actions if a.dest == command)
    opening = done.stdout.split("\n\n")[1]
    assert opening.replace("\n", " ").strip().lower().startswith(said.lower())
    # "--trees, --no-trees": a boolean option is listed once under both its names.
    entries = {}
    for e in re.split(r"\n  (?=--)", done.stdout)[1:]:
        names, text = e.split("  ", 1)[0], " ".join(e.split())
        entries.update({part.split()[0]: text for part in names.split(",")})
    for flag, option in command_options(command).items():
        if option["required"] or flag in ("--json", "--quiet", "--keep-work", "--shared-sc", "--allow-shift"):
            continue
        assert entries[flag].count("(default") == 1, entries[flag]


def test_the_defaults_help_shows_are_the_librarys():
    """What --help says a missing --epochs, --batch-size, --blocks or --widths means is what
    train and learn use."""
    from cwsc.cli import command_options
    from cwsc.ml.physics.learning import LearnConfig
    from cwsc.ml.training import RECIPES

    def said(command, flag):
        return command_options(command)[flag]["help"].split("(default: ", 1)[1]

    from cwsc.ml.training import MAX_GROWN_BATCH

    default, seed = RECIPES["default"], RECIPES["seed"]
    assert said("train", "--epochs").startswith(f"{default.epochs}; {seed.epochs} with --recipe seed")
    assert said("train", "--batch-size").startswith(
        f"{default.batch_size}, growing to 128 or {MAX_GROWN_BATCH}"
    )
    assert f"; {seed.batch_size} with --recipe seed" in said("train", "--batch-size")
    assert said("train", "--blocks").startswith(f"{default.blocks}; {seed.blocks} with")
    widths = ",".join(map(str, default.widths)), ",".join(map(str, seed.widths))
    assert said("train", "--widths").startswith(f"{widths[0]}; {widths[1]} with")
    learn = LearnConfig()
    assert said("learn", "--blocks").startswith(str(learn.blocks))
    assert said("learn", "--widths").startswith(",".join(map(str, learn.widths)))
