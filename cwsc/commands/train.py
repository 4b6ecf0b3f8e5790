"""``python -m cwsc train``: predictors and labels in, a model file and a report out."""

from __future__ import annotations

import time

from cwsc.commands.options import parse_widths
from cwsc.io import rasters as io
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs


def train_command(args) -> None:
    inputs = {"PREDICTORS": list(args.predictors), "LABELS": args.labels, "KGE": args.kge}
    outputs = Outputs(
        {"OUTPUT_MODEL": args.out_model, "OUTPUT_REPORT": args.out_report},
        kinds={"OUTPUT_MODEL": "model", "OUTPUT_REPORT": "report"},
        inputs=inputs,
    )
    with outputs:
        metrics = _train(args, outputs)
    protocol.result(outputs={k: str(v) for k, v in outputs.paths().items()}, metrics=metrics)


def _train(args, outputs: Outputs) -> dict:
    import numpy as np

    from cwsc.machine.devices import resolve_device
    from cwsc.machine.versions import software_versions
    from cwsc.ml import patches as P
    from cwsc.ml.baseline import fit_best_baseline
    from cwsc.ml.modelfile import ModelBundle, grid_summary, save_model
    from cwsc.ml.position import position_channels, use_position
    from cwsc.ml.training import TrainConfig, average_with_trees, recipe_dict, train_from_arrays
    from cwsc.reports.html import baseline_sentence, training_report

    t0 = time.perf_counter()
    # Fail before any work: outputs writable (Outputs), device present, settings sane.
    config = TrainConfig(
        recipe=args.recipe,
        patch_size=args.patch_size,
        test_fraction=args.test_fraction,
        split=args.split,
        block_size=args.block_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        blocks=args.blocks,
        widths=parse_widths(args.widths),
        ensemble=args.ensemble,
        seed=args.seed,
        device=args.device,
    )
    recipe = config.resolved_recipe()
    device = resolve_device(args.device)
    if args.patch_size < 1 or args.patch_size % 2 == 0:
        P.check_patch_size(args.patch_size, (10**9, 10**9))

    protocol.progress(0.0, "reading predictors and labels")
    labels, grid = P.read_single_band(args.labels, "LABELS")
    if args.extent:
        window = io.cut_grid(grid, io.parse_extent(args.extent, grid))
        a, _, c, _, e, f = grid.transform
        r0, c0 = round((window.transform[5] - f) / e), round((window.transform[2] - c) / a)
        labels, grid = labels[r0 : r0 + window.height, c0 : c0 + window.width], window
    P.check_patch_size(args.patch_size, grid.shape)
    kge = P.read_single_band(args.kge, "KGE", grid)[0] if args.kge else None
    stack = P.read_predictors(args.predictors, grid)
    protocol.log(
        f"{len(stack.names)} predictor channels ({', '.join(stack.names)}) on "
        f"{grid.describe()}; device {device}"
    )

    cells = len(P.select_samples(stack.data, labels, kge, args.kge_threshold).labels)
    position, why = use_position(args.position, cells, grid)
    if args.position and not position:
        protocol.warning(
            "LABELS: the grid has no CRS, so the cells cannot be placed on the Earth: the network "
            "is trained without position channels"
        )
    else:
        protocol.log(f"position channels (latitude and longitude): {why}")
    inputs = np.concatenate([stack.data, position_channels(grid)]) if position else stack.data

    def on_epoch(member: int, rec: dict, fraction: float) -> None:
        protocol.progress(
            0.05 + 0.85 * fraction,
            "training",
            member=member + 1,
            epoch=rec["epoch"],
            train_loss=rec["train_loss"],
            val_loss=rec["val_loss"],
            val_r2=rec["val_r2"],
            **({"stopped_early": True} if rec.get("stopped_early") else {}),
        )

    result = train_from_arrays(inputs, labels, kge, config, args.kge_threshold, on_epoch)
    del inputs
    recipe = result.recipe  # its batch (and rate) grown with many training cells
    s = result.sizes
    protocol.log(
        f"samples: {s['train_samples']} train, {s['val_samples']} validation, "
        f"{s['test_samples']} test ({args.split} split); {s['skipped_cells']} labelled cells "
        f"skipped for nodata predictors; {s['masked_cells']} masked by KGE"
    )
    network_metrics = result.metrics

    def said(metrics: dict) -> str:
        return ", ".join(
            f"{k[5:]} {v:.4g}" for k, v in metrics.items() if isinstance(v, float) and np.isfinite(v)
        )

    protocol.log("test, the network: " + said(network_metrics))
    # The tree baselines on the network's own cells (after it: the network's results are
    # untouched by them). The shipped model averages the network with the one better on the
    # validation cells; the report compares it with the one better on the test cells.
    protocol.progress(0.9, "fitting the tree baselines")
    best = fit_best_baseline(stack.data, result.split, args.seed)
    baseline = best.result
    shipped = average_with_trees(result, best) if args.trees else None
    if args.trees and shipped is None:
        protocol.log(
            f"the {recipe.name} recipe holds no validation cells to choose the trees on: the "
            "model file holds the network alone"
        )
    m = shipped.metrics if shipped is not None else network_metrics
    if shipped is not None:
        protocol.log(
            f"the model averages the network with the {shipped.name} (better on the validation "
            f"cells: R2 {shipped.info['val_r2']:.4g}); test: " + said(m)
        )
    subject = "The network averaged with trees" if shipped is not None else "The network"
    line = baseline_sentence(m["test_r2"], baseline.test_r2, best.name, subject)
    trails = np.isfinite(m["test_r2"]) and np.isfinite(baseline.test_r2) and m["test_r2"] <= baseline.test_r2
    (protocol.warning if trails else protocol.log)(line)
    settings = {
        "recipe": recipe.name,
        "patch_size": args.patch_size,
        "split": args.split,
        "block_size": args.block_size,
        "test_fraction": args.test_fraction,
        "kge_threshold": args.kge_threshold if args.kge else None,
        "seed": args.seed,
        "ensemble": args.ensemble,
        ("epochs (max)" if recipe.patience else "epochs"): recipe.epochs,
        "batch_size": recipe.batch_size,
        "learning_rate": recipe.lr,
        "position channels": "latitude and longitude (sine, cosine)" if position else "none",
        "network": f"ResNet-{result.network.depth} widths {'/'.join(str(w) for w in result.network.widths)}",
        "averaged with": (
            f"{shipped.name} (weight {shipped.info['weight']:g})"
            if shipped is not None
            else "nothing: the network alone"
        ),
    }
    bundle = ModelBundle(
        members=result.members,
        network=result.network,
        scaling=result.scaling,
        channels=stack.names,
        patch_size=args.patch_size,
        grid=grid_summary(grid),
        recipe=recipe_dict(recipe),
        metrics={
            **m,
            "test_r2_network": network_metrics["test_r2"],
            "test_r2_baseline": baseline.test_r2,
            "baseline": best.name,
            **{f"test_r2 ({name})": r2 for name, r2 in best.test_r2.items()},
        },
        sizes=s,
        training={
            **settings,
            "histories": result.histories,
            "device": result.device,
            "seconds": result.seconds,
            # The range of the labels the model was fitted to (mm): predict bounds the map by it.
            "label_range": _label_range(result.split),
            # The held-out cells, for cwsc:evaluate's MODEL.
            "test_rows": [int(r) for r in result.test_rows],
            "test_cols": [int(c) for c in result.test_cols],
        },
        versions=software_versions(),
        channel_statistics=P.channel_statistics(stack.data),
        trees=shipped.trees if shipped is not None else None,
        trees_info=shipped.info if shipped is not None else {},
        position=position,
    )
    protocol.progress(0.92, "saving the model file and report")
    save_model(outputs.temporary("OUTPUT_MODEL"), bundle)
    if outputs.temporary("OUTPUT_REPORT"):
        a, _, c, _, e, f = grid.transform
        extent = (c, c + a * grid.width, f + e * grid.height, f)
        training_report(
            outputs.temporary("OUTPUT_REPORT"),
            result,
            grid.shape,
            stack.names,
            settings,
            extent,
            baseline_r2=baseline.test_r2,
            baseline_name=best.name,
            shipped=shipped,
        )
    protocol.progress(1.0, "finished")
    metrics = {
        **{k: m[k] for k in ("test_r2", "test_rmse", "test_mae", "test_bias", "test_kge")},
        "test_r2_network": network_metrics["test_r2"],
        "test_r2_baseline": baseline.test_r2,
        "train_samples": s["train_samples"],
        "val_samples": s["val_samples"],
        "test_samples": s["test_samples"],
        "skipped_cells": s["skipped_cells"],
        "masked_cells": s["masked_cells"],
        "epochs_run": result.epochs_run,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return metrics


def _label_range(split) -> list[float]:
    """The lowest and highest label (mm) of the training and validation cells of ``split``."""
    import numpy as np

    seen = split.samples.labels[np.concatenate([split.train, split.val])]
    return [float(seen.min()), float(seen.max())]
