"""What a calibration does: :class:`CalibrationConfig` (its defaults from
:mod:`backend.hydro.options`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from backend.hydro.identifiability import ProfileSettings
from backend.hydro.options import (DEFAULT_KGE_MARGIN, DEFAULT_RESTARTS,
                                   IDENTIFIABILITY_TOLERANCE, MODELS)
from backend.hydro.sceua import SceuaSettings

@dataclass
class CalibrationConfig:
    """What to calibrate and how. Periods: warm-up months [0, w) are simulated but not
    scored, calibration months [w, c), validation months [c, n)."""

    models: Sequence[str] = MODELS
    objective: str = "kge"                 # "kge" (1 - KGE) or "nse" (1 - NSE)
    kge_version: str = "2009"              # "2009" (Gupta) or "2012" (Kling)
    formulation: str = "conserving"        # or "seed" (the original Fortran equations)
    warmup_months: int | None = None       # default min(n // 8, 24)
    calibration_fraction: float = 0.75     # calibration ends at round(fraction * n)
    restarts: int = DEFAULT_RESTARTS
    sceua: SceuaSettings = field(default_factory=SceuaSettings)
    kge_threshold: float = 0.0             # models above it enter the joint CWSC label
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
        w = min(months // 8, 24) if self.warmup_months is None else int(self.warmup_months)
        c = int(round(self.calibration_fraction * months))
        if not 0 <= w < c <= months:
            raise ValueError(f"periods do not fit {months} months: warm-up {w}, calibration "
                             f"ends at {c}")
        return w, c
