"""The calibration objective on CUDA (float32): loads and launches the Triton kernel of
``cuda_kernels_triton.py``.

The kernel is the CUDA counterpart of ``cpu_kernels.c`` (same equations, same sums): one launch runs every
column from the first month to the end of the calibration period with the stores in
registers and sums the scored months, where the torch path launches a few dozen kernels a
month (eager) or compiles month blocks with inductor (slow to compile). Triton ships with
the CUDA builds of torch; it compiles this kernel in about a second on first use.

``log1p`` and ``expm1`` are the short polynomials of ``cpu_kernels.c`` (arguments in
[0, 1] and [0, log 2]), so the kernel needs only ``tl.log``/``tl.exp`` and also runs in
Triton's interpreter (``TRITON_INTERPRET=1``), which is how it is tested without a GPU.
"""

from __future__ import annotations

import importlib.util
import logging

import torch

from cwsc.hydro.models import EMPTY, MODELS, SC_FLOOR, SEED_EPS
from cwsc.machine import environment

log = logging.getLogger(__name__)

_BROKEN = False


def available(device: torch.device) -> bool:
    """Whether the kernel can run on ``device``: CUDA with Triton (or Triton's interpreter,
    ``TRITON_INTERPRET=1``, on any device, for tests)."""
    if _BROKEN or importlib.util.find_spec("triton") is None:
        return False
    if environment.triton_interpreter():
        return True
    return device.type == "cuda"


_KERNEL = None


def _kernel():
    """The jitted kernel, imported on first use (triton is optional and slow to import)."""
    global _KERNEL
    if _KERNEL is None:
        import triton

        from cwsc.hydro.engines.cuda_triton import score

        _KERNEL = (triton, score)
    return _KERNEL


def score_sums(
    model: str,
    conserving: bool,
    cell: torch.Tensor,
    forcing: torch.Tensor,
    params: torch.Tensor,
    months: int,
    first: int,
    weight: torch.Tensor,
    centred: torch.Tensor,
) -> torch.Tensor:
    """As :func:`cwsc.hydro.engines.cpu.score_sums`, on the tensors' device (CUDA)."""
    triton, score = _kernel()
    dev = forcing.device
    cell = cell.to(device=dev, dtype=torch.int64).contiguous()
    forcing = forcing.to(torch.float32).contiguous()
    params = params.to(device=dev, dtype=torch.float32).contiguous()
    weight = weight.to(device=dev, dtype=torch.float32).contiguous()
    centred = centred.to(device=dev, dtype=torch.float32).contiguous()
    n = cell.numel()
    _, total, cols = forcing.shape
    out = torch.empty((3, n), dtype=torch.float64, device=dev)
    if n == 0:
        return out
    block = 128
    score[(triton.cdiv(n, block),)](
        cell,
        forcing,
        total,
        cols,
        params,
        n,
        int(months),
        int(first),
        weight,
        centred,
        SC_FLOOR,
        EMPTY,
        SEED_EPS,
        out,
        MODEL=MODELS.index(model.upper()),
        CONSERVING=bool(conserving),
        BLOCK=block,
    )
    return out


def mark_broken(exc: Exception) -> None:
    """A kernel that failed to compile or run is not tried again in this process."""
    global _BROKEN
    _BROKEN = True
    log.warning(f"the Triton calibration kernel failed, using torch ({type(exc).__name__}: {exc})")
