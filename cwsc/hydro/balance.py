"""The long-term water balance of the forcing: whether P, PET and Q can balance at all.

Over many years the storage of a catchment changes little, so its evaporation is close to
P - Q, and evaporation cannot exceed what the atmosphere demands (PET) nor can runoff exceed
precipitation. Where the inputs break either bound by more than a tolerance, a model can
still fit the runoff, but only by compensating (evaporating above PET, or making water), and
its sc is then a property of the forcing's error, not of the catchment (issue 35). The
commands warn about such cells and catchments, and calibrate sets quality bit 128.

Units: mm/month. Arrays are (..., months): the last axis is time; months where any of the
three is missing are left out of every mean.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: Relative tolerance of both bounds: long-term Q may exceed P, and P - Q may exceed PET, by
#: this share before the forcing counts as not balancing. Why 10 %: gridded P and PET carry
#: errors of that order (gauge undercatch, PET method), and the real catchments of the tests
#: all pass it (the largest P - Q over PET among them is Leaf River's, docs/science.md).
TOLERANCE = 0.10


@dataclass
class WaterBalance:
    """Long-term means per cell or catchment, (...) each: ``precipitation``, ``pet`` and
    ``runoff`` in mm/month over the months where all three are given; ``runoff_excess``:
    Q / P; ``evaporation_excess``: (P - Q) / PET; ``bad``: either above 1 + tolerance."""

    precipitation: np.ndarray
    pet: np.ndarray
    runoff: np.ndarray
    runoff_excess: np.ndarray
    evaporation_excess: np.ndarray
    bad: np.ndarray


def water_balance(
    precipitation: np.ndarray, pet: np.ndarray, runoff: np.ndarray, tolerance: float = TOLERANCE
) -> WaterBalance:
    """The long-term balance of (..., months) P, PET and Q (mm/month); NaN means, and
    ``bad`` False, where no month has all three."""
    p, e, q = (np.asarray(a, dtype=np.float64) for a in (precipitation, pet, runoff))
    ok = np.isfinite(p) & np.isfinite(e) & np.isfinite(q)
    n = ok.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = lambda a: np.where(n > 0, np.where(ok, a, 0.0).sum(-1) / n, np.nan)  # noqa: E731
        pm, em, qm = mean(p), mean(e), mean(q)
        runoff_excess = qm / pm
        evaporation_excess = (pm - qm) / em
        bad = (runoff_excess > 1.0 + tolerance) | (evaporation_excess > 1.0 + tolerance)
    return WaterBalance(pm, em, qm, runoff_excess, evaporation_excess, bad & (n > 0))


def describe(balance: WaterBalance, where: np.ndarray | None = None) -> str:
    """The numbers behind a warning, in words: how many break which bound and by how much
    (``where``: the cells or catchments to describe, default those that are ``bad``)."""
    bad = balance.bad if where is None else where
    with np.errstate(invalid="ignore"):
        wet = bad & (balance.runoff_excess > 1.0 + TOLERANCE)
        dry = bad & (balance.evaporation_excess > 1.0 + TOLERANCE)
    parts = []
    if wet.any():
        parts.append(
            f"{int(wet.sum()):,} with long-term runoff above precipitation (Q/P up to "
            f"{float(np.nanmax(balance.runoff_excess[wet])):.2f})"
        )
    if dry.any():
        parts.append(
            f"{int(dry.sum()):,} whose P - Q exceeds PET (up to "
            f"{float(np.nanmax(balance.evaporation_excess[dry])):.2f} x PET)"
        )
    return "; ".join(parts)


def warn_if_unbalanced(
    precipitation: np.ndarray, pet: np.ndarray, runoff: np.ndarray, axis: int = -1, what: str = "cells"
) -> WaterBalance:
    """Log a warning (``logging``; the runtime turns it into an event) when any cell of the
    forcing cannot balance, with the count and the ratios; ``axis``: the time axis (0 for
    (months, rows, cols) stacks). Returns the balance, (...) without the time axis."""
    p, e, q = (np.moveaxis(np.asarray(a), axis, -1) for a in (precipitation, pet, runoff))
    balance = water_balance(p, e, q)
    if balance.bad.any():
        log.warning(
            "%s %s with forcing that cannot balance over the record: %s (tolerance %.0f %%); a model "
            "fits there only by compensating for the forcing, so its sc is not the catchment's: check "
            "the precipitation, PET and runoff there",
            f"{int(balance.bad.sum()):,}",
            what,
            describe(balance),
            100 * TOLERANCE,
        )
    return balance
