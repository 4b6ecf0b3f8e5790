"""The event stream between the backend and the QGIS plugin.

Every line on stdout is one JSON object (see ``docs/design.md``, "The process boundary"):
``progress``, ``log``, ``result`` (once, at success) and ``error``. Exit status: 0 success,
2 bad input, 3 cancelled, 1 anything else. Free text and tracebacks go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import stat
import sys
import threading
import time
import traceback
from typing import Any, Callable, Iterator

from cwsc import progress as _progress
from cwsc.errors import BadInput, Cancelled
from cwsc.io.jsonable import jsonable

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 3


#: Where events go for a person at a terminal (:class:`cwsc.runtime.console.Console`, set by
#: :func:`use_console`); None: JSON lines on stdout, the plugin's protocol.
_console: Any = None


def use_console(console: Any) -> None:
    """Render the events of this process for a person (``console.event(kind, fields)``)
    instead of writing JSON lines; None goes back to JSON lines."""
    global _console
    _console = console


def emit(event: str, **fields: Any) -> None:
    """Write one event as a JSON line on stdout and flush it at once (or hand it to the
    console, see :func:`use_console`). When nobody reads them any more (the plugin or a pipe's
    reader is gone), the run ends: see :func:`_reader_gone`."""
    if _console is not None:
        try:
            _console.event(event, jsonable(fields))
        except BrokenPipeError:
            _reader_gone()
        except ValueError as exc:  # a stream closed by a clean-up, as for the JSON lines
            if "closed file" not in str(exc):
                raise
            _reader_gone()
        return
    line = json.dumps({"event": event, **jsonable(fields)}, ensure_ascii=False)
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):  # ValueError: stdout was closed by a clean-up
        _reader_gone()


class _Throttle:
    """Keeps progress events to a few per second so the pipe never floods."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.last = 0.0

    def ready(self, fraction: float) -> bool:
        now = time.monotonic()
        if fraction >= 1.0 or now - self.last >= self.interval_s:
            self.last = now
            return True
        return False


_throttle = _Throttle()


def progress(fraction: float, stage: str, **extra: Any) -> None:
    """Report overall progress in [0, 1] for ``stage``; extra fields (losses, ...) ride along."""
    fraction = float(min(max(fraction, 0.0), 1.0))
    if extra or _throttle.ready(fraction):
        emit("progress", fraction=round(fraction, 4), stage=stage, **extra)


def log(message: str, level: str = "info") -> None:
    emit("log", level=level, message=message)


def warning(message: str) -> None:
    log(message, level="warning")


def result(outputs: dict[str, Any], metrics: dict[str, Any]) -> None:
    emit("result", outputs=outputs, metrics=metrics)


class EventHandler(logging.Handler):
    """Turns the library's log records into events: a record carrying a progress fraction
    (:func:`cwsc.progress.progress`) into ``progress``, INFO into a ``log`` line, WARNING and
    above into a ``log`` line of level warning. DEBUG records without progress are dropped."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fraction = getattr(record, _progress.FRACTION, None)
            if fraction is not None:
                progress(fraction, record.getMessage(), **getattr(record, _progress.EXTRA, {}))
            elif record.levelno >= logging.WARNING:
                warning(record.getMessage())
            elif record.levelno >= logging.INFO:
                log(record.getMessage())
        except BrokenPipeError:
            raise
        except Exception:  # noqa: BLE001 - logging must never break a run
            self.handleError(record)


def bridge_logging() -> Callable[[], None]:
    """Send the package's log records as events for the length of a command; returns the
    function that takes the bridge down again."""
    logger = logging.getLogger("cwsc")
    handler = EventHandler(logging.DEBUG)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def remove() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    return remove


#: Held while a stretch runs that a stop must not cut in two (the commit of a run's outputs):
#: the watchdog waits for it, and the signal handler defers the stop until it ends.
_critical = threading.RLock()
_deferred: list[int] | None = None
_critical_owner: int | None = None
_committed = threading.Event()
_running = threading.Event()


@contextlib.contextmanager
def critical() -> Iterator[list[int]]:
    """A stretch that a stop (SIGTERM, SIGINT) must not cut: the stop waits until it ends.
    Yields the list of the stop signals that arrived meanwhile; the caller decides what they
    mean once the stretch is over (raise :class:`Cancelled`, or keep a finished result)."""
    global _deferred, _critical_owner
    with _critical:
        outer, owner = _deferred, _critical_owner
        arrived: list[int] = outer if outer is not None else []
        _deferred, _critical_owner = arrived, threading.get_ident()
        try:
            yield arrived
        finally:
            _deferred, _critical_owner = outer, owner


def _run_stop_actions() -> None:
    """What a run that has to end at once leaves behind is removed (its temporaries)."""
    for action in list(_stop_actions):
        try:
            action()
        except Exception:  # noqa: BLE001 - a failed clean-up must not keep us alive
            pass


def _stop_now(code: int) -> None:
    """End the process at once: the stop actions (temporaries removed), then exit with
    ``code``; never inside a commit (this waits for it, or, called from inside it, returns and
    leaves the stop to the next call)."""
    if _critical_owner == threading.get_ident():
        return
    with _critical:
        _run_stop_actions()
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        os._exit(code)


def _reader_gone() -> None:
    """stdout's reader is gone (SIGPIPE): a backend nobody listens to stops, removing what
    it made, instead of living on as an orphan with its worker processes."""
    if threading.current_thread() is threading.main_thread() and not _running.is_set():
        raise BrokenPipeError("nobody reads the events")
    _stop_now(EXIT_INTERNAL)


def _watch_parent(poll_s: float = 1.0) -> None:
    """A thread that ends the run when the process that started it dies (the plugin or
    qgis_process killed): this process is then adopted by another, so its parent id changes.
    Only where the events go into a pipe, as the plugin reads them: a run whose output goes to
    a file or a terminal (``nohup cwsc calibrate ... > log &``) outlives its shell on purpose."""
    try:
        if not stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode):
            return
    except (OSError, ValueError):
        return
    parent = os.getppid()

    def watch() -> None:
        while not _finished.wait(poll_s):
            if os.getppid() != parent:
                _stop_now(EXIT_INTERNAL)
                return

    threading.Thread(target=watch, name="cwsc-parent-watch", daemon=True).start()


def mark_committed() -> None:
    """The run's outputs are in place: a stop from now on no longer makes it a cancel."""
    _committed.set()


