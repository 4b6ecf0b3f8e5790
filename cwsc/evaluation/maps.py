"""How good is a CWSC map? The checks of the evaluate command, arrays in and out.

Two checks, both optional, as in the CWSC papers:

1. **Agreement with a reference map** (e.g. a root-zone storage capacity product, or the
   true CWSC of a twin experiment): R2, Pearson r, RMSE, MAE, bias over the cells where
   both are valid, with maps and a scatter plot.
2. **Simulation efficiency on the validation months** (:func:`simulation_check`): on a
   seeded sample of cells, the models are calibrated with sc fixed to the map, fixed to a
   constant map (the null model) and free, and each cell is scored on the months the
   calibration did not see, in the model(s) that make its label; a map that carries no
   information scores no better than the constant map.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from cwsc.errors import InputFileError
from cwsc.hydro.metrics import finite_median as median
from cwsc.progress import progress

log = logging.getLogger(__name__)


def agreement(cwsc: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Agreement of ``cwsc`` with ``reference`` (both mm, same shape, NaN = nodata).

    R2 is the coefficient of determination of the map as a prediction of the reference.
    """
    from cwsc.ml.metrics import regression_metrics

    ok = np.isfinite(cwsc) & np.isfinite(reference)
    n = int(ok.sum())
    if n < 3:
        return {
            "cells": n,
            "r2": math.nan,
            "pearson_r": math.nan,
            "rmse": math.nan,
            "mae": math.nan,
            "bias": math.nan,
            "kge": math.nan,
        }
    obs, pred = reference[ok].astype(np.float64), cwsc[ok].astype(np.float64)
    m = regression_metrics(obs, pred)
    r = float(np.corrcoef(obs, pred)[0, 1]) if obs.std() > 0 and pred.std() > 0 else math.nan
    return {
        "cells": n,
        "r2": m["r2"],
        "pearson_r": r,
        "rmse": m["rmse"],
        "mae": m["mae"],
        "bias": m["bias"],
        "kge": m["kge"],
    }


#: Aridity classes (PET / P) of the evaluation's breakdown: (label, low, high).
ARIDITY_CLASSES = (
    ("humid (PET/P < 0.75)", 0.0, 0.75),
    ("sub-humid (0.75-1.5)", 0.75, 1.5),
    ("semi-arid (1.5-3)", 1.5, 3.0),
    ("arid (PET/P > 3)", 3.0, math.inf),
)
#: The variants scored: the map, a constant map at its median (the null model), free sc.
VARIANTS = ("fixed", "constant", "free")


