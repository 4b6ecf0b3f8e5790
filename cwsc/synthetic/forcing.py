"""Synthetic monthly forcing and twin-experiment runoff per cell, for tests and benchmarks.

Cells span humid to arid climates: seasonal precipitation and PET with random phase,
amplitude and month-to-month noise (dry months included). Runoff comes from a model run
with random parameters inside the bounds, plus multiplicative noise.
"""

from __future__ import annotations

import numpy as np

from cwsc.hydro.models import PARAMETERS, simulate


def synthetic_forcing(cells: int, months: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(precip, pet), each (cells, months) float32 in mm/month."""
    rng = np.random.default_rng(seed)
    t = np.arange(months)[None, :]
    aridity = rng.uniform(0.3, 3.0, (cells, 1))  # PET / P, yearly
    p_mean = rng.uniform(20.0, 180.0, (cells, 1))
    phase = rng.uniform(0, 2 * np.pi, (cells, 1))
    season = 1.0 + rng.uniform(0.2, 0.9, (cells, 1)) * np.sin(2 * np.pi * t / 12 + phase)
    precip = p_mean * season * rng.gamma(2.0, 0.5, (cells, months))
    precip[rng.random((cells, months)) < 0.05] = 0.0  # dry months
    pet_season = 1.0 + 0.6 * np.sin(2 * np.pi * t / 12 + phase + rng.uniform(-1, 1, (cells, 1)))
    pet = aridity * p_mean * pet_season * rng.uniform(0.9, 1.1, (cells, months))
    return precip.astype(np.float32), pet.astype(np.float32)


def random_params(model: str, cells: int, seed: int = 0, margin: float = 0.05) -> dict[str, np.ndarray]:
    """Parameters drawn uniformly inside the bounds (shrunk by ``margin`` of the range)."""
    rng = np.random.default_rng(seed + 1)
    out = {}
    for name, (lo, hi, _) in PARAMETERS[model].items():
        span = hi - lo
        out[name] = rng.uniform(lo + margin * span, hi - margin * span, cells).astype(np.float32)
    return out


def synthetic_runoff(
    model: str, precip: np.ndarray, pet: np.ndarray, params: dict, noise: float = 0.1, seed: int = 0
) -> np.ndarray:
    """Runoff (cells, months) of ``model`` with multiplicative log-normal noise."""
    rng = np.random.default_rng(seed + 2)
    q = simulate(model, precip, pet, params).runoff
    return (q * rng.lognormal(0.0, noise, q.shape)).astype(np.float32)


def snowy_forcing(cells: int, months: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precip, pet, temperature) of cold-winter cells, each (cells, months) float32, in
    mm/month and degrees C, the first month a January. Mean annual temperature -4 to 6 C,
    seasonal swing 12 to 18 C either way; PET by a Thornthwaite-like rule (nothing below
    0 C) and precipitation even through the year, so much of it falls as snow."""
    rng = np.random.default_rng(seed)
    month = np.arange(months)[None, :] % 12
    mean = rng.uniform(-4.0, 6.0, (cells, 1))
    swing = rng.uniform(12.0, 18.0, (cells, 1))
    temperature = mean - swing * np.cos(2 * np.pi * (month + 0.5) / 12) + rng.normal(0, 1.5, (cells, months))
    pet = 5.5 * np.maximum(temperature, 0.0) * rng.uniform(0.9, 1.1, (cells, months))
    precip = rng.uniform(50.0, 110.0, (cells, 1)) * rng.gamma(3.0, 1 / 3.0, (cells, months))
    return precip.astype(np.float32), pet.astype(np.float32), temperature.astype(np.float32)
