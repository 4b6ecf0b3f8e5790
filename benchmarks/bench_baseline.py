"""The network against the tree baseline on spatial-block splits (docs/research-notes.md,
"Network against a tree baseline").

    python benchmarks/bench_baseline.py DATASET SEEDS VARIANT [VARIANT ...]

DATASET: ``demo`` (the demo region's masked labels and predictors in ``demo-output/``, from
``make demo``) or ``twin`` (``make_twin((60, 60), 13 channels, seed 0)``). SEEDS: comma
separated; each seed draws the split and the network's initialisation. VARIANTs: ``tree``
(the baseline of ``cwsc.ml.baseline``), ``tree-cell`` (the same trees on the cell's own
predictors only), ``default`` (the default recipe), ``patch5`` / ``patch15`` (patch size),
``epochs80``, ``noaug`` (no rotations/flips), ``wide`` (widths 32,64,128), ``deep``
(3 blocks per stage), ``log`` (trained on log labels, scored in mm). Split: blocks of
10 x 10 cells, 30 % held out (as in the issue's real case). One JSON line per run on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from cwsc.machine.devices import prepare_process

prepare_process()  # before torch loads

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 10
NETWORK = {
    "default": {},
    "patch5": {"patch_size": 5},
    "patch15": {"patch_size": 15},
    "epochs80": {"epochs": 80},
    "noaug": {"recipe": "noaug"},
    "wide": {"widths": (32, 64, 128)},
    "deep": {"blocks": 3},
    "log": {},
}


def load(name: str):
    if name == "twin":
        from cwsc.synthetic.twin import make_twin

        t = make_twin((60, 60), channels=13, seed=0)
        return t.predictors, t.labels, t.kge
    from cwsc.ml import patches as P

    labels, grid = P.read_single_band(str(ROOT / "demo-output" / "cwsc_labels_masked.tif"), "LABELS")
    paths = sorted(str(p) for p in (ROOT / "demo-output" / "data" / "predictors").glob("*.tif"))
    return P.read_predictors(paths, grid).data, labels, None


def run(seed: int, variant: str, data) -> dict:
    from cwsc.ml import patches as P
    from cwsc.ml.baseline import fit_baseline
    from cwsc.ml.metrics import r2_score
    from cwsc.ml.training import RECIPES, TrainConfig, train_from_arrays

    predictors, labels, kge = data
    t0 = time.perf_counter()
    if variant.startswith("tree"):
        samples = P.select_samples(predictors, labels, kge)
        split = P.training_split(samples, 0.3, "blocks", BLOCK, seed, RECIPES["default"].val_fraction)
        res = fit_baseline(predictors, split, seed, sizes=() if variant == "tree-cell" else (3, 11))
        return {"test_r2": res.test_r2, "iterations": res.iterations, "seconds": time.perf_counter() - t0}
    RECIPES["noaug"] = replace(RECIPES["default"], name="noaug", augment=False)
    config = TrainConfig(
        **{"test_fraction": 0.3, "split": "blocks", "block_size": BLOCK, "seed": seed, "device": "cpu"},
        **NETWORK[variant],
    )
    y = np.log(labels) if variant == "log" else labels
    res = train_from_arrays(predictors, y, kge, config)
    r2 = r2_score(np.exp(res.test_obs), np.exp(res.test_pred)) if variant == "log" else res.metrics["test_r2"]
    base = fit_baseline(predictors, res.split, seed)  # the same cells (checks the tree runs)
    return {
        "test_r2": r2,
        "tree_same_split": base.test_r2,
        "epochs_run": res.epochs_run,
        "seconds": res.seconds,
    }


def main(argv: list[str]) -> None:
    dataset, seeds, variants = argv[0], [int(s) for s in argv[1].split(",")], argv[2:]
    data = load(dataset)
    for variant in variants:
        for seed in seeds:
            row = {"dataset": dataset, "variant": variant, "seed": seed, **run(seed, variant, data)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