def simulation_check(
    cwsc: np.ndarray,
    precip: np.ndarray,
    pet: np.ndarray,
    runoff: np.ndarray,
    models,
    restarts: int | None,
    seed: int,
    device,
    max_cells: int,
    max_evaluations: int | None = None,
    label_kge: dict | None = None,
    candidates: np.ndarray | None = None,
    formulation: str = "conserving",
):
    """The map as a model parameter, scored on the validation months.

    cwsc: (rows, cols) mm; precip, pet, runoff: (months, rows, cols) mm/month. On a seeded
    sample of at most ``max_cells`` cells (drawn from ``candidates``, flat indices, when
    given), every model is calibrated on the calibration months three ways: sc free, sc
    fixed to the map, sc fixed to the map's median everywhere (the constant map). Each cell
    is then scored in the model(s) that make its label by the label rule (the models within
    the default margin of the best calibration KGE: from ``label_kge``, model -> (rows, cols)
    calibration KGE as calibrate's details give it, else from the free calibration): the
    mean of their validation KGEs. A run that fails (no defined KGE) scores as the worst
    score of the whole check, and is counted.

    Returns a dict: ``cells`` (flat indices (n,)), ``scores`` (variant -> (n,) KGE),
    ``failed`` (variant -> count), ``constant_mm``, ``label_models`` ((models, n) bool),
    ``aridity`` ((n,) PET/P), ``per_model`` (variant -> model -> (n,) validation KGE).
    """
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.calibration.driver import calibrate
    from cwsc.hydro.options import DEFAULT_KGE_MARGIN
    from cwsc.hydro.sceua import SceuaSettings

    months = precip.shape[0]
    flat = lambda a: a.reshape(months, -1).T  # noqa: E731 - (cells, months)
    p, e, q = flat(precip), flat(pet), flat(runoff)
    c = cwsc.ravel()
    kwargs = {
        "models": tuple(models),
        "seed": seed,
        "device": device,
        "profile": None,
        "formulation": formulation,
    }
    if restarts:
        kwargs["restarts"] = restarts
    if max_evaluations:
        kwargs["sceua"] = SceuaSettings(max_evaluations=int(max_evaluations))
    config = CalibrationConfig(**kwargs)
    from cwsc.hydro.metrics import MIN_MONTHS

    w, cal_end = config.periods(months)
    if months - cal_end < MIN_MONTHS:
        raise InputFileError(
            f"RUNOFF: the record has {months} months, so the validation period (the last "
            f"{months - cal_end}, a quarter) is shorter than the {MIN_MONTHS} months a KGE "
            f"needs; the evaluation needs at least {4 * MIN_MONTHS} months"
        )
    ok = (
        np.isfinite(c)
        & np.isfinite(p).all(1)
        & np.isfinite(e).all(1)
        & (np.isfinite(q[:, w:cal_end]).sum(1) >= MIN_MONTHS)
        & (np.isfinite(q[:, cal_end:]).sum(1) >= MIN_MONTHS)
    )
    if candidates is not None:
        keep = np.zeros(ok.size, bool)
        keep[candidates] = True
        ok &= keep
    cells = np.flatnonzero(ok)
    if len(cells) == 0:
        raise InputFileError(
            "CWSC: no cell has a CWSC value, complete forcing and runoff in "
            "both the calibration and the validation months"
        )
    rng = np.random.default_rng(seed)
    if len(cells) > max_cells:
        cells = np.sort(rng.choice(cells, max_cells, replace=False))
    constant = float(np.nanmedian(c[np.isfinite(c)]))
    steps = {"free": None, "fixed": c[cells], "constant": np.full(len(cells), constant)}
    runs = {}
    for k, (variant, sc) in enumerate(steps.items()):

        def cb(frac: float, _k=k, _v=variant) -> None:
            progress(
                log,
                0.2 + 0.25 * (_k + frac),
                {
                    "free": "calibrating freely",
                    "fixed": "calibrating with CWSC fixed to the map",
                    "constant": "calibrating with a constant CWSC",
                }[_v],
            )

        runs[variant] = calibrate(
            p[cells], e[cells], q[cells], config, fixed=None if sc is None else {"sc": sc}, progress=cb
        )
    names = [m.upper() for m in models]
    if label_kge is not None:
        kcal = np.stack([label_kge[m].ravel()[cells] for m in names])
    else:
        kcal = np.stack([runs["free"].models[m].kge_cal for m in names])
    with np.errstate(invalid="ignore"):
        best = np.nanmax(np.where(np.isfinite(kcal), kcal, -np.inf), 0)
        chosen = np.isfinite(kcal) & (kcal >= best - DEFAULT_KGE_MARGIN)
    chosen[:, ~chosen.any(0)] = True  # no model calibrated there: every model counts
    per_model = {v: {m: runs[v].models[m].kge_val for m in names} for v in VARIANTS}
    raw = {v: np.stack([per_model[v][m] for m in names]) for v in VARIANTS}
    finite = np.concatenate([r[chosen & np.isfinite(r)] for r in raw.values()])
    if not finite.size:
        raise InputFileError(
            f"RUNOFF: no model run on the {len(cells):,} cells could be scored on the validation "
            "months (their KGE is undefined: runoff that never varies?); there is nothing to "
            "evaluate the map on"
        )
    worst = float(finite.min())
    scores, failed = {}, {}
    for v in VARIANTS:
        r = np.where(chosen, raw[v], np.nan)
        bad = chosen & ~np.isfinite(r)
        failed[v] = int(bad.any(0).sum())
        r = np.where(bad, worst, r)
        with np.errstate(invalid="ignore"):
            scores[v] = np.nansum(np.where(chosen, r, 0.0), 0) / chosen.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        aridity = e[cells].sum(1) / p[cells].sum(1)
    return {
        "cells": cells,
        "scores": scores,
        "failed": failed,
        "constant_mm": constant,
        "label_models": chosen,
        "aridity": aridity,
        "per_model": per_model,
        "worst": worst,
    }


