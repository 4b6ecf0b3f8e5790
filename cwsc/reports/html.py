"""Self-contained HTML reports: one file, figures embedded as base64 PNG data URIs.

Reusable pieces (the train and evaluate commands both use them):

- :func:`figure_to_data_uri` turns a matplotlib figure into a ``data:image/png`` URI.
- :func:`write_html` writes a titled page of sections.
- :func:`table_html` / :func:`image_html` build section bodies.

Example::

    from cwsc.reports import html as report
    fig = report.new_figure()
    fig.gca().plot(x, y)
    report.write_html("out.html", "CWSC evaluation", [
        ("Metrics", {"R2": 0.91, "RMSE (mm)": 31.2}),      # a mapping -> a table
        ("Agreement", fig),                                 # a figure -> an image
        ("Notes", "<p>Free <b>HTML</b> is kept as is.</p>"),
    ])
"""

from __future__ import annotations

import base64
import html
import io as _io
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

_CSS = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:60em;
color:#222;padding:0 1em}h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ccc;
padding-bottom:.2em;margin-top:1.6em}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}td.num{text-align:right;
font-variant-numeric:tabular-nums}img{max-width:100%;height:auto}.meta{color:#666;font-size:.9em}
"""


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=True)  # no display in a backend process
    import matplotlib.pyplot as plt

    return plt


def new_figure(width: float = 6.0, height: float = 4.0, ncols: int = 1):
    """A matplotlib figure on the Agg canvas (never a GUI window); ``(fig, axes)`` if ncols > 1."""
    plt = _mpl()
    if ncols > 1:
        return plt.subplots(1, ncols, figsize=(width, height), constrained_layout=True)
    fig = plt.figure(figsize=(width, height), constrained_layout=True)
    fig.add_subplot(1, 1, 1)
    return fig


def figure_to_data_uri(fig, dpi: int = 100) -> str:
    """``data:image/png;base64,...`` for ``fig``; the figure is closed (its memory freed)."""
    plt = _mpl()
    buf = _io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_html(uri: str, alt: str = "") -> str:
    """An ``<img>`` for a data URI (from :func:`figure_to_data_uri`)."""
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, (list, tuple)):  # a list of models or widths, as a reader writes it
        return ", ".join(format_value(v) for v in value)
    return str(value)


#: Abbreviations a snake_case key holds, as a reader writes them.
_TERMS = {"r2": "R²", "kge": "KGE", "nse": "NSE", "rmse": "RMSE", "mae": "MAE", "cwsc": "CWSC", "mm": "(mm)"}


def words(key: Any) -> str:
    """A table's row name in words: ``test_rmse_mm`` -> ``test RMSE (mm)``; other text as is."""
    text = str(key)
    if not re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+|[a-z0-9]+", text):
        return text
    return " ".join(_TERMS.get(part, part) for part in text.split("_"))


def table_html(data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """A mapping becomes a two-column (name, value) table; a list of mappings a table with a
    column per key (the first row's keys). Keys in snake_case are written in words; values are
    formatted and escaped."""
    if isinstance(data, Mapping):
        rows = "".join(
            f"<tr><th>{html.escape(words(k))}</th><td class='num'>{html.escape(format_value(v))}</td></tr>"
            for k, v in data.items()
        )
        return f"<table>{rows}</table>"
    data = list(data)
    if not data:
        return "<p>(none)</p>"
    keys = list(data[0].keys())
    head = "".join(f"<th>{html.escape(words(k))}</th>" for k in keys)
    body = "".join(
        "<tr>"
        + "".join(f"<td class='num'>{html.escape(format_value(r.get(k)))}</td>" for k in keys)
        + "</tr>"
        for r in data
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _body(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if hasattr(content, "savefig"):
        return image_html(figure_to_data_uri(content))
    if isinstance(content, Mapping):
        return table_html(content)
    if isinstance(content, (list, tuple)):
        if content and all(isinstance(c, Mapping) for c in content):
            return table_html(content)
        return "\n".join(_body(c) for c in content)
    return f"<p>{html.escape(str(content))}</p>"


def render_html(title: str, sections: Sequence[tuple[str, Any]], subtitle: str = "") -> str:
    """The page as a string. Each section is ``(heading, content)``; content may be an HTML
    string (kept as is), a matplotlib figure (embedded PNG), a mapping (name/value table), a
    list of mappings (table), or a list mixing these."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='meta'>{html.escape(subtitle + ' · ' if subtitle else '')}written {stamp}</p>"
    ]
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{_body(content)}")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(path: str | Path, title: str, sections: Sequence[tuple[str, Any]], subtitle: str = "") -> Path:
    """Write one self-contained HTML file to ``path`` (see :func:`render_html` for sections;
    a command writes to its :class:`~cwsc.runtime.outputs.Outputs` temporary)."""
    Path(path).write_text(render_html(title, sections, subtitle), encoding="utf-8")
    return Path(path)


# ---------------------------------------------------------------------------------------
# Training report
# ---------------------------------------------------------------------------------------


def learning_curves_figure(histories: Sequence[Sequence[Mapping[str, Any]]]):
    """Loss (scaled units) and validation R2 per epoch, one line per ensemble member."""
    fig, (ax1, ax2) = new_figure(10, 3.8, ncols=2)
    for k, h in enumerate(histories):
        ep = [r["epoch"] for r in h]
        tag = f" (member {k + 1})" if len(histories) > 1 else ""
        ax1.plot(ep, [r["train_loss"] for r in h], label="train" + tag)
        if any(r.get("val_loss") is not None for r in h):
            ax1.plot(ep, [r.get("val_loss") for r in h], "--", label="validation" + tag)
            ax2.plot(ep, [r.get("val_r2") for r in h], label="validation" + tag)
        if any(r.get("test_r2") is not None for r in h):
            ax2.plot(ep, [r.get("test_r2") for r in h], ":", label="test" + tag)
    ax1.set(xlabel="epoch", ylabel="MSE (scaled labels)", yscale="log", title="Loss")
    ax2.set(xlabel="epoch", ylabel="R²", title="Validation R²")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    return fig


def scatter_figure(obs, pred, title: str = "Test split: observed vs predicted"):
    import numpy as np

    fig = new_figure(5, 5)
    ax = fig.gca()
    ax.scatter(obs, pred, s=6, alpha=0.5, edgecolors="none")
    if len(obs):
        lo, hi = float(np.nanmin([obs.min(), pred.min()])), float(np.nanmax([obs.max(), pred.max()]))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="1:1")
        ax.legend()
    ax.set(xlabel="observed CWSC (mm)", ylabel="predicted CWSC (mm)", title=title)
    ax.set_aspect("equal", adjustable="datalim")
    return fig


def residual_histogram_figure(residuals):
    fig = new_figure(6, 3.5)
    ax = fig.gca()
    ax.hist(residuals, bins=40, color="#4477aa")
    ax.axvline(0, color="k", lw=1)
    ax.set(xlabel="predicted - observed (mm)", ylabel="cells", title="Test residuals")
    return fig


def residual_map_figure(shape, rows, cols, residuals, extent=None):
    """Test residuals (mm) at their cells on the grid; other cells blank."""
    import numpy as np

    grid = np.full(shape, np.nan, np.float32)
    grid[rows, cols] = residuals
    lim = float(np.nanpercentile(np.abs(residuals), 98)) if len(residuals) else 1.0
    fig = new_figure(7, 7 * shape[0] / max(shape[1], 1) * 0.9 + 0.8)
    ax = fig.gca()
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest", extent=extent)
    fig.colorbar(im, ax=ax, label="predicted - observed (mm)", shrink=0.8)
    ax.set(title="Map of test residuals")
    return fig


def baseline_sentence(
    network_r2: float, baseline_r2: float, name: str | None = None, subject: str = "The network"
) -> str:
    """One line comparing the shipped model's test R2 with the tree baseline's (same test
    cells); ``name``: which baseline, the better of the two
    (:func:`cwsc.ml.baseline.fit_best_baseline`); ``subject``: what the model is (the network,
    or the network averaged with trees)."""
    which = f"the better tree baseline ({name})" if name else "a tree baseline"
    if not (math.isfinite(network_r2) and math.isfinite(baseline_r2)):
        return f"No comparison with {which}: no test score (test R² {network_r2:.3f} vs {baseline_r2:.3f})."
    gap = network_r2 - baseline_r2
    scores = f"(test R² {network_r2:.3f} vs {baseline_r2:.3f})"
    if gap > 0:
        return f"{subject} beats {which} by {gap:.3f} {scores}."
    line = f"{subject} does not beat {which}: it trails it by {-gap:.3f} {scores}."
    if -gap < CLOSE_GAP:
        # The bar is picked on these test cells, the model's trees on the validation cells:
        # on one split a gap this small says less than the split does.
        line += (
            f" A gap under {CLOSE_GAP} is within what the choice of test cells moves; the bar is "
            "the better tree on these test cells, picked after the fact."
        )
    return line


#: A gap smaller than this (test R2) is within the spread between splits: the standard deviation
#: of the best tree's test R2 over five block splits is 0.02 on the real map and 0.04 on the twin
#: (docs/results.md, 'The network against the trees').
CLOSE_GAP = 0.02


BASELINE_NOTE = (
    "The baseline: the better, on these test cells, of two gradient-boosted trees "
    "(scikit-learn HistGradientBoostingRegressor), one on each cell's predictors and one on "
    "them and their 3 x 3 and 11 x 11 neighbourhood means, each fitted on the network's "
    "training cells (early stopping on its validation cells). The model file averages the network "
    "with the one of the two better on the validation cells (never chosen on the test cells; "
    "train --no-trees ships the network alone). A model that does not beat the baseline has not "
    "earned its place yet: try more epochs, another patch size or network, or use the trees' score as the bar."
)


def training_report(
    path: str | Path,
    result,
    grid_shape: tuple[int, int],
    channels: Sequence[str],
    settings: Mapping[str, Any],
    extent=None,
    baseline_r2: float | None = None,
    baseline_name: str | None = None,
    shipped=None,
) -> Path:
    """The train command's report from a :class:`cwsc.ml.training.TrainResult`; with
    ``baseline_r2`` (the tree baseline's test R2, :mod:`cwsc.ml.baseline`) a line on
    whether the model beats it; ``baseline_name``: which of the two tree baselines it is;
    ``shipped``: the network averaged with trees (:class:`cwsc.ml.training.WithTrees`), whose
    test scores and predictions the report shows (the network alone's R2 beside them), or None
    for the network alone."""
    network_r2 = result.metrics.get("test_r2")
    if shipped is not None:
        from dataclasses import replace

        result = replace(result, metrics=shipped.metrics, test_pred=shipped.test_pred)
    res = result.test_pred - result.test_obs
    metrics = {
        "R²": result.metrics.get("test_r2"),
        "RMSE (mm)": result.metrics.get("test_rmse"),
        "MAE (mm)": result.metrics.get("test_mae"),
        "bias (mm, predicted - observed)": result.metrics.get("test_bias"),
        "KGE": result.metrics.get("test_kge"),
    }
    if shipped is not None:
        metrics["R² of the network alone"] = network_r2
        metrics[f"R² of the trees averaged in ({shipped.name}, chosen on the validation cells)"] = (
            shipped.info.get("test_r2")
        )
    if baseline_r2 is not None:
        metrics["R² of the tree baseline" + (f" ({baseline_name})" if baseline_name else "")] = baseline_r2
    summary = {
        **settings,
        **result.sizes,
        "epochs run (all members)": result.epochs_run,
        "device": result.device,
        "seconds": round(result.seconds, 1),
        "parameters per member": int(
            sum(
                t.numel()
                for n, t in result.members[0].items()
                if not n.endswith(("running_mean", "running_var", "num_batches_tracked"))
            )
        ),
    }
    sections: list[tuple[str, Any]] = [("Test metrics", metrics)]
    if baseline_r2 is not None:
        line = baseline_sentence(
            result.metrics.get("test_r2", float("nan")),
            baseline_r2,
            baseline_name,
            "The network averaged with trees" if shipped is not None else "The network",
        )
        sections.append(
            (
                "Against a tree baseline",
                # A network that trails the trees is a warning, in the report as in the log.
                f"<p><b>{'Warning: ' if ' does not beat ' in line else ''}{html.escape(line)}</b></p>"
                f"<p>{html.escape(BASELINE_NOTE)}</p>",
            )
        )
    sections += [
        ("Run", summary),
        ("Predictor channels", "<p>" + ", ".join(channels) + "</p>"),
        ("Learning curves", learning_curves_figure(result.histories)),
    ]
    if len(res):
        sections += [
            ("Observed vs predicted", scatter_figure(result.test_obs, result.test_pred)),
            ("Residuals", residual_histogram_figure(res)),
            (
                "Residual map",
                residual_map_figure(grid_shape, result.test_rows, result.test_cols, res, extent),
            ),
        ]
    else:
        sections.append(("Test split", "<p>No test cells (TEST_FRACTION = 0).</p>"))
    return write_html(path, "CWSC network training", sections, subtitle=f"recipe {result.recipe.name}")


def _kge_maps_figure(shape, result, extent=None):
    """Per-cell KGE of the best model: calibration and validation months, training and
    held-out cells (2 x 2 maps)."""
    import numpy as np

    plt = _mpl()
    best = np.argmax(np.nan_to_num(result.kge_cal, nan=-np.inf), axis=0)
    cells = np.arange(len(result.rows))
    values = {"calibration": result.kge_cal[best, cells], "validation": result.kge_val[best, cells]}
    fig, axes = plt.subplots(
        2, 2, figsize=(11, 11 * shape[0] / max(shape[1], 1) * 0.9 + 1.2), constrained_layout=True
    )
    for i, (months, v) in enumerate(values.items()):
        for j, (name, which) in enumerate(
            (("training cells", result.part != 2), ("held-out cells", result.part == 2))
        ):
            grid = np.full(shape, np.nan, np.float32)
            grid[result.rows[which], result.cols[which]] = v[which]
            im = axes[i, j].imshow(
                grid, cmap="viridis", vmin=-0.4, vmax=1.0, interpolation="nearest", extent=extent
            )
            axes[i, j].set(title=f"KGE, {months} months, {name}")
    fig.colorbar(im, ax=axes, label="KGE (best model of the cell)", shrink=0.6)
    return fig


def _sc_distribution_figure(result):
    import numpy as np

    fig = new_figure(7, 3.8)
    ax = fig.gca()
    bins = np.geomspace(1, 1000, 41)
    for k, m in enumerate(result.head.models):
        ax.hist(np.clip(result.sc[k], 1, 1000), bins=bins, histtype="step", lw=1.5, label=f"{m} sc")
    ax.hist(
        np.clip(result.cwsc, 1, 1000),
        bins=bins,
        histtype="stepfilled",
        alpha=0.3,
        color="k",
        label="joint CWSC",
    )
    ax.set(xscale="log", xlabel="mm", ylabel="cells", title="Learned storage capacities")
    ax.legend(fontsize=8)
    return fig


def _physics_curves_figure(history):
    fig, (ax1, ax2) = new_figure(10, 3.8, ncols=2)
    ep = [r["epoch"] for r in history]
    ax1.plot(ep, [r["train_loss"] for r in history], label="training cells")
    ax1.plot(ep, [r.get("val_loss") for r in history], "--", label="validation cells")
    ax1.set(xlabel="epoch", ylabel="loss (1 - KGE, models combined)", title="Loss")
    ax2.plot(ep, [r.get("train_kge") for r in history], label="training cells")
    ax2.plot(ep, [r.get("val_kge") for r in history], "--", label="validation cells")
    ax2.set(xlabel="epoch", ylabel="median KGE (best model)", title="Calibration-month KGE")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    return fig


def learning_report(
    path: str | Path,
    result,
    grid_shape: tuple[int, int],
    settings: Mapping[str, Any],
    extent=None,
    labels=None,
) -> Path:
    """The learn command's report from a :class:`cwsc.ml.physics.LearnResult`; ``labels``
    ``(rows, cols)`` mm (optional): calibrate's labels to compare the learned map with."""
    import numpy as np

    from cwsc.ml.physics import CELL_COUNTS

    m = result.metrics
    metrics = {
        "median KGE, calibration months, training cells": m.get("cal_kge_train_cells"),
        "median KGE, validation months, training cells": m.get("val_kge_train_cells"),
        "median KGE, calibration months, held-out cells": m.get("cal_kge_test_cells"),
        "median KGE, validation months, held-out cells": m.get("val_kge_test_cells"),
    }
    summary = {
        **settings,
        **{k: m[k] for k in CELL_COUNTS + ("pretrained_cells", "epochs_run") if k in m},
        "device": result.device,
        "seconds": round(result.seconds, 1),
    }
    sc_table = [
        {
            "model": mod,
            "median sc (mm)": float(np.median(result.sc[k])),
            "5 % (mm)": float(np.percentile(result.sc[k], 5)),
            "95 % (mm)": float(np.percentile(result.sc[k], 95)),
            "cells where it fits best": int(
                (np.argmax(np.nan_to_num(result.kge_cal, nan=-np.inf), axis=0) == k).sum()
            ),
        }
        for k, mod in enumerate(result.head.models)
    ]
    sections: list[tuple[str, Any]] = [
        ("KGE of the learned parameters", metrics),
        ("Run", summary),
        ("Learning curves", _physics_curves_figure(result.history)),
        ("KGE maps", _kge_maps_figure(grid_shape, result, extent)),
        ("Learned storage capacity", table_html(sc_table)),
        ("Distribution of sc", _sc_distribution_figure(result)),
    ]
    if labels is not None:
        lab = labels[result.rows, result.cols]
        ok = np.isfinite(lab)
        if ok.sum() >= 2:
            from cwsc.ml.metrics import regression_metrics

            sections += [
                (
                    "Against the labels (calibrate)",
                    table_html({k: v for k, v in regression_metrics(lab[ok], result.cwsc[ok]).items()}),
                ),
                (
                    "Labels vs learned map",
                    scatter_figure(lab[ok], result.cwsc[ok], "Learned CWSC against the labels"),
                ),
            ]
        else:
            sections.append(("Against the labels", "<p>No labelled cell among the learning cells.</p>"))
    return write_html(
        path, "CWSC learned from runoff (physics-guided)", sections, subtitle=", ".join(result.head.models)
    )
