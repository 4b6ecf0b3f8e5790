"""What calibration gives per cell and model, and the joint CWSC label across models.

- :class:`ModelLabels`: one model's parameters, fit and identifiable range of sc per cell.
- :func:`joint_labels`: the joint CWSC label (the label rule), the width of its identifiable
  range, its quality flags and the joint KGE.
- :func:`cwsc_descriptions`, :func:`detail_bands`: how the label rasters name their bands.
- :func:`mask_by_kge`: labels kept where the calibration KGE passes a threshold.

numpy only at import (the mask command does not load torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

#: Units of the parameters in band descriptions ("-": dimensionless).
PARAMETER_UNITS = {"sc": "mm"}
#: Per-cell fit and range fields of :class:`ModelLabels`, as the details raster has them.
FIT_FIELDS = ("sc_low", "sc_high", "kge_cal", "kge_val", "nse_cal", "nse_val")
#: Quality flags (the bits of :data:`cwsc.hydro.options.FLAG_BITS`) and their limits.
FLAG_AT_BOUND, FLAG_DISAGREE, FLAG_FEW_MONTHS, FLAG_WIDE_RANGE, FLAG_LIMITS, FLAG_SNOW = 1, 2, 4, 8, 16, 32
FLAG_ABOVE_PET, FLAG_WATER_BALANCE = 64, 128
BOUND_SHARE = 0.01  # sc within this share of its range from a bound
DISAGREEMENT = 1.5  # largest / smallest sc among the models of the label
MIN_CALIBRATION_MONTHS = 24
LIMITED_SHARE = 0.10  # share of calibration months with the store emptied by a limit
#: A model "exceeds PET" in a cell when its evaporation is above PET in more than this share
#: of the calibration months (issue 35: TVGM and SWBM under ``conserving`` evaporate 1.5-1.9 x
#: PET in 98-99 % of months where the PET given is too low, and still win on KGE).
ABOVE_PET_SHARE = 0.10
#: Evaporation counts as above PET when it exceeds PET by more than this (mm/month): float32
#: rounding of a store evaporating exactly PET must not count.
ABOVE_PET_SLACK = 0.01


@dataclass
class ModelLabels:
    """One model's labels per cell (C,): parameters, fit, the identifiable range of sc
    [sc_low, sc_high] (mm), the share of calibration months whose store the conserving
    limits emptied, and the number of valid calibration months."""

    params: dict[str, np.ndarray]
    kge_cal: np.ndarray
    kge_val: np.ndarray
    nse_cal: np.ndarray
    nse_val: np.ndarray
    objective: np.ndarray
    sc_low: np.ndarray
    sc_high: np.ndarray
    limited_fraction: np.ndarray
    calibration_months: np.ndarray
    evaluations: np.ndarray
    restart_objective: np.ndarray | None = None  # (C, restarts): each restart's best
    #: (C,) share of calibration months whose evaporation exceeds PET (None: not measured)
    above_pet_fraction: np.ndarray | None = None

    @classmethod
    def empty(cls, model: str, cells: int) -> ModelLabels:
        """NaN labels (no evaluations) for ``cells`` cells."""
        from cwsc.hydro.models import PARAMETERS

        nan = np.full(cells, np.nan, dtype=np.float64)
        return cls(
            {k: nan.copy() for k in PARAMETERS[model]},
            *(nan.copy() for _ in range(9)),
            np.zeros(cells, np.int64),
            above_pet_fraction=nan.copy(),
        )

    @classmethod
    def concatenate(cls, parts: Sequence[ModelLabels]) -> ModelLabels:
        """The labels of consecutive groups of cells, end to end."""
        cat = lambda xs: np.concatenate(xs) if xs else np.empty(0)  # noqa: E731
        restart = [pt.restart_objective for pt in parts]
        above = [pt.above_pet_fraction for pt in parts]
        return cls(
            {k: cat([pt.params[k] for pt in parts]) for k in parts[0].params},
            *(cat([getattr(pt, a) for pt in parts]) for a in _LABEL_ARRAYS),
            restart_objective=None if any(r is None for r in restart) else cat(restart),
            above_pet_fraction=None if any(a is None for a in above) else cat(above),
        )


@dataclass
class CalibrationResult:
    """Labels of every model plus the joint ones, each (C,), NaN where not calibrated:
    ``cwsc`` (mm), ``cwsc_range`` (mm, the width of the label's identifiable range),
    ``flags`` (quality bits) and ``kge`` (the best model's calibration KGE)."""

    models: dict[str, ModelLabels]
    cwsc: np.ndarray
    cwsc_range: np.ndarray
    flags: np.ndarray
    kge: np.ndarray


def result_arrays(result: CalibrationResult) -> dict[str, np.ndarray]:
    """A result as named arrays (for a work folder's shard files)."""
    out = {"cwsc": result.cwsc, "cwsc_range": result.cwsc_range, "flags": result.flags, "kge": result.kge}
    for m, lab in result.models.items():
        for k, v in lab.params.items():
            out[f"{m}/param/{k}"] = v
        for k in _LABEL_ARRAYS:
            out[f"{m}/{k}"] = getattr(lab, k)
        if lab.restart_objective is not None:
            out[f"{m}/restart_objective"] = lab.restart_objective
        if lab.above_pet_fraction is not None:
            out[f"{m}/above_pet_fraction"] = lab.above_pet_fraction
    return out


def result_from_arrays(arrays: Mapping[str, np.ndarray], models: Sequence[str]) -> CalibrationResult:
    """The inverse of :func:`result_arrays`."""
    out = {}
    for m in models:
        params = {key.split("/")[2]: arrays[key] for key in arrays if key.startswith(f"{m}/param/")}
        out[m] = ModelLabels(
            params,
            *(arrays[f"{m}/{k}"] for k in _LABEL_ARRAYS),
            restart_objective=arrays.get(f"{m}/restart_objective"),
            above_pet_fraction=arrays.get(f"{m}/above_pet_fraction"),
        )
    return CalibrationResult(out, arrays["cwsc"], arrays["cwsc_range"], arrays["flags"], arrays["kge"])


_LABEL_ARRAYS = (
    "kge_cal",
    "kge_val",
    "nse_cal",
    "nse_val",
    "objective",
    "sc_low",
    "sc_high",
    "limited_fraction",
    "calibration_months",
    "evaluations",
)


def label_rule(
    kges: np.ndarray,
    scs: np.ndarray,
    threshold: float = 0.0,
    margin: float | None = None,
    respects_pet: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(cwsc ``(C,)``, models entering ``(models, C)``) from each model's KGE and sc
    ``(models, C)``: the rule of :func:`joint_labels`, shared with the physics-guided route
    (whose KGEs are the network's predicted fits). ``respects_pet`` ``(models, C)`` bool:
    where one of the models within the margin respects PET, only those that do enter."""
    with np.errstate(invalid="ignore"):
        calibrated = np.isfinite(kges) & np.isfinite(scs)
        best = np.max(np.where(calibrated, kges, -np.inf), axis=0)
        near = calibrated if margin is None else calibrated & (kges >= best - float(margin))
        if respects_pet is not None:
            # A model that fits by evaporating more than the atmosphere demands compensates
            # for the forcing; a model within the margin that does not is the better witness.
            near_ok = near & np.asarray(respects_pet, bool)
            near = np.where(near_ok.any(0), near_ok, near)
        above = near & (kges > threshold)
        ok = np.where(above.any(0), above, near)
    weights = np.where(ok, np.clip(np.nan_to_num(kges), 0.0, None), 0.0)
    total = weights.sum(0)
    weights = np.where(total > 0, weights, ok.astype(np.float64))  # all-zero: equal weights
    total = weights.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cwsc = np.where(total > 0, (weights * np.nan_to_num(scs)).sum(0) / total, np.nan)
    return cwsc, ok


def joint_labels(
    labels: Mapping[str, ModelLabels], threshold: float = 0.0, margin: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cwsc, cwsc_range, flags, kge) per cell from the models' labels (the label rule).

    cwsc: mean of the models' sc weighted by their calibration KGE, over the models whose
    calibration KGE lies within ``margin`` (None: any) of the cell's best model and exceeds
    ``threshold``; where no model exceeds the threshold, over the models within the margin
    (the mask, not the calibration, then removes the cell). Weights below zero count as zero;
    equal weights when all are zero. NaN where no model was calibrated.
    cwsc_range: the width of the union of the identifiable ranges of those models (their
    disagreement included). flags: the quality bits (:data:`FLAG_BITS`). kge: the best
    model's calibration KGE.

    Where the models carry ``above_pet_fraction``, a model whose evaporation exceeds PET in
    more than :data:`ABOVE_PET_SHARE` of the calibration months enters only where no model
    within the margin respects PET, and then the cell gets bit 64.
    """
    from cwsc.hydro.models import PARAMETERS

    names = list(labels)
    kges = np.stack([labels[m].kge_cal for m in names])  # (models, C)
    scs = np.stack([labels[m].params["sc"] for m in names])
    above_pet = respects_pet = None
    if all(labels[m].above_pet_fraction is not None for m in names):
        above_pet = np.stack([labels[m].above_pet_fraction for m in names])
        with np.errstate(invalid="ignore"):
            respects_pet = ~(above_pet > ABOVE_PET_SHARE)
    cwsc, ok = label_rule(kges, scs, threshold, margin, respects_pet)
    has = np.isfinite(cwsc)
    with np.errstate(invalid="ignore", divide="ignore"):
        lows = np.stack(
            [np.where(np.isfinite(labels[m].sc_low), labels[m].sc_low, labels[m].params["sc"]) for m in names]
        )
        highs = np.stack(
            [
                np.where(np.isfinite(labels[m].sc_high), labels[m].sc_high, labels[m].params["sc"])
                for m in names
            ]
        )
        low = np.where(ok, lows, np.inf).min(0)
        high = np.where(ok, highs, -np.inf).max(0)
        width = np.where(has, high - low, np.nan)

        flags = np.zeros(cwsc.shape, dtype=np.int64)
        for i, m in enumerate(names):
            lo, hi = PARAMETERS[m]["sc"][:2]
            share = BOUND_SHARE * (hi - lo)
            at_bound = (scs[i] <= lo + share) | (scs[i] >= hi - share)
            flags |= np.where(ok[i] & at_bound, FLAG_AT_BOUND, 0)
            flags |= np.where(ok[i] & (labels[m].limited_fraction > LIMITED_SHARE), FLAG_LIMITS, 0)
            if respects_pet is not None:
                flags |= np.where(ok[i] & ~respects_pet[i], FLAG_ABOVE_PET, 0)
        sc_max = np.where(ok, scs, -np.inf).max(0)
        sc_min = np.where(ok, scs, np.inf).min(0)
        flags |= np.where(
            has & (sc_max > DISAGREEMENT * np.maximum(sc_min, 0.0)) & (sc_max > 0), FLAG_DISAGREE, 0
        )
        months = np.stack([labels[m].calibration_months for m in names])
        months = np.where(ok & np.isfinite(months), months, np.inf).min(0)
        flags |= np.where(has & (months < MIN_CALIBRATION_MONTHS), FLAG_FEW_MONTHS, 0)
        flags |= np.where(has & (width > cwsc), FLAG_WIDE_RANGE, 0)
    flags = np.where(has, flags.astype(np.float64), np.nan)
    with np.errstate(invalid="ignore"):
        calibrated = np.isfinite(kges) & np.isfinite(scs)
        best = np.max(np.where(calibrated, kges, -np.inf), axis=0)
    kge = np.where(calibrated.any(0), best, np.nan)
    return cwsc, width, flags, kge


def cwsc_descriptions(threshold: float, tolerance: float, margin: float | None = None) -> list[str]:
    """Band descriptions of the label raster: the label rule, the range width, the flags."""
    from cwsc.hydro.options import flag_legend

    within = "" if margin is None else f"within {margin:g} of the best model's and "
    return [
        f"CWSC (mm): mean of the models' sc weighted by calibration KGE, models with KGE "
        f"{within}> {threshold:g} (where none is above it, those within the margin)",
        f"CWSC identifiable range width (mm): the union of the entering models' ranges of "
        f"sc whose KGE lies within {tolerance:g} of their best",
        f"quality flags (bit mask: {flag_legend()})",
    ]


def detail_bands(models: Sequence[str]) -> list[tuple[str, str, str]]:
    """(model, key, description) per band of the details raster."""
    from cwsc.hydro.models import PARAMETERS

    out = []
    for m in models:
        for k in PARAMETERS[m]:
            out.append((m, k, f"{m} {k} ({PARAMETER_UNITS.get(k, '-')})"))
        out.append((m, "sc_low", f"{m} sc identifiable low (mm)"))
        out.append((m, "sc_high", f"{m} sc identifiable high (mm)"))
        out += [
            (m, "kge_cal", f"{m} KGE calibration"),
            (m, "kge_val", f"{m} KGE validation"),
            (m, "nse_cal", f"{m} NSE calibration"),
            (m, "nse_val", f"{m} NSE validation"),
        ]
    return out


def mask_by_kge(
    labels: np.ndarray,
    kge: np.ndarray,
    threshold: float = 0.0,
    flags: np.ndarray | None = None,
    exclude: int = 0,
) -> np.ndarray:
    """Labels (any shape, NaN = nodata) where ``kge > threshold`` and, with ``flags``, where
    none of the bits in ``exclude`` is set; NaN elsewhere.

    A NaN KGE (a cell that could not be scored) never passes the mask.
    """
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(labels) & np.isfinite(kge) & (kge > threshold)
        if flags is not None and exclude:
            bits = np.where(np.isfinite(flags), flags, 0).astype(np.int64)
            keep &= (bits & int(exclude)) == 0
    return np.where(keep, labels, np.nan).astype(np.float32)
