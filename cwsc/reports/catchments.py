"""The report of ``evaluate-catchments``: the table, the catchments on a map, observed and
simulated hydrographs, and the map's sc against each catchment's calibrated sc."""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

import numpy as np

from cwsc.reports.html import new_figure, write_html

#: Columns of the report's table, in words.
COLUMNS = {
    "id": "catchment",
    "area_km2": "area (km²)",
    "months": "months",
    "cwsc_map_mm": "map sc (mm)",
    "sc_free_mm": "calibrated sc (mm)",
    "kge_val_free": "validation KGE, free",
    "kge_val_map": "validation KGE, map",
    "kge_val_constant": "validation KGE, constant map",
    "in_range_map": "map inside the identifiable range",
    "in_range_constant": "constant inside the identifiable range",
    "snow": "share of P through the snow store",
    "models": "models of the label",
    "not_scored": "not scored because",
    "notes": "notes",
}


def _rings(geometry: Mapping) -> list[np.ndarray]:
    if geometry is None:
        return []
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [np.asarray(p[0], dtype=float)[:, :2] for p in polygons if p]


def map_figure(shapes, records: Sequence[Mapping[str, Any]]):
    """The catchments in their own CRS, coloured by the validation KGE with the map."""
    from matplotlib.collections import PolyCollection

    fig = new_figure(6.5, 4.5)
    ax = fig.axes[0]
    by_id = {r["id"]: r for r in records}
    polys, values = [], []
    for s in shapes:
        value = by_id.get(s.id, {}).get("kge_val_map")
        for ring in _rings(s.geometry):
            polys.append(ring)
            values.append(np.nan if value is None else value)
    if polys:
        pc = PolyCollection(polys, cmap="RdYlBu", edgecolors="black", linewidths=0.5)
        pc.set_array(np.ma.masked_invalid(np.array(values, dtype=float)))
        pc.set_clim(-0.5, 1.0)
        ax.add_collection(pc)
        ax.autoscale_view()
        fig.colorbar(pc, ax=ax, label="validation KGE with sc from the map")
        for s in shapes:
            rings = _rings(s.geometry)
            if rings:
                x, y = rings[0].mean(axis=0)
                ax.annotate(s.id, (x, y), fontsize=7, ha="center")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("Catchments (grey: not scored)")
    return fig


