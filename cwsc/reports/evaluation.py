"""Figures of the evaluation report: the map beside its reference, their scatter, and the
KGE distributions of the simulation check."""

from __future__ import annotations

import numpy as np

from cwsc.reports import html as report

#: The top of the CWSC colour scale (mm) the QGIS plugin draws every CWSC layer on (its
#: default; cwsc_qgis/settings.py DEFAULT_SCALE_MAX): the report's maps use the same colours.
CWSC_SCALE_MM = 800.0


def maps_figure(cwsc: np.ndarray, reference: np.ndarray):
    """The map and its reference (rows, cols; mm) on the CWSC scale, 0 to 800 mm (higher
    where the maps' 99th percentile is), and their difference."""
    fig, axes = report.new_figure(13, 3.8, ncols=3)
    values = np.concatenate([cwsc[np.isfinite(cwsc)], reference[np.isfinite(reference)]])
    vmax = max(CWSC_SCALE_MM, float(np.nanpercentile(values, 99)) if values.size else 0.0)
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


def distribution_figure(scores: dict[str, np.ndarray]):
    """The distributions (CDFs) of the validation KGE of each variant."""
    fig = report.new_figure(7, 4.2)
    ax = fig.gca()
    names = {
        "fixed": "CWSC fixed to the map",
        "constant": "constant CWSC (map median)",
        "free": "free calibration",
    }
    for k, (variant, values) in enumerate(scores.items()):
        v = np.sort(values[np.isfinite(values)])
        if len(v):
            ax.plot(v, np.arange(1, len(v) + 1) / len(v), color=f"C{k}", label=names[variant])
    ax.set_xlim(-1, 1)
    ax.set_xlabel("validation KGE (label models of each cell)")
    ax.set_ylabel("fraction of cells")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
