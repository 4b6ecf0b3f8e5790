"""``python -m cwsc evaluate``: a CWSC map against a reference and against free calibration."""

from __future__ import annotations

import time

import numpy as np

from cwsc.commands.options import forcing_options
from cwsc.errors import GridMismatch, InputFileError, ParameterError
from cwsc.evaluation.maps import (
    agreement,
    aridity_groups,
    breakdown,
    flag_groups,
    median,
    simulation_check,
    spearman,
)
from cwsc.hydro.options import parse_models
from cwsc.io import gate
from cwsc.io import rasters as io
from cwsc.io.gate import read_forcing
from cwsc.machine.devices import resolve_device
from cwsc.reports import html as report
from cwsc.reports.evaluation import distribution_figure, maps_figure, scatter_figure
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs


def evaluate_command(args) -> None:
    outputs = Outputs(
        {"OUTPUT_REPORT": args.out_report},
        kinds={"OUTPUT_REPORT": "report"},
        inputs={
            "CWSC": args.cwsc,
            "REFERENCE": args.reference,
            "PRECIPITATION": args.precip,
            "PET": args.pet,
            "RUNOFF": args.runoff,
        },
    )
    with outputs:
        metrics = _evaluate(args, outputs)
    protocol.result(outputs={"OUTPUT_REPORT": str(args.out_report)}, metrics=metrics)


def _in_mm(values, units: str, where: str):
    from cwsc.io.units import depth_in_mm

    values, notes, warnings = depth_in_mm(values, units, where)
    for line in notes:
        protocol.log(line)
    for line in warnings:
        protocol.warning(line)
    return values


