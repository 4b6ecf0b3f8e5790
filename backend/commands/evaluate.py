"""``python -m backend evaluate``: a CWSC map against a reference and against free calibration."""

from __future__ import annotations

import time

import numpy as np

from backend import io, protocol, report
from backend.devices import resolve_device
from backend.evaluation import (agreement, kge_cdf_figure, maps_figure, median, scatter_figure,
                                simulation_check)
from backend.commands.calibrate import forcing_options
from backend.hydro.forcing import read_forcing
from backend.hydro.options import parse_models
from backend.outputs import Outputs


def evaluate_command(args) -> None:
    outputs = Outputs({"OUTPUT_REPORT": args.out_report}, kinds={"OUTPUT_REPORT": "report"},
                      inputs={"CWSC": args.cwsc, "REFERENCE": args.reference,
                              "PRECIPITATION": args.precip, "PET": args.pet,
                              "RUNOFF": args.runoff})
    with outputs:
        metrics = _evaluate(args, outputs)
    protocol.result(outputs={"OUTPUT_REPORT": str(args.out_report)}, metrics=metrics)


def _evaluate(args, outputs: Outputs) -> dict:
    t0 = time.perf_counter()
    forcing = [args.precip, args.pet, args.runoff]
    if any(forcing) and not all(forcing):
        raise protocol.BadInput("PRECIPITATION, PET and RUNOFF: give all three for the simulation "
                                "check, or none")
    if not args.reference and not all(forcing):
        raise protocol.BadInput("REFERENCE: give a reference map, or PRECIPITATION, PET and RUNOFF, "
                                "or both: there is nothing to evaluate the CWSC map against")
    models = parse_models(args.models)
    with io.open_raster(args.cwsc, "CWSC") as r:
        grid = r.grid
        cwsc = r.read(bands=[0])[0]
    if not np.isfinite(cwsc).any():
        raise protocol.BadInput(f"CWSC: '{args.cwsc}' holds nodata only")
    protocol.progress(0.05, "evaluating the map")
    sections: list = [("Inputs", {"CWSC map": args.cwsc, "reference": args.reference or "-",
                                  "forcing": ", ".join(forcing) if all(forcing) else "-",
                                  "grid": grid.describe()})]
    metrics: dict = {"cwsc_cells": int(np.isfinite(cwsc).sum()),
                     "cwsc_median_mm": median(cwsc)}
    if args.reference:
        with io.open_raster(args.reference, "REFERENCE") as ref:
            io.warn_if_resampled(ref, grid, "bilinear")
            reference = io.read_aligned(ref, grid)[0]
        stats = agreement(cwsc, reference)
        metrics.update({"r2_reference": stats["r2"], "r_reference": stats["pearson_r"],
                        "rmse_reference": stats["rmse"], "bias_reference": stats["bias"],
                        "cells_reference": stats["cells"]})
        sections += [("Agreement with the reference", {
            "cells compared": stats["cells"], "R2": stats["r2"], "Pearson r": stats["pearson_r"],
            "RMSE (mm)": stats["rmse"], "MAE (mm)": stats["mae"], "bias, map - reference (mm)":
            stats["bias"], "KGE": stats["kge"]}),
            ("Maps", maps_figure(cwsc, reference)),
            ("Scatter", scatter_figure(cwsc, reference, stats))]
        protocol.log(f"agreement with the reference over {stats['cells']} cells: "
                     f"R2 {stats['r2']:.3f}, RMSE {stats['rmse']:.1f} mm")
        protocol.progress(0.2, "evaluating the map")
    if all(forcing):
        precip, pet, runoff, fgrid, _ = read_forcing(args.precip, args.pet, args.runoff,
                                                     forcing_options(args))
        if not fgrid.same_as(grid):
            raise protocol.BadInput(f"CWSC: '{args.cwsc}' is on a different grid ({grid.describe()}) "
                                    f"from the forcing ({fgrid.describe()})")
        device = resolve_device(args.device)
        kfree, kfixed, n, best_free, best_fixed = simulation_check(
            cwsc, precip, pet, runoff, models, args.restarts, args.seed, device, args.max_cells,
            args.max_evaluations)
        rows = []
        for m in models:
            rows.append({"model": m, "median KGE free": median(kfree[m]),
                         "median KGE, CWSC fixed": median(kfixed[m]),
                         "cells KGE > 0, free": int(np.nansum(kfree[m] > 0)),
                         "cells KGE > 0, CWSC fixed": int(np.nansum(kfixed[m] > 0))})
            metrics[f"median_kge_free_{m.lower()}"] = median(kfree[m])
            metrics[f"median_kge_fixed_{m.lower()}"] = median(kfixed[m])
        metrics.update({"median_kge_free": median(best_free), "median_kge_fixed": median(best_fixed),
                        "cells_simulated": n})
        sections += [("Simulation efficiency: free calibration vs CWSC fixed to the map",
                      [f"<p>{n} cells sampled (seed {args.seed}); per cell the best model's "
                       f"calibration KGE: median {metrics['median_kge_free']:.3f} free, "
                       f"{metrics['median_kge_fixed']:.3f} with CWSC fixed.</p>", rows,
                       kge_cdf_figure(kfree, kfixed)])]
        protocol.log(f"median KGE over {n} cells: free {metrics['median_kge_free']:.3f}, "
                     f"CWSC fixed {metrics['median_kge_fixed']:.3f}")
    protocol.progress(0.95, "evaluating the map")
    report.write_html(outputs.temporary("OUTPUT_REPORT"), "CWSC map evaluation", sections,
                      subtitle=str(args.cwsc))
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    protocol.progress(1.0, "evaluating the map")
    return metrics
