"""A CWSC map checked at one gauged catchment, as the seed paper checks its map: the
catchment's own calibration against simulations with sc taken from the map.

Arrays in and out: the caller (``cwsc.commands.evaluate_catchments``) reads the polygons,
the table and the rasters. Series are (months,) in mm/month; sc in mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.labels import label_rule


@dataclass
class Fit:
    """One calibration of the catchment: the model with the best calibration KGE among those
    tried, its KGE over the calibration and validation months, its parameters and runoff."""

    model: str
    kge_cal: float
    kge_val: float
    params: dict[str, float]
    runoff: np.ndarray  # (months,) simulated, mm/month


@dataclass
class CatchmentScore:
    """The catchment's own calibration (``free``: label by the label rule, its identifiable
    range and quality flags, the models entering it) and the fits with sc fixed to each map
    (``fixed``: map name -> fit; ``"map"`` is the map under test, ``"constant"`` the median)."""

    label_mm: float
    sc_low_mm: float
    sc_high_mm: float
    flags: int
    models: list[str]
    free: Fit
    fixed: dict[str, Fit] = field(default_factory=dict)


def _best(result, models, p, e, formulation: str) -> Fit:
    from cwsc.hydro.models import simulate

    kges = {m: float(result.models[m].kge_cal[0]) for m in models}
    best = max(models, key=lambda m: kges[m] if np.isfinite(kges[m]) else -np.inf)
    lab = result.models[best]
    params = {k: float(v[0]) for k, v in lab.params.items()}
    sim = simulate(
        best, p[None], e[None], {k: np.array([v]) for k, v in params.items()}, formulation=formulation
    )
    return Fit(best, kges[best], float(lab.kge_val[0]), params, np.asarray(sim.runoff, dtype=np.float64)[0])


def score_catchment(
    precip: np.ndarray,
    pet: np.ndarray,
    runoff: np.ndarray,
    maps_mm: dict[str, float],
    config: CalibrationConfig,
) -> CatchmentScore:
    """Calibrate the catchment freely (every model of ``config``), then, in the models of its
    label, with sc fixed to each value of ``maps_mm`` (name -> sc in mm; NaN: not scored),
    the other parameters calibrated. ``precip`` is what the models receive (the snow store's
    rain and melt when temperature was given)."""
    from dataclasses import replace

    from cwsc.hydro.calibration.driver import calibrate

    p, e, q = (np.asarray(a, dtype=np.float64) for a in (precip, pet, runoff))
    result = calibrate(p[None], e[None], q[None], config, workers=1)
    names = list(result.models)
    kges = np.stack([result.models[m].kge_cal for m in names])
    scs = np.stack([result.models[m].params["sc"] for m in names])
    _, ok = label_rule(kges, scs, config.kge_threshold, config.kge_margin)
    models = [m for i, m in enumerate(names) if ok[i, 0]] or names
    free = _best(result, models, p, e, config.formulation)
    low = min(float(result.models[m].sc_low[0]) for m in models)
    high = max(float(result.models[m].sc_high[0]) for m in models)
    score = CatchmentScore(
        float(result.cwsc[0]),
        low,
        high,
        int(result.flags[0]) if np.isfinite(result.flags[0]) else 0,
        models,
        free,
    )
    fixed_config = replace(config, models=tuple(models), profile=None)
    for name, sc in maps_mm.items():
        if not np.isfinite(sc):
            continue
        fit = calibrate(p[None], e[None], q[None], fixed_config, fixed={"sc": np.array([sc])}, workers=1)
        score.fixed[name] = _best(fit, models, p, e, config.formulation)
    return score
