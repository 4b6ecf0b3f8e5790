"""What a calibration does: :class:`CalibrationConfig` (its defaults from
:mod:`cwsc.hydro.options`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from cwsc.errors import PeriodError
from cwsc.hydro.identifiability import ProfileSettings
from cwsc.hydro.options import DEFAULT_KGE_MARGIN, DEFAULT_RESTARTS, IDENTIFIABILITY_TOLERANCE, MODELS
from cwsc.hydro.sceua import SceuaSettings


def split_months(
    months: int, warmup_months: int | None, calibration_fraction: float, minimum: int = 1
) -> tuple[int, int]:
    """(w, c): of ``months`` months, the first ``w`` warm the stores up, ``[w, c)`` are scored
    in calibration and ``[c, months)`` in validation. ``w`` defaults to min(months / 8, 24)
    (the seed's); a split leaving fewer than ``minimum`` calibration months is a
    :class:`~cwsc.errors.PeriodError`."""
    w = min(months // 8, 24) if warmup_months is None else int(warmup_months)
    c = int(round(calibration_fraction * months))
    if not 0 <= w < c <= months or c - w < minimum:
        raise PeriodError(
            f"periods: {months} months with warm-up {w} and calibration ending at month {c} "
            f"leave fewer than {minimum} calibration month{'s' if minimum != 1 else ''}"
        )
    return w, c


@dataclass
class CalibrationConfig:
    """What to calibrate and how. Periods: warm-up months [0, w) are simulated but not
    scored, calibration months [w, c), validation months [c, n)."""

    models: Sequence[str] = MODELS
    objective: str = "kge"  # "kge" (1 - KGE) or "nse" (1 - NSE)
    kge_version: str = "2009"  # "2009" (Gupta) or "2012" (Kling)
    formulation: str = "conserving"  # or "seed" (the original Fortran equations)
    warmup_months: int | None = None  # default min(n // 8, 24)
    calibration_fraction: float = 0.75  # calibration ends at round(fraction * n)
    restarts: int = DEFAULT_RESTARTS
    sceua: SceuaSettings = field(default_factory=SceuaSettings)
    kge_threshold: float = 0.0  # models above it enter the joint CWSC label
    kge_margin: float | None = DEFAULT_KGE_MARGIN  # ... and within it of the best model's
    # KGE (None: no such limit)
    identifiability_tolerance: float = IDENTIFIABILITY_TOLERANCE  # objective distance from
    # the best inside the identifiable range of sc
    profile: ProfileSettings | None = field(default_factory=ProfileSettings)  # None: no range
    seed: int = 0
    dtype: torch.dtype = torch.float32
    device: torch.device | str = "cpu"

    def periods(self, months: int) -> tuple[int, int]:
        """(w, c): calibration months are [w, c), validation [c, months)."""
        return split_months(months, self.warmup_months, self.calibration_fraction)
