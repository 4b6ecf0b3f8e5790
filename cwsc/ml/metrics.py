"""Agreement of predicted and observed CWSC, both in mm (float arrays of the same shape)."""

from __future__ import annotations

import math

import numpy as np


def r2_score(obs: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (NaN when obs is constant)."""
    obs, pred = np.asarray(obs, np.float64), np.asarray(pred, np.float64)
    ss_tot = float(((obs - obs.mean()) ** 2).sum())
    if len(obs) == 0 or ss_tot == 0:
        return math.nan
    return 1.0 - float(((obs - pred) ** 2).sum()) / ss_tot


def kge(obs: np.ndarray, pred: np.ndarray) -> float:
    """Kling-Gupta efficiency (Gupta et al. 2009) of ``pred`` against ``obs``."""
    obs, pred = np.asarray(obs, np.float64), np.asarray(pred, np.float64)
    if len(obs) < 2 or obs.std() == 0 or obs.mean() == 0:
        return math.nan
    r = np.corrcoef(obs, pred)[0, 1] if pred.std() > 0 else 0.0
    alpha = pred.std() / obs.std()
    beta = pred.mean() / obs.mean()
    return float(1.0 - math.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))


def regression_metrics(obs: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R2, RMSE (mm), MAE (mm), bias = mean(pred - obs) (mm), KGE."""
    obs, pred = np.asarray(obs, np.float64), np.asarray(pred, np.float64)
    if len(obs) == 0:
        return {"r2": math.nan, "rmse": math.nan, "mae": math.nan, "bias": math.nan, "kge": math.nan}
    err = pred - obs
    return {
        "r2": r2_score(obs, pred),
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
        "bias": float(err.mean()),
        "kge": kge(obs, pred),
    }
