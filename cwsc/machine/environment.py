"""Every ``CWSC_*`` environment variable the backend reads, read here and at call time.

Settings a user or an administrator may set for a whole machine or job (none is needed):

- ``CWSC_NATIVE``: ``0`` turns the hand-written objective kernels (C on CPU, Triton on
  CUDA) off; ``1`` or ``auto`` (default) uses them where they run.
- ``CWSC_COMPILE``: ``0``/``1``/``auto`` (default): fuse the torch path's month steps with
  ``torch.compile`` (auto: for jobs large enough to repay the compile time).
- ``CWSC_WORKERS``: worker processes for CPU calibration when ``--workers`` is not given
  (default: the cores this process may use). ``0`` is refused.
- ``CWSC_CACHE_DIR``: where the C kernels are built (default ``$XDG_CACHE_HOME/cwsc`` or
  ``~/.cache/cwsc``).
- ``CC``: the C compiler for the kernels (default: ``cc``, ``gcc`` or ``clang``).
- ``CWSC_JSON``: ``1`` writes a command's events as JSON lines on stdout, as ``--json`` does
  (the QGIS plugin sets it for the processes it starts); unset, a run shows a progress bar
  and a summary.

Tuning knobs, for benchmarks and tests:

- ``CWSC_BLOCK_MONTHS``: months per compiled call of the torch path (default 10).
- ``TRITON_INTERPRET=1`` (Triton's own): run the Triton kernel in its interpreter, on any
  device.
"""

from __future__ import annotations

import os
from pathlib import Path

#: See ``CWSC_BLOCK_MONTHS`` and :mod:`cwsc.hydro.models`.
BLOCK_MONTHS = 10

_OFF = ("0", "false", "no", "off")
_ON = ("1", "true", "yes", "on")


def _switch(name: str) -> bool | None:
    """True, False, or None for auto/unset."""
    value = os.environ.get(name, "auto").strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    return None


def json_events() -> bool:
    """``CWSC_JSON``: True when a program that reads the JSON-lines events asks for them."""
    return _switch("CWSC_JSON") is True


def kernels_switch() -> bool | None:
    """``CWSC_NATIVE``: False (off), True (on) or None (auto)."""
    return _switch("CWSC_NATIVE")


def compile_switch() -> bool | None:
    """``CWSC_COMPILE``: False (off), True (on) or None (auto)."""
    return _switch("CWSC_COMPILE")


def workers() -> int | None:
    """``CWSC_WORKERS`` as a number, or None when unset."""
    from cwsc.errors import ParameterError

    text = os.environ.get("CWSC_WORKERS", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ParameterError(
            f"CWSC_WORKERS must be a whole number of 1 or more, got {text!r} (unset it to use every core)"
        )
    return int(text)


def cache_dir() -> Path:
    """Where built kernels are kept (see the module docstring)."""
    env = os.environ.get("CWSC_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cwsc"


def c_compilers() -> list[str]:
    """Names of C compilers to try, ``$CC`` first."""
    return [n for n in (os.environ.get("CC"), "cc", "gcc", "clang") if n]


def block_months() -> int:
    return max(1, int(os.environ.get("CWSC_BLOCK_MONTHS", BLOCK_MONTHS)))


def triton_interpreter() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def user_name() -> str:
    """A name for per-user temporary folders."""
    try:
        return str(os.getuid())
    except AttributeError:  # Windows
        return os.environ.get("USERNAME", "user")


def test_pause(point: str) -> float:
    """Seconds to wait at ``point`` of a run, from ``CWSC_TEST_PAUSE`` (``commit=2,replaceable=1``):
    a fault hook that holds a file-system window open (a slow network share) so that tests
    can stop or kill a run inside it. 0 when not set."""
    for item in os.environ.get("CWSC_TEST_PAUSE", "").split(","):
        name, _, value = item.partition("=")
        if name.strip() == point:
            try:
                return max(0.0, float(value))
            except ValueError:
                return 0.0
    return 0.0
