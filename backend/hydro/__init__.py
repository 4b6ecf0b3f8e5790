"""Monthly water balance models, goodness of fit and per-cell calibration (CWSC labels).

Public API:

- :func:`simulate` (models.py): DWBM, SWBM, TVGM over (..., months) forcing.
- :func:`kge`, :func:`nse` (metrics.py): vectorised over cells, missing months skipped.
- :func:`sceua` (sceua.py): SCE-UA for many problems in lockstep.
- :func:`calibrate`, :func:`calibrate_model`, :class:`CalibrationConfig` (calibrate.py).
"""

from backend.hydro.calibrate import (DEFAULT_KGE_MARGIN, DEFAULT_RESTARTS, CalibrationConfig,
                                     CalibrationResult, ModelLabels, calibrate, calibrate_model,
                                     joint_labels)
from backend.hydro.metrics import kge, nse, undefined_count
from backend.hydro.models import MODELS, PARAMETERS, Simulation, parameter_names, simulate
from backend.hydro.sceua import SceuaResult, SceuaSettings, sceua

__all__ = [
    "DEFAULT_KGE_MARGIN", "DEFAULT_RESTARTS", "CalibrationConfig", "CalibrationResult", "ModelLabels", "calibrate",
    "calibrate_model", "joint_labels", "kge", "nse", "undefined_count", "MODELS",
    "PARAMETERS", "Simulation", "parameter_names", "simulate", "SceuaResult", "SceuaSettings",
    "sceua",
]
