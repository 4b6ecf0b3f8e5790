"""``python -m cwsc learn``: predictors and P, PET, Q in; a model learned from runoff and a
report out (physics-guided parameter learning, :mod:`cwsc.ml.physics`).

The forcing is read as ``calibrate`` reads it (units, calendars, periods: issue 7's readers,
on the runoff's grid), the predictors are aligned to that grid as ``train`` aligns them, and
the model file is the one ``predict`` and ``evaluate`` read, with the parameter head in its
metadata.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cwsc.errors import ParameterError
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs


def learn_command(args: argparse.Namespace) -> None:
    import rasterio

    from cwsc.commands.options import GDAL_CACHE_MB

    inputs = {
        "PREDICTORS": list(args.predictors),
        "PRECIPITATION": args.precip,
        "PET": args.pet,
        "RUNOFF": args.runoff,
        "LABELS": args.labels,
    }
    outputs = Outputs(
        {"OUTPUT_MODEL": args.out_model, "OUTPUT_REPORT": args.out_report},
        kinds={"OUTPUT_MODEL": "model", "OUTPUT_REPORT": "report"},
        inputs=inputs,
    )
    with outputs, rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        metrics = _learn(args, outputs)
    protocol.result(outputs={k: str(v) for k, v in outputs.paths().items()}, metrics=metrics)


def learn_config(args: argparse.Namespace):
    """The :class:`~cwsc.ml.physics.LearnConfig` of the command line, checked."""
    from cwsc.commands.options import kge_margin, parse_widths
    from cwsc.hydro.options import parse_models
    from cwsc.ml.physics import LearnConfig

    config = LearnConfig(
        models=tuple(parse_models(args.models)),
        patch_size=args.patch_size,
        test_fraction=args.test_fraction,
        split=args.split,
        block_size=args.block_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=int(args.seed),
        device=args.device,
        formulation=args.formulation,
        objective=args.objective,
        warmup_months=args.warmup_months,
        calibration_fraction=args.calibration_fraction,
        kge_margin=kge_margin(args),
        model_loss=args.model_loss,
        checkpoint_months=args.checkpoint_months,
        shared_sc=args.shared_sc,
        pretrain_epochs=args.pretrain_epochs,
    )
    if args.widths:
        config.widths = parse_widths(args.widths)
    if args.blocks:
        config.blocks = int(args.blocks)
    config.resolved()
    if not 0.0 < config.calibration_fraction <= 1.0:
        raise ParameterError(f"CALIBRATION_FRACTION: {config.calibration_fraction:g} must be in (0, 1]")
    return config


def read_forcing(args: argparse.Namespace):
    """P, PET and Q ``(months, rows, cols)`` float32 mm/month on the runoff's grid (NaN =
    nodata), that grid, and the alignment (first month, months). With ``--temperature`` P is
    the rain and snowmelt of the snow store (:mod:`cwsc.hydro.snow`)."""
    from cwsc.commands.options import forcing_options
    from cwsc.io.gate import forcing_strips, open_forcing

    temperature = getattr(args, "temperature", None)
    rasters, alignment = open_forcing(
        args.precip, args.pet, args.runoff, forcing_options(args), temperature=temperature
    )
    try:
        grid, months = rasters[0].grid, rasters[0].count
        strips = forcing_strips(grid, months)
        arrays = [
            np.concatenate([r.read(rows) for rows in strips], axis=1).astype(np.float32) for r in rasters
        ]
    finally:
        for r in rasters:
            r.close()
    if temperature:
        from cwsc.hydro.snow import liquid_water

        arrays = [liquid_water(arrays[0], arrays[3], axis=0), *arrays[1:3]]
        protocol.log("temperature given: the models receive rain and snowmelt from a snow store")
    return arrays, grid, alignment


def progress_bounds(seconds: dict[str, float], start: float = 0.05, end: float = 0.9) -> dict:
    """Each stage's (first, last) progress fraction: the bar from ``start`` to ``end`` shared
    out in proportion to the stages' estimated ``seconds`` (calibration, pretraining,
    learning, in that order; see :func:`cwsc.ml.physics.learning.stage_seconds`)."""
    order = ("calibration", "pretraining", "learning")
    total = sum(max(seconds.get(k, 0.0), 0.0) for k in order)
    out, at = {}, start
    for k in order:
        share = (end - start) * (
            max(seconds.get(k, 0.0), 0.0) / total if total > 0 else float(k == "learning")
        )
        out[k] = (at, at + share)
        at += share
    return out


def _learn(args: argparse.Namespace, outputs: Outputs) -> dict:
    from cwsc.machine.devices import resolve_device
    from cwsc.machine.versions import software_versions
    from cwsc.ml import patches as P
    from cwsc.ml.modelfile import ModelBundle, grid_summary, save_model
    from cwsc.ml.physics import CELL_COUNTS, learn_from_arrays
    from cwsc.reports.html import learning_report

    t0 = time.perf_counter()
    config = learn_config(args)  # fail before reading anything
    device = resolve_device(args.device)
    protocol.progress(0.0, "reading the forcing and the predictors")
    (precip, pet, runoff), grid, alignment = read_forcing(args)
    from cwsc.hydro.balance import warn_if_unbalanced

    warn_if_unbalanced(precip, pet, runoff, axis=0)
    P.check_patch_size(config.patch_size, grid.shape)
    stack = P.read_predictors(args.predictors, grid)
    labels = P.read_single_band(args.labels, "LABELS", grid)[0] if args.labels else None
    months = precip.shape[0]
    protocol.log(
        f"{len(stack.names)} predictor channels on {grid.describe()}; {months} months; "
        f"models {', '.join(config.models)}; device {device}"
    )

    # The bar from 0.05 to 0.9 is shared out between the stages in proportion to their
    # estimated seconds (stage_seconds: unit costs measured on the demo region), so that it
    # moves evenly; fixed shares sat at 17-23 % through a pretraining of 40 % of the time.
    bounds = {"calibration": (0.05, 0.05), "pretraining": (0.05, 0.05), "learning": (0.05, 0.9)}

    def on_plan(seconds: dict[str, float]) -> None:
        bounds.update(progress_bounds(seconds))

    def at(stage: str, fraction: float) -> float:
        lo, hi = bounds[stage]
        return lo + (hi - lo) * min(max(fraction, 0.0), 1.0)

    def on_calibration(fraction: float) -> None:
        protocol.progress(at("calibration", fraction), "pretraining: calibrating the training cells")

    def on_pretrain(epoch: int, epochs: int) -> None:
        protocol.progress(at("pretraining", epoch / epochs), f"pretraining: epoch {epoch:,} of {epochs:,}")

    def on_epoch(rec: dict, fraction: float) -> None:
        protocol.progress(
            at("learning", fraction),
            "learning",
            epoch=rec["epoch"],
            train_loss=rec["train_loss"],
            val_loss=rec["val_loss"],
            val_kge=rec["val_kge"],
        )

    result = learn_from_arrays(
        stack.data,
        precip,
        pet,
        runoff,
        config,
        on_epoch,
        on_calibration=on_calibration,
        on_pretrain=on_pretrain,
        on_plan=on_plan,
    )
    m = result.metrics
    protocol.log(
        f"cells: {m['train_cells']} training, {m['val_cells']} validation, "
        f"{m['test_cells']} held out ({config.split} split); {m['skipped_cells']} with "
        f"runoff skipped for nodata predictors; {m['cells_without_runoff']} with forcing "
        f"but too little runoff; {m['cells_runoff_above_precipitation']} left out for "
        "more runoff than precipitation over the calibration months (no water balance "
        "makes that)"
    )
    if config.pretraining():
        protocol.log(
            f"pretrained on the calibration of {m['pretrained_cells']} of the "
            f"{m['train_cells']} training cells (the others' best KGE is 0 or less)"
        )
    protocol.log(
        f"median KGE: calibration months of training cells {m['cal_kge_train_cells']:.3f}, "
        f"validation months of held-out cells {m['val_kge_test_cells']:.3f}"
    )
    w, c = config.periods(months)
    from cwsc.io import months as M

    dated = alignment.months
    settings = {
        "models": list(config.models),
        "formulation": config.formulation,
        "objective": config.objective,
        "model loss": config.model_loss,
        "patch_size": config.patch_size,
        "split": config.split,
        "test_fraction": config.test_fraction,
        "seed": config.seed,
        "epochs (max)": config.resolved()[0],
        # A batch larger than the training cells takes them all: the report says what ran.
        "batch_size": min(config.resolved()[1], int(m["train_cells"])),
        "warm-up months": w,
        "calibration months": f"{w + 1}-{c}",
        "validation months": f"{c + 1}-{months}" if c < months else "none",
        **({"period": M.period(dated), "calibration ends": M.label(dated[c - 1])} if dated else {}),
        "kge_margin": config.kge_margin,
        "sc scale": config.sc_scale,
        "per-cell corrections": config.cell_corrections,
        "one sc for every model": config.shared_sc,
        "pretraining": (
            f"{config.pretraining()} epochs on a per-cell calibration of "
            "the training cells (SCE-UA, one restart)"
            if config.pretraining()
            else "none"
        ),
        "network": f"ResNet-{6 * config.blocks + 2} widths {'/'.join(str(w) for w in config.widths)}",
    }
    test = result.part == 2
    bundle = ModelBundle(
        members=[result.state],
        network=result.network,
        scaling=result.scaling,
        channels=stack.names,
        patch_size=config.patch_size,
        grid=grid_summary(grid),
        recipe={"name": "physics", "epochs": config.resolved()[0], "batch_size": settings["batch_size"]},
        metrics=m,
        sizes={k: m[k] for k in CELL_COUNTS},
        training={
            **settings,
            "histories": [result.history],
            "device": result.device,
            "seconds": result.seconds,
            # The held-out cells, for cwsc:evaluate's MODEL.
            "test_rows": [int(r) for r in result.rows[test]],
            "test_cols": [int(c) for c in result.cols[test]],
        },
        versions=software_versions(),
        channel_statistics=P.channel_statistics(stack.data),
        physics={
            "head": result.head.to_dict(),
            "kge_margin": config.kge_margin,
            "kge_threshold": 0.0,
            "formulation": config.formulation,
            "objective": config.objective,
        },
    )
    protocol.progress(0.92, "saving the model file and report")
    save_model(outputs.temporary("OUTPUT_MODEL"), bundle)
    if outputs.temporary("OUTPUT_REPORT"):
        a, _, cx, _, e, f = grid.transform
        extent = (cx, cx + a * grid.width, f + e * grid.height, f)
        learning_report(outputs.temporary("OUTPUT_REPORT"), result, grid.shape, settings, extent, labels)
    protocol.progress(1.0, "finished")
    return (
        {
            k: m[k]
            for k in (
                "val_kge_test_cells",
                "cal_kge_train_cells",
                "cal_kge_test_cells",
                "val_kge_train_cells",
            )
        }
        | {k: m[k] for k in CELL_COUNTS}
        | {"epochs_run": m["epochs_run"], "seconds": round(time.perf_counter() - t0, 3)}
    )
