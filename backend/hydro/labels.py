"""What calibration gives per cell and model, and the joint CWSC label across models.

- :class:`ModelLabels`: one model's parameters, fit and equifinality spread per cell.
- :func:`joint_labels`: the joint CWSC label (the label rule), its spread and the joint KGE.
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
#: Per-cell fit and spread fields of :class:`ModelLabels`, as the details raster has them.
FIT_FIELDS = ("sc_spread", "kge_cal", "kge_val", "nse_cal", "nse_val")


@dataclass
class ModelLabels:
    """One model's labels per cell (C,): parameters, fit, equifinality spread of sc (mm)."""

    params: dict[str, np.ndarray]
    kge_cal: np.ndarray
    kge_val: np.ndarray
    nse_cal: np.ndarray
    nse_val: np.ndarray
    objective: np.ndarray
    sc_spread: np.ndarray
    evaluations: np.ndarray
    restart_objective: np.ndarray | None = None   # (C, restarts): each restart's best

    @classmethod
    def empty(cls, model: str, cells: int) -> "ModelLabels":
        """NaN labels (no evaluations) for ``cells`` cells."""
        from backend.hydro.models import PARAMETERS

        nan = np.full(cells, np.nan, dtype=np.float64)
        return cls({k: nan.copy() for k in PARAMETERS[model]}, nan.copy(), nan.copy(),
                   nan.copy(), nan.copy(), nan.copy(), nan.copy(), np.zeros(cells, np.int64))

    @classmethod
    def concatenate(cls, parts: Sequence["ModelLabels"]) -> "ModelLabels":
        """The labels of consecutive groups of cells, end to end."""
        cat = lambda xs: np.concatenate(xs) if xs else np.empty(0)  # noqa: E731
        restart = [pt.restart_objective for pt in parts]
        return cls({k: cat([pt.params[k] for pt in parts]) for k in parts[0].params},
                   *(cat([getattr(pt, a) for pt in parts]) for a in
                     ("kge_cal", "kge_val", "nse_cal", "nse_val", "objective", "sc_spread",
                      "evaluations")),
                   restart_objective=None if any(r is None for r in restart) else cat(restart))


@dataclass
class CalibrationResult:
    """Labels of every model plus the joint ones: ``cwsc`` (mm), ``cwsc_spread`` (mm) and
    ``kge`` (the best model's calibration KGE), each (C,), NaN where not calibrated."""

    models: dict[str, ModelLabels]
    cwsc: np.ndarray
    cwsc_spread: np.ndarray
    kge: np.ndarray


def result_arrays(result: CalibrationResult) -> dict[str, np.ndarray]:
    """A result as named arrays (for a work folder's shard files)."""
    out = {"cwsc": result.cwsc, "cwsc_spread": result.cwsc_spread, "kge": result.kge}
    for m, lab in result.models.items():
        for k, v in lab.params.items():
            out[f"{m}/param/{k}"] = v
        for k in _LABEL_ARRAYS:
            out[f"{m}/{k}"] = getattr(lab, k)
        if lab.restart_objective is not None:
            out[f"{m}/restart_objective"] = lab.restart_objective
    return out


def result_from_arrays(arrays: Mapping[str, np.ndarray], models: Sequence[str]) -> CalibrationResult:
    """The inverse of :func:`result_arrays`."""
    out = {}
    for m in models:
        params = {key.split("/")[2]: arrays[key] for key in arrays
                  if key.startswith(f"{m}/param/")}
        out[m] = ModelLabels(params, *(arrays[f"{m}/{k}"] for k in _LABEL_ARRAYS),
                             restart_objective=arrays.get(f"{m}/restart_objective"))
    return CalibrationResult(out, arrays["cwsc"], arrays["cwsc_spread"], arrays["kge"])


_LABEL_ARRAYS = ("kge_cal", "kge_val", "nse_cal", "nse_val", "objective", "sc_spread",
                 "evaluations")


def joint_labels(labels: Mapping[str, ModelLabels], threshold: float = 0.0,
                 margin: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cwsc, cwsc_spread, kge) per cell from the models' labels.

    cwsc: mean of the models' sc weighted by their calibration KGE, over the models whose
    calibration KGE exceeds ``threshold`` and, when ``margin`` is given, lies within
    ``margin`` of the cell's best model (weights below zero count as zero; equal weights
    when all are zero); NaN where no model qualifies. cwsc_spread: the same weighted mean of
    the models' equifinality spreads of sc. kge: the best model's calibration KGE.
    """
    kges = np.stack([lab.kge_cal for lab in labels.values()])          # (models, C)
    scs = np.stack([lab.params["sc"] for lab in labels.values()])
    spreads = np.stack([lab.sc_spread for lab in labels.values()])
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(kges) & (kges > threshold) & np.isfinite(scs)
        if margin is not None:
            best = np.max(np.where(np.isfinite(kges), kges, -np.inf), axis=0)
            ok &= kges >= best - float(margin)
    weights = np.where(ok, np.clip(np.nan_to_num(kges), 0.0, None), 0.0)
    total = weights.sum(0)
    weights = np.where(total > 0, weights, ok.astype(np.float64))   # all-zero: equal weights
    total = weights.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cwsc = np.where(total > 0, (weights * np.nan_to_num(scs)).sum(0) / total, np.nan)
        spread = np.where(total > 0, (weights * np.nan_to_num(spreads)).sum(0) / total, np.nan)
    all_nan = ~np.isfinite(kges).any(0)
    kge = np.where(all_nan, np.nan, np.nanmax(np.where(np.isfinite(kges), kges, -np.inf), 0))
    return cwsc, spread, kge


def cwsc_descriptions(threshold: float, tolerance: float, margin: float | None = None) -> list[str]:
    """Band descriptions of the label raster: the label rule, then the spread."""
    within = "" if margin is None else f" and within {margin:g} of the best model's"
    return [f"CWSC (mm): mean of the models' sc weighted by calibration KGE, models with KGE > "
            f"{threshold:g}{within}",
            f"CWSC equifinality spread (mm): max - min of sc among the final SCE-UA points "
            f"within {tolerance:g} of the best objective, weighted as band 1"]


def detail_bands(models: Sequence[str]) -> list[tuple[str, str, str]]:
    """(model, key, description) per band of the details raster."""
    from backend.hydro.models import PARAMETERS

    out = []
    for m in models:
        for k in PARAMETERS[m]:
            out.append((m, k, f"{m} {k} ({PARAMETER_UNITS.get(k, '-')})"))
        out.append((m, "sc_spread", f"{m} sc equifinality spread (mm)"))
        out += [(m, "kge_cal", f"{m} KGE calibration"), (m, "kge_val", f"{m} KGE validation"),
                (m, "nse_cal", f"{m} NSE calibration"), (m, "nse_val", f"{m} NSE validation")]
    return out


def mask_by_kge(labels: np.ndarray, kge: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Labels (any shape, NaN = nodata) where ``kge > threshold``, NaN elsewhere.

    A NaN KGE (a cell that could not be scored) never passes the mask.
    """
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(labels) & np.isfinite(kge) & (kge > threshold)
    return np.where(keep, labels, np.nan).astype(np.float32)