def hydrograph_figure(cid: str, months: Sequence[str], observed: np.ndarray, score, w: int, c: int):
    """Observed runoff and the runoff of the free calibration and of sc from the map."""
    fig = new_figure(9.0, 2.6)
    ax = fig.axes[0]
    x = np.arange(len(months))
    ax.plot(x, observed, color="black", lw=1.2, label="observed")
    ax.plot(x, score.free.runoff, color="tab:blue", lw=0.9, label=f"free ({score.free.model})")
    fit = score.fixed.get("map")
    if fit is not None:
        ax.plot(x, fit.runoff, color="tab:red", lw=0.9, ls="--", label=f"sc from the map ({fit.model})")
    ax.axvspan(0, w, color="0.9", lw=0)
    ax.axvline(c, color="0.5", lw=0.8)
    step = max(len(months) // 8, 1)
    ax.set_xticks(x[::step], [months[i] for i in x[::step]], fontsize=7)
    ax.set_ylabel("runoff (mm/month)")
    ax.set_title(f"{cid}: warm-up shaded, validation right of the line", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def sc_figure(records: Sequence[Mapping[str, Any]]):
    """The map's sc against each catchment's calibrated label, with its identifiable range."""
    fig = new_figure(4.8, 4.5)
    ax = fig.axes[0]
    rows = [r for r in records if r.get("sc_free_mm") is not None and r.get("cwsc_map_mm") is not None]
    if rows:
        x = np.array([r["cwsc_map_mm"] for r in rows], dtype=float)
        y = np.array([r["sc_free_mm"] for r in rows], dtype=float)
        low = np.array([r.get("sc_low_mm", np.nan) for r in rows], dtype=float)
        high = np.array([r.get("sc_high_mm", np.nan) for r in rows], dtype=float)
        err = np.vstack([np.clip(y - low, 0, None), np.clip(high - y, 0, None)])
        ax.errorbar(x, y, yerr=np.nan_to_num(err), fmt="o", ms=4, capsize=2, color="tab:blue")
        top = float(np.nanmax(np.concatenate([x, y, high]))) * 1.05
        ax.plot([0, top], [0, top], color="0.5", lw=0.8)
        for r, xi, yi in zip(rows, x, y):
            ax.annotate(r["id"], (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("map sc, catchment mean (mm)")
    ax.set_ylabel("calibrated sc, the label (mm)")
    ax.set_title("Bars: the identifiable range of sc", fontsize=9)
    return fig


def _check_words(check: Mapping[str, Any]) -> str:
    """The map check in a sentence."""

    def pct(x: float) -> str:
        return "-" if not np.isfinite(x) else f"{100 * x:.0f} %"

    rho = check["spearman_map_labels"]
    return (
        f" Here the map lies inside the range at {pct(check['share_in_range_map'])} of the "
        f"{check['places']} catchments with a range, the constant map ({check['constant_mm']:.0f} mm) at "
        f"{pct(check['share_in_range_constant'])}; the rank correlation with the labels is "
        f"{'-' if not np.isfinite(rho) else f'{rho:.2f}'}."
    )


def catchments_report(
    path,
    shapes,
    records: Sequence[Mapping[str, Any]],
    scores: Mapping[str, Any],
    hydrographs: Mapping[str, tuple[list[str], np.ndarray]],
    medians: Mapping[str, float],
    settings: Mapping[str, Any],
    periods: Mapping[str, tuple[int, int]],
    check: Mapping[str, Any] | None = None,
):
    """Write the report to ``path``. ``settings``: what the run used, in words;
    ``periods``: catchment -> (first calibration month, first validation month) indices;
    ``check``: :func:`cwsc.evaluation.maps.range_check` over the scored catchments."""
    summary = {
        "catchments scored": len(scores),
        "catchments not scored": sum(1 for r in records if r.get("not_scored")),
        "median validation KGE, sc from the map": medians.get("kge_val_map"),
        "median validation KGE, free calibration": medians.get("kge_val_free"),
        "median validation KGE, constant map": medians.get("kge_val_constant"),
        **(
            {
                "share of catchments with the map inside their identifiable range": check[
                    "share_in_range_map"
                ],
                "share with the constant map inside it": check["share_in_range_constant"],
                "rank correlation (Spearman) of the map with the catchments' own labels": check[
                    "spearman_map_labels"
                ],
            }
            if check
            else {}
        ),
        **settings,
    }
    table = [{COLUMNS[k]: r.get(k) for k in COLUMNS} for r in records]
    sections: list[tuple[str, Any]] = [
        ("Summary", summary),
        (
            "How to read it",
            "<p>Each catchment is calibrated on its own (free: the label by the label rule and the "
            "best model entering it), then again in the models of its label with sc fixed to the "
            "map's area-weighted mean inside the polygon, and to a constant map (the median of the "
            "map over the catchments). A map that carries information scores close to the free "
            "calibration and above the constant map in the validation months.</p>"
            "<p>The validation KGE alone cannot tell a right map from a plausible constant one: the other "
            "parameters, re-calibrated, absorb most of a wrong sc. Two checks can: whether the map's sc lies "
            "inside each catchment's identifiable range of sc (the values whose best fit is within the "
            "identifiability tolerance of the best), for the map and for the constant map; and the rank "
            "correlation of the map with the catchments' own labels, which a constant map does not have and "
            "a shuffled map loses." + (_check_words(check) if check else "") + "</p>",
        ),
        ("Catchments", table),
        ("Map", map_figure(shapes, records)),
        ("Map sc against calibrated sc", sc_figure(records)),
    ]
    figures = []
    for cid, score in scores.items():
        months, observed = hydrographs[cid]
        w, c = periods[cid]
        figures.append(hydrograph_figure(cid, months, observed, score, w, c))
    sections.append(("Hydrographs", figures or "<p>(no catchment scored)</p>"))
    return write_html(
        path, "CWSC at gauged catchments", sections, subtitle=html.escape(str(settings.get("map", "")))
    )
