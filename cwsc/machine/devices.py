"""Devices and threads: the torch device the user asked for, and the process's thread policy.

Every thread decision of the backend lives here: all cores for a command on the CPU, one
thread in a calibration worker (its siblings use the other cores), OpenMP's wait policy,
and mixed precision on CUDA. Nothing happens on import; the command line calls
:func:`prepare_process` before torch is first imported.
"""

from __future__ import annotations

import contextlib
import os

from cwsc.errors import ParameterError


def prepare_process() -> None:
    """Settings that only take effect before torch is imported.

    libgomp's default busy-waiting makes every torch thread spin between small kernels; on a
    shared or oversubscribed CPU two spinning threads ran small networks 7x slower than one
    (measured on the 2-core development machine). Passive waiting keeps all-cores speed when
    the CPU is free and loses little when it is not. A value the user set is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def resolve_device(name: str = "auto"):
    """``auto`` picks CUDA when present; ``cuda`` without CUDA is a ``BadInput``, never a fallback."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ParameterError(
                "DEVICE: 'cuda' was asked for but this backend has no CUDA device "
                f"(torch {torch.__version__}); use 'auto' or 'cpu', or install a CUDA build "
                "of torch (see README, GPU set-up)"
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ParameterError(f"DEVICE: unknown device '{name}' (use auto, cpu or cuda)")


def configure_cpu_threads() -> None:
    """Use every core on CPU (torch may default to fewer in a subprocess)."""
    import torch

    n = os.cpu_count() or 1
    if torch.get_num_threads() < n:
        torch.set_num_threads(n)


def single_thread() -> None:
    """One torch (and OpenMP) thread: a worker process among as many as there are cores."""
    import torch

    torch.set_num_threads(1)


def configure_threads(device, threads: int | None = None) -> None:
    """Threads for ``device``: ``threads`` (or every core) on CPU; cuDNN autotuning and TF32
    matrix products on CUDA."""
    import torch

    if device.type == "cpu":
        if threads:
            torch.set_num_threads(threads)
        else:
            configure_cpu_threads()
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast(device):
    """bf16 autocast on CUDA (twice the tensor-core rate, no loss scaling); nothing on CPU,
    where the CPUs we run on lack fast bf16."""
    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
