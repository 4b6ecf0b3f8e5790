"""The CPU kernels of ``cpu_kernels.c``: the calibration objective's month loops in C.

Built once per machine with the system C compiler (``cc``/``gcc``/``clang``, or ``$CC``) into
a cache folder (:func:`cwsc.machine.environment.cache_dir`), keyed by the source, the flags and
the compiler, and loaded with ctypes (no Python headers needed). ``-march=native``: the
library is built where it runs. When no compiler is found or the build fails,
:func:`available` is False and calibration runs the torch path
(:mod:`cwsc.hydro.engines.selection` decides; ``CWSC_NATIVE=0`` turns the kernels off).

Why: DWBM's month needs twelve logs and exps per column; the compiler inlines and vectorises
the short polynomials of ``cpu_kernels.c`` where torch (eager or compiled) calls the math
library op by op, and the loop keeps the stores in registers for the whole run. Measured
in ``benchmarks/bench_calibrate.py``.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from cwsc.hydro.models import EMPTY, MODELS, SC_FLOOR, SEED_EPS
from cwsc.machine import environment

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("cpu_kernels.c")
#: Flag sets tried in order; the first that builds is used.
FLAG_SETS = (
    ["-O3", "-march=native", "-mtune=generic", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"],
    ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"],
    ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"],
)

_LIB: ctypes.CDLL | None = None
_TRIED = False
_WHY = ""


def available() -> bool:
    """Whether the kernels are built and loaded (builds them on the first call)."""
    _load()
    return _LIB is not None


def why_not() -> str:
    """Why the kernels are not available ("" when they are)."""
    _load()
    return _WHY


def compiler() -> str | None:
    for name in environment.c_compilers():
        if shutil.which(name):
            return shutil.which(name)
    return None


def _build(cc: str, flags: list[str], target: Path) -> str:
    """Compile into ``target`` atomically (workers may build at the same time); returns the
    compiler's complaint, or "" on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        run = subprocess.run(
            [cc, *flags, "-shared", "-fPIC", str(SOURCE), "-o", tmp],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if run.returncode != 0:
            lines = (run.stderr or run.stdout or "").strip().splitlines()
            return lines[-1] if lines else f"{cc} exited with {run.returncode}"
        os.replace(tmp, target)
        return ""
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load() -> None:
    global _LIB, _TRIED, _WHY
    if _TRIED:
        return
    _TRIED = True
    _WHY = ""
    cc = compiler()
    if cc is None:
        _WHY = "no C compiler (cc, gcc or clang) found"
        return
    try:
        version = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()[:1]
    except (OSError, subprocess.SubprocessError) as exc:
        _WHY = f"{cc} does not run ({exc})"
        return
    source = SOURCE.read_bytes()
    errors = []
    for flags in FLAG_SETS:
        key = hashlib.sha256(
            source
            + repr(
                (flags, version, platform.machine(), platform.node() if "-march=native" in flags else "")
            ).encode()
        ).hexdigest()[:16]
        lib = None
        # A cache folder that cannot be written (a locked-down home) falls back to the
        # system's temporary folder.
        for folder in (
            environment.cache_dir(),
            Path(tempfile.gettempdir()) / f"cwsc-{environment.user_name()}",
        ):
            target = folder / f"cwsc_kernels-{key}.so"
            try:
                if not target.exists():
                    err = _build(cc, flags, target)
                    if err:
                        errors.append(err)
                        break  # the compiler refused these flags: try the next set
                lib = ctypes.CDLL(str(target))
                break
            except OSError as exc:
                errors.append(f"{folder}: {exc}")
        if lib is None:
            continue
        fn = lib.cwsc_score
        fn.restype = ctypes.c_int
        fn.argtypes = [
            ctypes.c_int32,
            ctypes.c_int32,
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_float,
            ctypes.c_float,
            ctypes.c_float,
            ctypes.c_void_p,
            ctypes.c_int32,
        ]
        _LIB = lib
        return
    _WHY = "the CPU kernels did not build: " + (errors[-1] if errors else "unknown error")
    log.warning(f"{_WHY}; calibrating with torch")


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


def score_sums(
    model: str,
    conserving: int,
    cell: torch.Tensor,
    forcing: torch.Tensor,
    params: torch.Tensor,
    months: int,
    first: int,
    weight: torch.Tensor,
    centred: torch.Tensor,
    threads: int | None = None,
) -> torch.Tensor:
    """Run ``model`` for N columns from month 0 to ``months`` and sum its scored months.

    conserving: 0 the seed formulation, 1 (or True) conserving, 2 bounded. cell (N,) int64:
    the forcing column of each run. forcing (F, T, C) float32: the model's
    stacked forcing (:meth:`cwsc.hydro.models.Forcing.block_arrays`). params (k, N)
    float32: the parameters in :data:`cwsc.hydro.models.PARAMETERS` order. weight,
    centred (months - first, C) float32: see :class:`cwsc.hydro.metrics.CalibrationTarget`.
    Returns (3, N) float64: sum w q, sum w q^2 and sum w q (obs - mean obs) over the months
    [first, months), q the simulated runoff (mm/month).
    """
    if not available():
        raise RuntimeError(_WHY)
    cell = cell.to(torch.int64).contiguous()
    forcing = forcing.to(torch.float32).contiguous()
    params = params.to(torch.float32).contiguous()
    weight = weight.to(torch.float32).contiguous()
    centred = centred.to(torch.float32).contiguous()
    n = cell.numel()
    n_f, total, cols = forcing.shape
    if weight.shape != (months - first, cols) or centred.shape != weight.shape:
        raise ValueError(f"weight/centred must be ({months - first}, {cols}), got {tuple(weight.shape)}")
    if params.shape[1] != n:
        raise ValueError(f"params must have {n} columns, got {params.shape[1]}")
    out = torch.empty((3, n), dtype=torch.float64)
    if n == 0:
        return out
    rc = _LIB.cwsc_score(
        MODELS.index(model.upper()),
        int(conserving),
        n,
        _ptr(cell),
        _ptr(forcing),
        total,
        cols,
        _ptr(params),
        int(months),
        int(first),
        _ptr(weight),
        _ptr(centred),
        SC_FLOOR,
        EMPTY,
        SEED_EPS,
        _ptr(out),
        int(threads or torch.get_num_threads()),
    )
    if rc != 0:
        raise ValueError(
            f"cwsc_score refused its arguments (months {months}, first {first}, forcing months {total})"
        )
    return out
