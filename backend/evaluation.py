"""How good is a CWSC map? The checks of the evaluate command, arrays in and out.

Two checks, both optional, as in the CWSC papers:

1. **Agreement with a reference map** (e.g. a root-zone storage capacity product, or the
   true CWSC of a twin experiment): R2, Pearson r, RMSE, MAE, bias over the cells where
   both are valid, with maps and a scatter plot.
2. **Simulation efficiency**: on a seeded sample of cells with runoff, each model is
   calibrated twice, once freely and once with ``sc`` fixed to the map; the KGE lost by
   fixing CWSC says whether the map is usable as a model parameter.
"""

from __future__ import annotations

import math

import numpy as np

from backend import protocol, report


def agreement(cwsc: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Agreement of ``cwsc`` with ``reference`` (both mm, same shape, NaN = nodata).

    R2 is the coefficient of determination of the map as a prediction of the reference.
    """
    from backend.ml.metrics import regression_metrics

    ok = np.isfinite(cwsc) & np.isfinite(reference)
    n = int(ok.sum())
    if n < 3:
        return {"cells": n, "r2": math.nan, "pearson_r": math.nan, "rmse": math.nan,
                "mae": math.nan, "bias": math.nan, "kge": math.nan}
    obs, pred = reference[ok].astype(np.float64), cwsc[ok].astype(np.float64)
    m = regression_metrics(obs, pred)
    r = float(np.corrcoef(obs, pred)[0, 1]) if obs.std() > 0 and pred.std() > 0 else math.nan
    return {"cells": n, "r2": m["r2"], "pearson_r": r, "rmse": m["rmse"], "mae": m["mae"],
            "bias": m["bias"], "kge": m["kge"]}


def maps_figure(cwsc: np.ndarray, reference: np.ndarray):
    fig, axes = report.new_figure(13, 3.8, ncols=3)
    vmax = float(np.nanpercentile(np.concatenate([cwsc[np.isfinite(cwsc)],
                                                  reference[np.isfinite(reference)]]), 99))
    for ax, data, title in ((axes[0], cwsc, "CWSC map (mm)"), (axes[1], reference, "Reference (mm)")):
        im = ax.imshow(data, cmap="YlGnBu", vmin=0, vmax=vmax)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    diff = cwsc - reference
    lim = float(np.nanpercentile(np.abs(diff), 98)) if np.isfinite(diff).any() else 1.0
    im = axes[2].imshow(diff, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[2].set_title("Map - reference (mm)")
    axes[2].set_xticks([]), axes[2].set_yticks([])
    fig.colorbar(im, ax=axes[2], shrink=0.8)
    return fig


def scatter_figure(cwsc: np.ndarray, reference: np.ndarray, stats: dict):
    fig = report.new_figure(5, 5)
    ax = fig.gca()
    ok = np.isfinite(cwsc) & np.isfinite(reference)
    ax.scatter(reference[ok], cwsc[ok], s=4, alpha=0.4)
    hi = float(max(np.nanmax(reference[ok]), np.nanmax(cwsc[ok]))) if ok.any() else 1.0
    ax.plot([0, hi], [0, hi], "k--", lw=1)
    ax.set_xlabel("reference (mm)")
    ax.set_ylabel("CWSC map (mm)")
    ax.set_title(f"R2 = {stats['r2']:.3f}, r = {stats['pearson_r']:.3f}, n = {stats['cells']}")
    return fig


def kge_cdf_figure(free: dict[str, np.ndarray], fixed: dict[str, np.ndarray]):
    fig = report.new_figure(7, 4.2)
    ax = fig.gca()
    for k, (name, values) in enumerate(free.items()):
        color = f"C{k}"
        for data, style, tag in ((values, "-", "free"), (fixed[name], "--", "CWSC fixed")):
            v = np.sort(data[np.isfinite(data)])
            if len(v):
                ax.plot(v, np.arange(1, len(v) + 1) / len(v), style, color=color, label=f"{name} {tag}")
    ax.set_xlim(-1, 1)
    ax.set_xlabel("calibration KGE")
    ax.set_ylabel("fraction of cells")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def simulation_check(cwsc: np.ndarray, precip: np.ndarray, pet: np.ndarray, runoff: np.ndarray,
                     models, restarts: int | None, seed: int, device, max_cells: int,
                     max_evaluations: int | None = None):
    """Free vs CWSC-fixed calibration on a sample of cells.

    cwsc: (rows, cols) mm; precip, pet, runoff: (months, rows, cols) mm/month.
    Returns ``(kge_free, kge_fixed, cells, best_free, best_fixed)``: per model the
    calibration KGE of every sampled cell, free and with sc fixed to the map (dicts of (n,)
    arrays); the number of sampled cells n; and per cell the best model's KGE, free and
    fixed ((n,) arrays).
    """
    from backend.hydro.calibrate import calibrate
    from backend.hydro.config import CalibrationConfig
    from backend.hydro.sceua import SceuaSettings

    months = precip.shape[0]
    flat = lambda a: a.reshape(months, -1).T  # noqa: E731 - (cells, months)
    p, e, q = flat(precip), flat(pet), flat(runoff)
    c = cwsc.ravel()
    ok = np.isfinite(c) & np.isfinite(p).all(1) & np.isfinite(e).all(1) & (np.isfinite(q).sum(1) >= 12)
    cells = np.flatnonzero(ok)
    if len(cells) == 0:
        raise protocol.BadInput("CWSC: no cell has both a CWSC value and complete forcing and runoff")
    rng = np.random.default_rng(seed)
    if len(cells) > max_cells:
        cells = np.sort(rng.choice(cells, max_cells, replace=False))
    kwargs = {"models": tuple(models), "seed": seed, "device": device}
    if restarts:
        kwargs["restarts"] = restarts
    if max_evaluations:
        kwargs["sceua"] = SceuaSettings(max_evaluations=int(max_evaluations))
    config = CalibrationConfig(**kwargs)

    def progress_for(offset: int):
        def cb(frac: float) -> None:
            protocol.progress(0.2 + 0.35 * (offset + frac),
                              "calibrating with CWSC fixed to the map" if offset
                              else "calibrating freely")
        return cb

    free = calibrate(p[cells], e[cells], q[cells], config, progress=progress_for(0))
    fixed = calibrate(p[cells], e[cells], q[cells], config, fixed={"sc": c[cells]},
                      progress=progress_for(1))
    kge_free = {m: free.models[m].kge_cal for m in models}
    kge_fixed = {m: fixed.models[m].kge_cal for m in models}
    return kge_free, kge_fixed, len(cells), free.kge, fixed.kge


def median(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    return float(np.median(a)) if len(a) else math.nan