def _on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
    if _deferred is not None:
        _deferred.append(signum)
        return
    # Raising here unwinds the main thread through the command's ``Outputs`` context
    # (cwsc/runtime/outputs.py), so the temporary files are removed before the process exits
    # with status 3.
    signal.signal(signum, signal.SIG_IGN)
    raise Cancelled(f"stopped by signal {signal.Signals(signum).name}")


#: Seconds the main thread has to unwind after a stop signal before the watchdog ends the
#: run itself. Python runs a signal handler only between bytecodes of the main thread, so a
#: long computation in C (a training step on a loaded machine, a calibration kernel) would
#: otherwise delay Cancel until it returns.
STOP_GRACE_S = 0.5
_stop_actions: list[Callable[[], None]] = []
_finished = threading.Event()


def on_stop(action: Callable[[], None]) -> Callable[[], None]:
    """Have ``action()`` run if the watchdog has to end a stopped run (remove temporaries);
    returns the function that takes it back."""
    _stop_actions.append(action)

    def forget() -> None:
        if action in _stop_actions:
            _stop_actions.remove(action)

    return forget


def _start_watchdog() -> None:
    """A thread woken by the C-level signal handler (through the wakeup fd) that, when the
    main thread has not finished ``STOP_GRACE_S`` after SIGTERM or SIGINT, runs the stop
    actions, reports the cancel and exits with status 3."""
    if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):
        os.close(read_fd)
        os.close(write_fd)
        return
    stops = {int(signal.SIGTERM), int(signal.SIGINT)}

    def watch() -> None:
        while True:
            try:
                data = os.read(read_fd, 16)
            except OSError:
                return
            if not data:
                return
            if not stops.intersection(data):
                continue
            if _finished.wait(STOP_GRACE_S):
                return
            # Never inside a commit: wait until it is over (and keep the next one from
            # starting), then give the main thread the same grace to finish on its own.
            if not _critical.acquire(blocking=False):
                _critical.acquire()
                if _finished.wait(STOP_GRACE_S):
                    _critical.release()
                    return
            if _committed.is_set():
                # The outputs are in place: the run is done but for its last words.
                _critical.release()
                if not _finished.wait(10 * STOP_GRACE_S):
                    sys.stdout.flush()
                    os._exit(EXIT_OK)
                return
            _run_stop_actions()
            name = signal.Signals(next(b for b in data if b in stops)).name
            try:
                emit("error", kind="cancelled", message=f"stopped by signal {name}")
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(EXIT_CANCELLED)

    threading.Thread(target=watch, name="cwsc-stop-watchdog", daemon=True).start()


def run(command: Callable[[], None]) -> int:
    """Run one command, turning exceptions into an ``error`` event and an exit status."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    _start_watchdog()
    _watch_parent()
    unbridge = bridge_logging()
    _running.set()
    try:
        return _run(command)
    finally:
        _running.clear()
        unbridge()
        if _console is not None:
            _console.close()
        _finished.set()


def _run(command: Callable[[], None]) -> int:
    try:
        command()
        return EXIT_OK
    except BrokenPipeError:
        # Nobody reads our events any more (the plugin went away): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INTERNAL
    except BadInput as exc:
        emit("error", kind="bad_input", message=str(exc))
        return EXIT_BAD_INPUT
    except (Cancelled, KeyboardInterrupt) as exc:
        emit("error", kind="cancelled", message=str(exc) or "cancelled")
        return EXIT_CANCELLED
    except MemoryError:
        traceback.print_exc(file=sys.stderr)
        emit("error", kind="internal", message="out of memory: try a smaller chunk or batch size")
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the boundary: everything else is internal
        traceback.print_exc(file=sys.stderr)
        emit("error", kind="internal", message=f"{type(exc).__name__}: {exc}")
        return EXIT_INTERNAL
