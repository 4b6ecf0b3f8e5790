"""Run the backend in its own process and turn its JSON-lines events into QGIS feedback.

``python -m cwsc <command> ...`` writes one JSON object per line on stdout (see
``cwsc/runtime/protocol.py`` and ``docs/design.md``). A reader thread puts the lines on a queue; the
calling thread polls the queue and ``feedback.isCanceled()`` every 100 ms, so Cancel
stops the whole process tree (SIGTERM, then SIGKILL after 1.5 s) within 2 s.

The interpreter comes from :mod:`cwsc_qgis.interpreter`.
"""

import collections
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

from qgis.core import QgsProcessingException, QgsProcessingFeedback

from . import settings
from .interpreter import SETUP_HINT, check_backend, clean_env, find_backend_python, popen_kwargs

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 3
POLL_S = 0.1
TERM_GRACE_S = 1.5
STDERR_TAIL_LINES = 25
#: A progress text with new numbers only goes to the log after this share of the run.
LINE_EVERY = 0.25


class BackendCancelled(QgsProcessingException):
    """Raised after Cancel once the backend process tree is gone."""


def _group_has_live_members(pgid):
    """True while a process of group ``pgid`` is alive (zombies do not count; Linux /proc)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def terminate_tree(proc, grace_s=TERM_GRACE_S):
    """SIGTERM the backend's process group, SIGKILL what is left after ``grace_s``."""
    if sys.platform == "win32":
        try:
            proc.send_signal(signal.CTRL_BREAK_EVENT)
            proc.wait(timeout=grace_s)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        subprocess.run(
            ["taskkill", "/F", "/T", "/PID", str(proc.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **popen_kwargs(),
        )
        proc.wait()
        return
    pgid = proc.pid  # start_new_session=True: the child leads its own group
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    # Whatever is left of the group (the backend itself, worker processes) goes now.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline and _group_has_live_members(pgid):
        time.sleep(0.01)


def remove_temporaries(outputs, pid):
    """After a cancel or failure: remove the temporary files of the backend process ``pid``
    (``.<name>.cwsc-<pid>-<token>.part``, see cwsc/runtime/outputs.py) beside each output. Only
    that run's files: never an output, never another run's temporaries. The backend removes
    its own on SIGTERM; this is for a backend that had to be killed."""
    if not pid:
        return
    for path in outputs:
        if not path:
            continue
        folder, name = os.path.split(os.path.abspath(path))
        prefix = ".{}.cwsc-{}-".format(name, pid)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for other in names:
            if other.startswith(prefix) and ".part" in other:
                try:
                    os.remove(os.path.join(folder, other))
                except OSError:
                    pass


class BackendRun:
    """One backend command; ``run()`` blocks, feeds ``feedback`` and returns the result event."""

    #: the most recent run (its ``proc.pid`` leads the process group): for tests and debugging
    last = None

    def __init__(self, command, args, feedback=None, outputs=(), python=None, root=None, check=True):
        self.command = command
        self.args = [str(a) for a in args]
        self.feedback = feedback if feedback is not None else QgsProcessingFeedback()
        self.outputs = [o for o in outputs if o]
        self.root = root if root is not None else settings.backend_root()
        self.python = python
        self.source = "the caller"
        self.check = check
        self.proc = None
        self.started = None
        self.first_progress_s = None
        self.stderr_tail = collections.deque(maxlen=200)
        self.result = None
        self.error = None
        self.cancel_s = None

    # -- event handling -------------------------------------------------------------------
    def _push_warning(self, message):
        fb = self.feedback
        if hasattr(fb, "pushWarning"):
            fb.pushWarning(message)
        else:  # pragma: no cover - QGIS < 3.16
            fb.reportError(message, False)

    def _handle(self, raw):
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return
        try:
            event = json.loads(text)
            kind = event.get("event")
        except (ValueError, AttributeError):
            self.feedback.pushConsoleInfo(text)
            return
        fb = self.feedback
        if kind == "progress":
            if self.first_progress_s is None:
                self.first_progress_s = time.monotonic() - self.started
                fb.pushDebugInfo("backend: first progress after {:.2f} s".format(self.first_progress_s))
            try:
                fb.setProgress(100.0 * float(event.get("fraction", 0.0)))
            except (TypeError, ValueError):
                pass
            stage = event.get("stage")
            if stage and stage != getattr(self, "_stage", None):
                self._stage = stage
                if hasattr(fb, "setProgressText") and self._worth_a_line(str(stage), event.get("fraction")):
                    fb.setProgressText(str(stage))
            extra = {k: v for k, v in event.items() if k not in ("event", "fraction", "stage")}
            if extra:
                fb.pushInfo(
                    "{}: {}".format(
                        stage or "progress", ", ".join("{}={}".format(k, _fmt(v)) for k, v in extra.items())
                    )
                )
        elif kind == "log":
            level = str(event.get("level", "info")).lower()
            message = str(event.get("message", ""))
            if level in ("warning", "error"):
                self._push_warning(message)
            elif level == "debug":
                fb.pushDebugInfo(message)
            else:
                fb.pushInfo(message)
        elif kind == "result":
            self.result = {"outputs": event.get("outputs") or {}, "metrics": event.get("metrics") or {}}
        elif kind == "error":
            self.error = {
                "kind": event.get("kind", "internal"),
                "message": str(event.get("message", "unknown error")),
            }
        else:
            fb.pushDebugInfo(text)

    def _worth_a_line(self, stage, fraction):
        """Whether a new progress text goes to the log (QGIS's dialog writes each one as a
        line): a new kind of stage always, the same one with new numbers ("calibrating: 230
        of 2,298 cells", "epoch 7 of 100") at most every quarter of the run; the progress bar
        shows the rest."""
        kind = re.sub(r"\d[\d,.]*", "#", stage)
        try:
            fraction = float(fraction)
        except (TypeError, ValueError):
            fraction = 0.0
        last = getattr(self, "_last_line", None)
        if last is not None and last[0] == kind and fraction - last[1] < LINE_EVERY:
            return False
        self._last_line = (kind, fraction)
        return True

    # -- the run --------------------------------------------------------------------------
    def command_line(self):
        return [self.python, "-m", "cwsc", self.command] + self.args

    def run(self):
        fb = self.feedback
        self.started = time.monotonic()
        if self.root is None:
            raise QgsProcessingException(
                "The CWSC plugin cannot find its 'cwsc' package (looked in {}/lib and its parent "
                "folder). Reinstall the plugin from the zip made by 'make package'.".format(
                    settings.PLUGIN_DIR
                )
            )
        if self.python is None:
            self.python, self.source = find_backend_python()
        if self.check:
            check_backend(self.python, self.source, self.root)
        fb.pushDebugInfo("backend: {}".format(subprocess.list2cmdline(self.command_line())))
        try:
            self.proc = subprocess.Popen(
                self.command_line(),
                cwd=self.root,
                env=clean_env(self.root),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                **popen_kwargs(),
            )
        except OSError as exc:
            raise QgsProcessingException(
                "Cannot start the CWSC backend '{}' (from {}): {}. {}".format(
                    self.python, self.source, exc, SETUP_HINT
                )
            ) from None
        BackendRun.last = self
        interrupted = []
        restore = _catch_interrupt(interrupted)
        try:
            return self._follow(fb, interrupted)
        finally:
            restore()

    def _follow(self, fb, interrupted):
        lines = queue.Queue()
        out_thread = threading.Thread(target=_pump, args=(self.proc.stdout, lines.put), daemon=True)
        err_thread = threading.Thread(target=_pump, args=(self.proc.stderr, self._stderr), daemon=True)
        out_thread.start()
        err_thread.start()
        cancelled = False
        try:
            while True:
                if fb.isCanceled() or interrupted:
                    cancelled = True
                    t0 = time.monotonic()
                    terminate_tree(self.proc)
                    self.cancel_s = time.monotonic() - t0
                    break
                try:
                    raw = lines.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if raw is None:  # stdout closed: the backend is finishing
                    break
                self._handle(raw)
            if not cancelled:
                while self.proc.poll() is None:
                    if fb.isCanceled() or interrupted:
                        cancelled = True
                        t0 = time.monotonic()
                        terminate_tree(self.proc)
                        self.cancel_s = time.monotonic() - t0
                        break
                    time.sleep(POLL_S / 2)
        except BaseException:
            terminate_tree(self.proc)
            self.proc.stdout.close()
            self.proc.stderr.close()
            remove_temporaries(self.outputs, self.proc.pid)
            raise
        out_thread.join(timeout=2)
        err_thread.join(timeout=2)
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass
        code = self.proc.returncode
        if cancelled or code == EXIT_CANCELLED or (self.error or {}).get("kind") == "cancelled":
            remove_temporaries(self.outputs, self.proc.pid)
            raise BackendCancelled(
                "Cancelled: the CWSC backend '{}' was stopped and left no output.".format(self.command)
            )
        if code != EXIT_OK or self.error is not None:
            remove_temporaries(self.outputs, self.proc.pid)
            raise QgsProcessingException(self._failure_message(code))
        if self.result is None:
            raise QgsProcessingException(
                "The CWSC backend '{}' finished without a result.{}".format(self.command, self._tail())
            )
        return self.result

    def _stderr(self, raw):
        if raw is not None:
            self.stderr_tail.append(raw.decode("utf-8", "replace").rstrip())

    def _tail(self, lines=STDERR_TAIL_LINES):
        tail = [line for line in list(self.stderr_tail)[-lines:] if line.strip()]
        if not tail:
            return ""
        return "\n\nBackend stderr (last lines):\n" + "\n".join(tail)

    def _failure_message(self, code):
        error = self.error or {}
        kind = error.get("kind")
        message = error.get("message")
        if kind == "bad_input" or (code == EXIT_BAD_INPUT and message):
            return "CWSC {}: {}".format(self.command, message)
        if message:
            return "CWSC {} failed: {}{}".format(self.command, message, self._tail())
        return "CWSC {} failed (backend exit status {}).{}".format(
            self.command, code, self._tail() or " The backend wrote nothing on stderr."
        )


def _pump(stream, put):
    try:
        for raw in iter(stream.readline, b""):
            put(raw)
    except (OSError, ValueError):
        pass
    finally:
        put(None)


def _fmt(value):
    if isinstance(value, float):
        return "{:.4g}".format(value)
    return str(value)


def _catch_interrupt(interrupted):
    """Where the run holds the main thread (qgis_process, a script), Ctrl-C (SIGINT) stops
    the backend like Cancel, and the run then fails: qgis_process ignores SIGINT itself, and the
    backend runs in a process group of its own. Returns the function that puts the previous
    handler back."""
    if threading.current_thread() is not threading.main_thread() or sys.platform == "win32":
        return lambda: None
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, _frame: interrupted.append(signum))
    except (ValueError, OSError):
        return lambda: None
    return lambda: signal.signal(signal.SIGINT, previous)


def run_backend(command, args, feedback=None, outputs=(), **kwargs):
    """Run ``python -m cwsc <command> <args>``; return ``{"outputs":..., "metrics":...}``."""
    return BackendRun(command, args, feedback=feedback, outputs=outputs, **kwargs).run()