def _evaluate(args, outputs: Outputs) -> dict:
    t0 = time.perf_counter()
    forcing = [args.precip, args.pet, args.runoff]
    if any(forcing) and not all(forcing):
        raise ParameterError(
            "PRECIPITATION, PET and RUNOFF: give all three for the simulation check, or none"
        )
    if not args.reference and not all(forcing):
        raise ParameterError(
            "REFERENCE: give a reference map, or PRECIPITATION, PET and RUNOFF, "
            "or both: there is nothing to evaluate the CWSC map against"
        )
    models = parse_models(args.models)
    with gate.open_input(args.cwsc, "CWSC") as r:
        grid = r.grid
        cwsc = r.read(bands=[0])[0]
        cwsc_units = r.units
    if not np.isfinite(cwsc).any():
        raise InputFileError(f"CWSC: '{args.cwsc}' holds nodata only")
    cwsc = _in_mm(cwsc, cwsc_units, f"CWSC: '{args.cwsc}'")
    gate.check_values(cwsc, "CWSC", f"CWSC: '{args.cwsc}'", cwsc_units)
    protocol.progress(0.05, "evaluating the map")
    sections: list = [
        (
            "Inputs",
            {
                "CWSC map": args.cwsc,
                "reference": args.reference or "-",
                "forcing": ", ".join(forcing) if all(forcing) else "-",
                "grid": grid.describe(),
            },
        )
    ]
    metrics: dict = {"cwsc_cells": int(np.isfinite(cwsc).sum()), "cwsc_median_mm": median(cwsc)}
    if args.reference:
        with gate.open_input(args.reference, "REFERENCE") as ref:
            io.warn_if_resampled(ref, grid, "bilinear")
            reference = io.read_aligned(ref, grid)[0]
            reference_units = ref.units
        reference = _in_mm(reference, reference_units, f"REFERENCE: '{args.reference}'")
        gate.check_values(reference, "REFERENCE", f"REFERENCE: '{args.reference}'", reference_units)
        stats = agreement(cwsc, reference)
        stats["spearman"] = spearman(cwsc, reference)
        flat_map = np.where(np.isfinite(cwsc), float(np.nanmedian(cwsc)), np.nan)
        null = agreement(flat_map, reference)
        metrics.update(
            {
                "r2_reference": stats["r2"],
                "r_reference": stats["pearson_r"],
                "spearman_reference": stats["spearman"],
                "rmse_reference": stats["rmse"],
                "bias_reference": stats["bias"],
                "cells_reference": stats["cells"],
                "r2_reference_constant": null["r2"],
                "rmse_reference_constant": null["rmse"],
            }
        )
        sections += [
            (
                "Agreement with the reference",
                [
                    {
                        "map": name,
                        "cells compared": st["cells"],
                        "R2": st["r2"],
                        "Pearson r": st["pearson_r"],
                        "Spearman": sp,
                        "RMSE (mm)": st["rmse"],
                        "MAE (mm)": st["mae"],
                        "bias, map - reference (mm)": st["bias"],
                    }
                    for name, st, sp in (
                        ("CWSC map", stats, stats["spearman"]),
                        ("constant map (its median)", null, float("nan")),
                    )
                ],
            ),
            ("Maps", maps_figure(cwsc, reference)),
            ("Scatter", scatter_figure(cwsc, reference, stats)),
        ]
        protocol.log(
            f"agreement with the reference over {stats['cells']} cells: "
            f"R2 {stats['r2']:.3f}, RMSE {stats['rmse']:.1f} mm"
        )
        protocol.progress(0.2, "evaluating the map")
    if args.details:
        check = _range_check(cwsc, args.details, grid, models, args.labels)
        metrics.update(
            {k: check[k] for k in ("share_in_range_map", "share_in_range_constant", "spearman_map_labels")}
        )
        metrics["cells_with_range"] = check["places"]
        sections.append(
            (
                "Is the map inside the identifiable range of sc?",
                f"<p>Over the {check['places']:,} cells whose calibration details give the label's "
                "identifiable range of sc (the union of the ranges of the models entering the label): the map "
                f"lies inside it at {_pct(check['share_in_range_map'])} of them, a constant map "
                f"({check['constant_mm']:.0f} mm, the map's median there) at {_pct(check['share_in_range_constant'])}; "
                f"the rank correlation (Spearman) of the map with the labels is {check['spearman_map_labels']:.2f}. "
                "The validation KGE with sc fixed cannot tell a right map from a plausible constant one (the other "
                "parameters, re-calibrated, absorb most of a wrong sc); these can: a right map lies inside "
                "far more ranges than the constant and ranks like the labels.</p>",
            )
        )
        protocol.log(
            f"the map lies inside the identifiable range of sc at {_pct(check['share_in_range_map'])} of "
            f"{check['places']:,} cells, a constant map at {_pct(check['share_in_range_constant'])}; Spearman "
            f"with the labels {check['spearman_map_labels']:.2f}"
        )
    if all(forcing):
        precip, pet, runoff, fgrid, _, temperature = read_forcing(
            args.precip, args.pet, args.runoff, forcing_options(args), getattr(args, "temperature", None)
        )
        from cwsc.hydro.balance import warn_if_unbalanced

        warn_if_unbalanced(precip, pet, runoff, axis=0)
        if temperature is not None:
            from cwsc.hydro.snow import liquid_water

            precip = liquid_water(precip, temperature, axis=0)
            protocol.log("temperature given: the models receive rain and snowmelt from a snow store")
        if not fgrid.same_as(grid):
            raise GridMismatch(
                f"CWSC: '{args.cwsc}' is on a different grid ({grid.describe()}) "
                f"from the forcing ({fgrid.describe()})"
            )
        device = resolve_device(args.device)
        label_kge = _details_kge(args.details, grid, models) if args.details else None
        candidates, where = None, "all cells with a CWSC value and runoff"
        if args.model:
            candidates = _test_cells(args.model, grid)
            where = f"the network's {candidates.size} held-out test cells"
        check = simulation_check(
            cwsc,
            precip,
            pet,
            runoff,
            models,
            args.restarts,
            args.seed,
            device,
            args.max_cells,
            args.max_evaluations,
            label_kge,
            candidates,
            args.formulation,
        )
        scores, n = check["scores"], len(check["cells"])
        metrics.update(
            {
                "kge_val_fixed": median(scores["fixed"]),
                "kge_val_constant": median(scores["constant"]),
                "kge_val_free": median(scores["free"]),
                "cells_scored": n,
                "constant_map_mm": check["constant_mm"],
                "failed_runs": check["failed"],
            }
        )
        metrics["median_kge_fixed"] = metrics["kge_val_fixed"]  # the names of release 1
        metrics["median_kge_free"] = metrics["kge_val_free"]
        for m in models:
            for v in ("fixed", "constant", "free"):
                metrics[f"kge_val_{v}_{m.lower()}"] = median(check["per_model"][v][m])
        chosen = check["label_models"]
        rows = [
            {
                "model": m,
                "cells where it makes the label": int(chosen[i].sum()),
                # at the cells of its label; the results' KGE_VAL_FIXED_<MODEL> is over all
                # cells scored: two numbers, two names
                "median validation KGE at those cells, map": median(
                    check["per_model"]["fixed"][m][chosen[i]]
                ),
                "constant map": median(check["per_model"]["constant"][m][chosen[i]]),
                "free": median(check["per_model"]["free"][m][chosen[i]]),
                "median over all cells scored, map (KGE_VAL_FIXED_<model>)": median(
                    check["per_model"]["fixed"][m]
                ),
            }
            for i, m in enumerate(models)
        ]
        groups = [
            ("By aridity (PET / P over the record)", breakdown(scores, aridity_groups(check["aridity"])))
        ]
        if args.labels:
            flags = _label_flags(args.labels, grid)
            if flags is not None:
                groups.append(
                    (
                        "By quality flag of the label",
                        breakdown(scores, flag_groups(flags.ravel()[check["cells"]])),
                    )
                )
        verdict = metrics["kge_val_fixed"] - metrics["kge_val_constant"]
        sections += [
            (
                "Simulation efficiency on the validation months",
                [
                    f"<p>{n} cells sampled (seed {args.seed}) from {where}. Every model is calibrated "
                    f"on the calibration months with CWSC fixed to the map, fixed to a constant map "
                    f"({check['constant_mm']:.0f} mm, the map's median: the null model) and free; each "
                    f"cell is scored on the validation months in the model(s) that make its label "
                    f"({'from the calibration details' if label_kge is not None else 'by free calibration'}). Median "
                    f"validation KGE: map {metrics['kge_val_fixed']:.3f}, constant map "
                    f"{metrics['kge_val_constant']:.3f} ({verdict:+.3f} for the map), free "
                    f"{metrics['kge_val_free']:.3f}. Runs that failed score as the worst score "
                    f"({check['worst']:.3f}): "
                    + ", ".join(f"{_VARIANT_WORDS.get(k, k)} {v:,} cells" for k, v in check["failed"].items())
                    + ".</p>",
                    rows,
                    distribution_figure(scores),
                ],
            )
        ]
        sections += [(title, table) for title, table in groups]
        protocol.log(
            f"median validation KGE over {n} cells: map {metrics['kge_val_fixed']:.3f}, "
            f"constant map {metrics['kge_val_constant']:.3f}, free "
            f"{metrics['kge_val_free']:.3f}"
        )
    protocol.progress(0.95, "evaluating the map")
    report.write_html(
        outputs.temporary("OUTPUT_REPORT"), "CWSC map evaluation", sections, subtitle=str(args.cwsc)
    )
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    protocol.progress(1.0, "evaluating the map")
    return metrics