def breakdown(scores: dict[str, np.ndarray], groups: dict[str, np.ndarray]) -> list[dict]:
    """Median validation KGE of each variant per group of cells (name -> (n,) bool)."""
    rows = []
    for name, sel in groups.items():
        row = {"cells": name, "n": int(sel.sum())}
        for variant, values in scores.items():
            row[f"median KGE {variant}"] = median(values[sel]) if sel.any() else math.nan
        rows.append(row)
    return rows


def aridity_groups(aridity: np.ndarray) -> dict[str, np.ndarray]:
    return {label: (aridity >= lo) & (aridity < hi) for label, lo, hi in ARIDITY_CLASSES}


def flag_groups(flags: np.ndarray) -> dict[str, np.ndarray]:
    """Cells without flags and, per bit, the cells that carry it."""
    from cwsc.hydro.options import FLAG_BITS

    bits = np.where(np.isfinite(flags), flags, 0).astype(int)
    out = {"no flag": bits == 0}
    for bit, text in FLAG_BITS.items():
        out[f"flag {bit}: {text}"] = (bits & bit) > 0
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation over the cells where both are valid."""
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    ra = np.argsort(np.argsort(a[ok])).astype(float)
    rb = np.argsort(np.argsort(b[ok])).astype(float)
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def range_check(
    map_mm: np.ndarray,
    labels_mm: np.ndarray,
    low_mm: np.ndarray,
    high_mm: np.ndarray,
    constant_mm: float | None = None,
) -> dict:
    """Whether a map's sc lies inside each place's identifiable range of sc, and how its ranks
    follow the places' own labels: the checks that separate a right map from a plausible
    constant one, where the validation KGE with sc fixed cannot (the other parameters
    re-calibrated absorb most of a wrong sc: issue 35).

    Arrays (N,) in mm, one value per cell or catchment: the map's sc, the calibrated label
    and its identifiable range [low, high]; ``constant_mm``: the constant map (default: the
    median of the map where a range is known). Returns ``in_range_map`` and
    ``in_range_constant`` ((N,) float: 1 inside, 0 outside, NaN where the map or the range is
    missing), their shares over the places with a range (``share_in_range_map``,
    ``share_in_range_constant``), ``spearman_map_labels`` (the rank correlation of the map
    with the labels), ``constant_mm`` and ``places`` (how many have a range and a map value).
    """
    m, lab, lo, hi = (np.asarray(a, dtype=np.float64).ravel() for a in (map_mm, labels_mm, low_mm, high_mm))
    known = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(m)
    if constant_mm is None:
        constant_mm = median(m[known]) if known.any() else math.nan
    with np.errstate(invalid="ignore"):
        in_map = np.where(known, ((m >= lo) & (m <= hi)).astype(float), np.nan)
        in_constant = np.where(known, ((constant_mm >= lo) & (constant_mm <= hi)).astype(float), np.nan)
    places = int(known.sum())
    return {
        "in_range_map": in_map,
        "in_range_constant": in_constant,
        "share_in_range_map": float(np.nanmean(in_map)) if places else math.nan,
        "share_in_range_constant": float(np.nanmean(in_constant)) if places else math.nan,
        "spearman_map_labels": spearman(m, lab),
        "constant_mm": float(constant_mm),
        "places": places,
    }
