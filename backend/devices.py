"""Choosing the torch device the user asked for."""

from __future__ import annotations

from backend.protocol import BadInput


def resolve_device(name: str = "auto"):
    """``auto`` picks CUDA when present; ``cuda`` without CUDA is a ``BadInput``, never a fallback."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BadInput("DEVICE: 'cuda' was asked for but this backend has no CUDA device "
                           f"(torch {torch.__version__}); use 'auto' or 'cpu', or install a CUDA build "
                           "of torch (see README, GPU set-up)")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise BadInput(f"DEVICE: unknown device '{name}' (use auto, cpu or cuda)")


def configure_cpu_threads() -> None:
    """Use every core on CPU (torch may default to fewer in a subprocess)."""
    import os

    import torch

    n = os.cpu_count() or 1
    if torch.get_num_threads() < n:
        torch.set_num_threads(n)