#: The simulation check's variants in words.
_VARIANT_WORDS = {"fixed": "with the map", "constant": "with the constant map", "free": "free"}


def _pct(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{100 * x:.0f} %"


def _range_check(cwsc: np.ndarray, path: str, grid, models, labels_path: str | None = None) -> dict:
    """The map against each cell's label and its identifiable range of sc from calibrate's
    OUTPUT_DETAILS (the union of the ranges of the models within the margin of the cell's
    best), the label from ``labels_path`` (band 1 of calibrate's labels) or else the label rule
    over the details' sc and KGE: :func:`cwsc.evaluation.maps.range_check` per cell."""
    from cwsc.evaluation.maps import range_check
    from cwsc.hydro.labels import label_rule
    from cwsc.hydro.options import DEFAULT_KGE_MARGIN

    kges = _details_kge(path, grid, models)
    with gate.open_input(path, "DETAILS") as r:
        names = list(r.descriptions)
        bands = {}
        for m in models:
            for key, band in (
                ("sc", f"{m} sc (mm)"),
                ("low", f"{m} sc identifiable low (mm)"),
                ("high", f"{m} sc identifiable high (mm)"),
            ):
                if band not in names:
                    raise InputFileError(
                        f"DETAILS: '{path}' has no band '{band}' (give the details raster of Calibrate, "
                        "with the same MODELS)"
                    )
                bands[m, key] = r.read(bands=[names.index(band)])[0].ravel().astype(np.float64)
    k = np.stack([kges[m].ravel().astype(np.float64) for m in models])
    sc = np.stack([bands[m, "sc"] for m in models])
    label, ok = label_rule(k, sc, 0.0, DEFAULT_KGE_MARGIN)
    lows = np.stack([np.where(np.isfinite(bands[m, "low"]), bands[m, "low"], bands[m, "sc"]) for m in models])
    highs = np.stack(
        [np.where(np.isfinite(bands[m, "high"]), bands[m, "high"], bands[m, "sc"]) for m in models]
    )
    with np.errstate(invalid="ignore"):
        low = np.where(ok.any(0), np.where(ok, lows, np.inf).min(0), np.nan)
        high = np.where(ok.any(0), np.where(ok, highs, -np.inf).max(0), np.nan)
    if labels_path:
        with gate.open_input(labels_path, "LABELS") as r:
            if not r.grid.same_as(grid):
                raise GridMismatch(
                    f"LABELS: '{labels_path}' is on a different grid ({r.grid.describe()}) from the CWSC map "
                    f"({grid.describe()})"
                )
            label = r.read(bands=[0])[0].ravel().astype(np.float64)
    return range_check(cwsc.ravel(), label, low, high)


def _details_kge(path: str, grid, models) -> dict:
    """Model -> (rows, cols) calibration KGE from calibrate's OUTPUT_DETAILS."""
    with gate.open_input(path, "DETAILS") as r:
        if not r.grid.same_as(grid):
            raise GridMismatch(
                f"DETAILS: '{path}' is on a different grid "
                f"({r.grid.describe()}) from the CWSC map ({grid.describe()})"
            )
        names = list(r.descriptions)
        out = {}
        for m in models:
            band = f"{m} KGE calibration"
            if band not in names:
                raise InputFileError(
                    f"DETAILS: '{path}' has no band '{band}' (give the "
                    f"details raster of Calibrate, with the same MODELS)"
                )
            out[m] = r.read(bands=[names.index(band)])[0]
    return out


def _label_flags(path: str, grid):
    """The quality flags band of calibrate's labels, or None when it has none."""
    from cwsc.commands.options import flags_band

    with gate.open_input(path, "LABELS") as r:
        if not r.grid.same_as(grid):
            raise GridMismatch(
                f"LABELS: '{path}' is on a different grid "
                f"({r.grid.describe()}) from the CWSC map ({grid.describe()})"
            )
        band = flags_band(list(r.descriptions))
        if band is None:
            protocol.warning(f"LABELS: '{path}' has no quality flags band; no breakdown by flag")
            return None
        return r.read(bands=[band])[0]


def _test_cells(path: str, grid) -> np.ndarray:
    """Flat indices of the network's held-out test cells, from its model file."""
    from cwsc.ml.modelfile import load_model

    bundle = load_model(path)
    rows, cols = bundle.training.get("test_rows"), bundle.training.get("test_cols")
    if not rows:
        raise InputFileError(
            f"MODEL: '{path}' does not list its test cells (trained by an "
            f"earlier release, or without a test split); leave MODEL empty"
        )
    size = (int(bundle.grid.get("height", -1)), int(bundle.grid.get("width", -1)))
    if size != (grid.height, grid.width):
        raise GridMismatch(
            f"MODEL: '{path}' was trained on a {size[1]} x {size[0]} grid, "
            f"the CWSC map is {grid.width} x {grid.height}"
        )
    return np.asarray(rows, np.int64) * grid.width + np.asarray(cols, np.int64)
