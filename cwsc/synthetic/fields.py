"""Smooth random fields: the building block of every synthetic map."""

from __future__ import annotations

import numpy as np


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Gaussian random field with correlation length ``scale`` cells, zero mean, unit variance."""
    h, w = shape
    noise = rng.standard_normal((h, w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    kernel = np.exp(-2 * (np.pi * scale) ** 2 * (fx**2 + fy**2))
    f = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=(h, w))
    return ((f - f.mean()) / (f.std() or 1.0)).astype(np.float32)
