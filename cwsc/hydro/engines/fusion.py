"""Optional fusion of elementwise work into single kernels with ``torch.compile``.

The month step of a model is some fifty elementwise tensor operations; run eagerly each one
is a pass over memory and, on CUDA, a kernel launch. Compiled, a month is one kernel:
about three times faster on CPU (when a C++ compiler is present) and far fewer launches on
CUDA (triton). Compilation costs seconds once per process (inductor caches it on disk), so
it is only worth it for large batches; any failure falls back to eager execution.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
from typing import Callable

import torch

from cwsc.machine import environment

#: Below this many columns per call the compile time is not paid back (one-off runs).
log = logging.getLogger(__name__)

COMPILE_MIN_COLUMNS = 8192
#: A calibration compiles when it has at least this much work: cells x restarts x max
#: evaluations x months. Measured on the 2-core CPU, demo region (2298 cells, 300
#: evaluations, 360 months, 3 models = 2.5e8 cell-months a model): eager 70 s; compiled 55 s
#: with the inductor cache warm but 154 s cold (three models' blocks to compile). A cold
#: compile is repaid from about 1e9 cell-months a model (a global 0.5 degree run is 2e10).
COMPILE_MIN_WORK = 1e9
#: On CUDA eager work is bound by kernel launches (H100, demo region, eager: ~270 s a model),
#: so compiling pays from far smaller jobs.
COMPILE_MIN_WORK_CUDA = 1e7

_COMPILED: dict[str, Callable] = {}
_BROKEN = False


def compile_wanted(
    columns: int, device: torch.device, mode: str | bool | None = None, work: float | None = None
) -> bool:
    """Whether to fuse: ``mode`` True/False forces it; None/"auto" reads ``CWSC_COMPILE``
    (:mod:`cwsc.machine.environment`) and, for auto, compiles when a compiler (CPU) or
    triton (CUDA) is at hand and the job is big enough: ``work`` (cell-months of a whole
    calibration) of at least :data:`COMPILE_MIN_WORK` when given, else batches of at least
    :data:`COMPILE_MIN_COLUMNS` columns."""
    if _BROKEN:
        return False
    if mode is None or mode == "auto":
        mode = environment.compile_switch()
    if mode is True:
        return True
    if mode is False:
        return False
    min_work = COMPILE_MIN_WORK_CUDA if device.type == "cuda" else COMPILE_MIN_WORK
    if (work < min_work) if work is not None else (columns < COMPILE_MIN_COLUMNS):
        return False
    if device.type == "cuda":
        return importlib.util.find_spec("triton") is not None
    return device.type == "cpu" and any(shutil.which(c) for c in ("g++", "c++", "clang++", "cl"))


def compiled(name: str, fn: Callable) -> Callable:
    """The compiled version of ``fn`` (one per process, dynamic batch size)."""
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(fn, dynamic=True)
    return _COMPILED[name]


def run_fused(name: str, fn: Callable, fused: bool, *args, **kwargs):
    """``fn(*args)``, compiled when ``fused``; a compiler failure disables fusion for the
    process (with a note on stderr) and reruns eagerly."""
    global _BROKEN
    if not fused:
        return fn(*args, **kwargs)
    try:
        return compiled(name, fn)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a compiler failure must not stop the work
        _BROKEN = True
        log.warning(f"torch.compile failed, running eagerly ({type(exc).__name__}: {exc})")
        return fn(*args, **kwargs)


def mark_broken(exc: Exception) -> None:
    global _BROKEN
    _BROKEN = True
    log.warning(f"torch.compile failed, running eagerly ({type(exc).__name__}: {exc})")
