"""The event stream between the backend and the QGIS plugin.

Every line on stdout is one JSON object (see ``docs/design.md``, "The process boundary"):
``progress``, ``log``, ``result`` (once, at success) and ``error``. Exit status: 0 success,
2 bad input, 3 cancelled, 1 anything else. Free text and tracebacks go to stderr.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
import traceback
from typing import Any, Callable

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 3


class BadInput(Exception):
    """Input the user can fix: the message names the file, band or parameter."""


class Cancelled(BaseException):
    """The run was stopped (SIGTERM / SIGINT from the plugin's Cancel).

    A BaseException, like KeyboardInterrupt: an ``except Exception`` that guards a fallback
    (a compiler failure, a GPU kernel) must never swallow a stop."""


def jsonable(value: Any) -> Any:
    """``value`` with numpy/torch scalars as Python numbers and NaN/inf as None: JSON has no
    NaN, so a metric that could not be computed travels as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return jsonable(value.item())
        except (TypeError, ValueError):
            pass
    return value


def emit(event: str, **fields: Any) -> None:
    """Write one event as a JSON line on stdout and flush it at once."""
    line = json.dumps({"event": event, **jsonable(fields)}, ensure_ascii=False)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


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


def _on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
    # Raising here unwinds the main thread through the command's ``Outputs`` context
    # (backend/outputs.py), so the temporary files are removed before the process exits
    # with status 3.
    signal.signal(signum, signal.SIG_IGN)
    raise Cancelled(f"stopped by signal {signal.Signals(signum).name}")


def run(command: Callable[[], None]) -> int:
    """Run one command, turning exceptions into an ``error`` event and an exit status."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        command()
        return EXIT_OK
    except BrokenPipeError:
        # Nobody reads our events any more (the plugin went away): stop quietly.
        import os

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
