"""Training recipes for the CWSC ResNet: ``seed`` (the original) and ``default`` (ours).

``train_from_arrays`` is the whole step on arrays: split, scaling fitted on the training
split, patches, K ensemble members, and test metrics in mm. No file I/O here.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np
import torch
from torch import nn

from cwsc.errors import InputFileError, ParameterError
from cwsc.machine.devices import autocast, configure_threads
from cwsc.ml import patches as P
from cwsc.ml.metrics import r2_score, regression_metrics
from cwsc.ml.network import ResNetConfig, build_network
from cwsc.ml.options import RECIPE_BATCH_SIZE, RECIPE_EPOCHS


@dataclass(frozen=True)
class Recipe:
    """Everything a training recipe fixes. Epoch counts are maxima when ``patience`` is set;
    ``grow_batch``: with many training cells the batch grows (:func:`grown_recipe`)."""

    name: str
    optimizer: str  # "sgd" (Nesterov 0.9) or "adamw"
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    schedule: str  # "steps" (the seed's) or "onecycle"
    patience: int | None  # early stopping on the validation loss; None: run every epoch
    val_fraction: float  # share of the training split held for validation (0: none)
    scaling: str  # "standard" or "patch_minmax"
    sigmoid: bool
    augment: bool  # random rotations / flips of each batch (the patch has no preferred direction)
    blocks: int
    widths: tuple[int, int, int]
    grow_batch: bool = False


RECIPES: dict[str, Recipe] = {
    # The seed work: SGD Nesterov, batch 32, 150 epochs, LR 0.01 stepped down at 20/40/60/80 %
    # of the epochs, MSE on min-max labels through a sigmoid, per-patch min-max inputs,
    # ResNet-32 with 16/32/128 filters. Its validation curve is the test split (as the
    # Keras script's validation_data was); it never selects on it.
    "seed": Recipe(
        "seed",
        "sgd",
        0.01,
        0.0,
        RECIPE_BATCH_SIZE["seed"],
        RECIPE_EPOCHS["seed"],
        "steps",
        None,
        0.0,
        "patch_minmax",
        True,
        False,
        5,
        (16, 32, 128),
    ),
    # Ours (evidence in benchmarks/bench_train.py): per-channel standardisation, AdamW with a
    # one-cycle schedule, batch 64 (growing with many cells), rotation/flip augmentation, and
    # a ResNet-14 (16/32/64) that is as accurate on a few thousand samples and 3-4 times
    # faster on CPU than ResNet-32. Every epoch runs and the weights best on 15 % of the
    # training split are kept: stopping after 10 epochs without progress (until 0.2.0) often
    # stopped while the one-cycle rate was still high, before the annealing that gives the
    # best weights (on the real map 2 of 5 block splits, 0.013-0.016 test R2 lost;
    # docs/research-notes.md). Epochs and batch size: cwsc/ml/options.py.
    "default": Recipe(
        "default",
        "adamw",
        3e-3,
        1e-4,
        RECIPE_BATCH_SIZE["default"],
        RECIPE_EPOCHS["default"],
        "onecycle",
        None,
        0.15,
        "standard",
        False,
        True,
        2,
        (16, 32, 64),
        True,
    ),
}

SEED_LR_STEPS = (0.01, 0.003, 0.001, 0.0003, 0.0001)
#: A growing batch (``Recipe.grow_batch``) doubles while an epoch keeps at least this many
#: steps, up to :data:`MAX_GROWN_BATCH` cells.
MIN_STEPS_PER_EPOCH = 100
MAX_GROWN_BATCH = 256


def grown_recipe(recipe: Recipe, train_cells: int) -> Recipe:
    """The recipe with its batch doubled while ``train_cells`` still make
    :data:`MIN_STEPS_PER_EPOCH` steps an epoch (at most :data:`MAX_GROWN_BATCH`), the
    learning rate raised by the square root of the growth; the recipe unchanged without
    ``grow_batch``. A step costs about the same for 64 or 256 small patches on a CPU, so on
    tens of thousands of cells (the real map: 36,000) batches of 256 train in about half the
    time of 64 to the same or a better test R2 (docs/research-notes.md); on a few thousand
    cells (the demo region) the batch stays 64."""
    if not recipe.grow_batch:
        return recipe
    batch = recipe.batch_size
    while batch * 2 <= MAX_GROWN_BATCH and train_cells // (batch * 2) >= MIN_STEPS_PER_EPOCH:
        batch *= 2
    if batch == recipe.batch_size:
        return recipe
    return replace(recipe, batch_size=batch, lr=recipe.lr * math.sqrt(batch / recipe.batch_size))


@dataclass
class TrainConfig:
    """What the user chooses; ``None`` takes the recipe's value."""

    recipe: str = "default"
    # 5: on the real map, the twin and the demo region as good or better than 11 and faster
    # (docs/results.md, 'The network against the trees').
    patch_size: int = 5
    test_fraction: float = 0.3
    split: str = "random"
    block_size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    blocks: int | None = None
    widths: tuple[int, int, int] | None = None
    ensemble: int = 1
    seed: int = 0
    device: str = "auto"
    compile: bool | None = None  # torch.compile: None = on CUDA for long runs (see below)
    threads: int | None = None  # CPU threads: None = every core
    track_test: bool = False  # test R2 after every epoch (benchmarks: time to reach a score)

    def resolved_recipe(self) -> Recipe:
        if self.recipe not in RECIPES:
            raise ParameterError(f"RECIPE: unknown recipe '{self.recipe}' (use {', '.join(RECIPES)})")
        r = RECIPES[self.recipe]
        changes = {
            k: v
            for k, v in (
                ("epochs", self.epochs),
                ("batch_size", self.batch_size),
                ("blocks", self.blocks),
                ("widths", self.widths),
            )
            if v is not None
        }
        r = replace(r, **changes)
        if r.epochs < 1:
            raise ParameterError(f"EPOCHS: {r.epochs} must be at least 1")
        if r.batch_size < 2:
            raise ParameterError(f"BATCH_SIZE: {r.batch_size} must be at least 2 (batch normalisation)")
        if r.blocks < 1 or len(r.widths) != 3 or min(r.widths) < 1:
            raise ParameterError(
                f"network: blocks {r.blocks} and widths {r.widths} must be positive, three widths"
            )
        if self.ensemble < 1:
            raise ParameterError(f"ENSEMBLE: {self.ensemble} must be at least 1")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ParameterError(f"TEST_FRACTION: {self.test_fraction} must be in [0, 1)")
        return r


@dataclass
class TrainResult:
    """A trained ensemble and its evaluation (labels and predictions in mm)."""

    members: list[dict[str, torch.Tensor]]  # state dicts on the CPU
    network: ResNetConfig
    scaling: P.Scaling
    recipe: Recipe
    histories: list[list[dict]]  # per member, one record per epoch
    metrics: dict[str, float]  # test_r2, test_rmse, ...
    sizes: dict[str, int]  # train_samples, val_samples, test_samples, skipped_cells, masked_cells
    test_rows: np.ndarray
    test_cols: np.ndarray
    test_obs: np.ndarray
    test_pred: np.ndarray
    seconds: float
    device: str
    epochs_run: int = 0
    split: P.TrainingSplit | None = None  # the cells trained, validated and tested on


# ---------------------------------------------------------------------------------------


def to_device(x: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(x).to(device)
    return t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 else t


@torch.no_grad()
def predict_scaled(
    net: nn.Module,
    x: torch.Tensor | np.ndarray,
    device: torch.device,
    batch_size: int = 1024,
    fixed_batch: bool = False,
) -> np.ndarray:
    """Network outputs (scaled units) for patches ``(N, C+1, p, p)``, batch by batch.

    ``fixed_batch`` pads the last batch to full size so a compiled network never recompiles.
    """
    net.eval()
    n = x.shape[0]
    out = np.empty(n, np.float32)
    for i in range(0, n, batch_size):
        xb = x[i : i + batch_size]
        xb = to_device(xb, device) if isinstance(xb, np.ndarray) else xb
        m = xb.shape[0]
        if fixed_batch and m < batch_size:
            pad = xb.new_zeros((batch_size - m, *xb.shape[1:]))
            xb = torch.cat([xb, pad]).contiguous(memory_format=torch.channels_last)
        with autocast(device):
            y = net(xb)
        out[i : i + m] = y[:m].float().cpu().numpy()
    return out


def _optimizer(net: nn.Module, recipe: Recipe, steps: int):
    if recipe.optimizer == "sgd":
        opt = torch.optim.SGD(
            net.parameters(), lr=recipe.lr, momentum=0.9, nesterov=True, weight_decay=recipe.weight_decay
        )
        bounds = [int(round(f * recipe.epochs)) for f in (0.2, 0.4, 0.6, 0.8)]

        def lr_at(epoch: int) -> float:
            return SEED_LR_STEPS[sum(epoch >= b for b in bounds)]

        return opt, None, lr_at
    fused = next(net.parameters()).is_cuda  # one kernel per step instead of one per tensor
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, fused=fused)
    return opt, one_cycle_schedule(opt, recipe.lr, steps * recipe.epochs), None


def one_cycle_schedule(opt: torch.optim.Optimizer, max_lr: float, total_steps: int):
    """The one-cycle learning-rate schedule over ``total_steps`` optimiser steps: a quarter of
    them warming up (at least two steps; torch's OneCycleLR divides by the length of each
    phase), then the anneal. Under three steps there is no cycle to make: the rate stays at
    ``max_lr``."""
    if total_steps < 3:
        for group in opt.param_groups:
            group["lr"] = max_lr
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _step: 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=max_lr,
        total_steps=total_steps,
        pct_start=max(0.25, 2.0 / total_steps),
        div_factor=10.0,
        final_div_factor=100.0,
    )


def augment(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One of the 8 rotations/reflections of the square, drawn per batch (cheap, seeded)."""
    k = int(torch.randint(0, 8, (1,), generator=gen))
    if k & 4:
        xb = xb.flip(3)
    if k & 3:
        xb = torch.rot90(xb, k & 3, dims=(2, 3))
    return xb.contiguous(memory_format=torch.channels_last)


def fit_member(
    net: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    recipe: Recipe,
    device: torch.device,
    seed: int,
    x_val: torch.Tensor | None = None,
    y_val_mm: np.ndarray | None = None,
    scaling: P.Scaling | None = None,
    x_test: torch.Tensor | None = None,
    y_test_mm: np.ndarray | None = None,
    use_compile: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train ``net`` in place; returns one record per epoch.

    x_*: patches ``(N, C+1, p, p)`` on ``device``; y_train: scaled labels ``(N,)`` on
    ``device``; y_*_mm: labels in mm (NumPy). With ``recipe.patience`` the best weights on
    the validation loss are restored at the end. Records: epoch, seconds (training time
    so far, evaluation excluded), lr, train_loss, val_loss, val_r2 (and test_r2 when
    ``x_test`` is given).
    """
    gen = torch.Generator().manual_seed(seed)
    n = x_train.shape[0]
    bs = recipe.batch_size
    steps = n // bs  # drop the last partial batch: batch norm and compiled shapes stay steady
    opt, sched, lr_at = _optimizer(net, recipe, steps)
    model = torch.compile(net) if use_compile else net
    loss_fn = nn.MSELoss()
    history: list[dict] = []
    stopping = EarlyStopping(recipe.patience)
    train_seconds = 0.0
    for epoch in range(recipe.epochs):
        if lr_at is not None:
            for g in opt.param_groups:
                g["lr"] = lr_at(epoch)
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)
        for i in range(steps):
            idx = perm[i * bs : (i + 1) * bs]
            xb, yb = x_train[idx], y_train[idx]
            if recipe.augment:
                xb = augment(xb, gen)
            with autocast(device):
                out = model(xb)
            loss = loss_fn(out.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += loss.detach()
        train_loss = float(total) / max(steps, 1)
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - t0
        rec = {
            "epoch": epoch + 1,
            "seconds": train_seconds,
            "lr": opt.param_groups[0]["lr"],
            "train_loss": train_loss,
            "val_loss": None,
            "val_r2": None,
        }
        fixed = use_compile
        if x_val is not None and len(x_val):
            pv = predict_scaled(model, x_val, device, fixed_batch=fixed)
            yv = scaling.scale_labels(y_val_mm)
            rec["val_loss"] = float(((pv - yv) ** 2).mean())
            rec["val_r2"] = r2_score(y_val_mm, scaling.unscale_labels(pv))
        if x_test is not None and len(x_test):
            pt = predict_scaled(model, x_test, device, fixed_batch=fixed)
            rec["test_r2"] = r2_score(y_test_mm, scaling.unscale_labels(pt))
        history.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
        if recipe.patience is not None and stopping.should_stop(rec["val_loss"], net):
            break
    stopping.restore(net)
    return history


class EarlyStopping:
    """Keeps the weights of the best validation loss; says when ``patience`` epochs in a row
    have not beaten it. ``restore`` puts the best weights back (nothing when none was kept)."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.best, self.state, self.since = math.inf, None, 0

    def should_stop(self, val_loss: float | None, net: nn.Module) -> bool:
        if val_loss is None:
            return False
        if val_loss < self.best:
            self.best, self.since = val_loss, 0
            self.state = copy.deepcopy(net.state_dict())
            return False
        self.since += 1
        return self.patience is not None and self.since >= self.patience

    def restore(self, net: nn.Module) -> None:
        if self.state is not None:
            net.load_state_dict(self.state)


def train_from_arrays(
    predictors: np.ndarray,
    labels: np.ndarray,
    kge: np.ndarray | None,
    config: TrainConfig,
    kge_threshold: float = 0.0,
    on_epoch: Callable[[int, dict, float], None] | None = None,
    split: P.TrainingSplit | None = None,
) -> TrainResult:
    """Train on arrays: predictors ``(C, rows, cols)``, labels and kge ``(rows, cols)`` (mm, NaN nodata).

    ``on_epoch(member, record, fraction_done)`` is called after every epoch. ``split``, when
    given, is the cells to train, validate and test on (a benchmark's held-out region, or the
    same cells for several learners) instead of the one ``config`` draws; its samples must be
    cells of these arrays with valid predictors.
    """
    from cwsc.machine.devices import resolve_device

    t_start = time.perf_counter()
    recipe = config.resolved_recipe()
    device = resolve_device(config.device)
    configure_threads(device, config.threads)
    patch = config.patch_size
    P.check_patch_size(patch, labels.shape)
    samples = P.select_samples(predictors, labels, kge, kge_threshold) if split is None else split.samples
    n = len(samples.labels)
    if n == 0:
        raise InputFileError(
            "LABELS: no valid training sample: no cell has a label, a KGE above "
            f"{kge_threshold:g} and valid predictors ({samples.masked} masked by KGE, "
            f"{samples.skipped} skipped for nodata predictors)"
        )
    if split is None:
        split = P.training_split(
            samples, config.test_fraction, config.split, config.block_size, config.seed, recipe.val_fraction
        )
    train_idx, val_idx, test_idx = split.train, split.val, split.test
    if config.batch_size is None:
        recipe = grown_recipe(recipe, len(train_idx))
    if len(train_idx) < recipe.batch_size:
        raise InputFileError(
            f"LABELS: {len(train_idx)} training samples (of {n} valid cells, after the "
            f"test and validation parts) is fewer than one batch of {recipe.batch_size}; "
            + (
                "lower BATCH_SIZE or TEST_FRACTION, or provide more labelled cells"
                if recipe.batch_size > 2
                else "lower TEST_FRACTION, or provide more labelled cells"
            )
        )
    rows, cols, y = samples.rows, samples.cols, samples.labels
    scaling = P.fit_scaling(predictors, rows[train_idx], cols[train_idx], y[train_idx], recipe.scaling)
    padded = P.pad_block(predictors.copy(), scaling, patch // 2)

    x_tr, x_val, x_te = (
        to_device(P.extract_patches(padded, rows[idx], cols[idx], patch, scaling.kind), device)
        for idx in (train_idx, val_idx, test_idx)
    )
    del padded
    y_tr = torch.from_numpy(scaling.scale_labels(y[train_idx])).to(device)
    net_config = ResNetConfig(predictors.shape[0] + 1, recipe.blocks, tuple(recipe.widths), recipe.sigmoid)
    # torch.compile costs tens of seconds; on an H100 it lifted ResNet-32 training at batch
    # 1024 from 41k to 68k samples/s but lost at batch 4096 (248k vs 273k eager), so by
    # default it is used on CUDA only when the run has enough small steps to repay it.
    steps_total = (len(train_idx) // recipe.batch_size) * recipe.epochs * config.ensemble
    use_compile = (
        config.compile
        if config.compile is not None
        else device.type == "cuda" and recipe.batch_size <= 1024 and steps_total >= 20000
    )
    # The seed recipe watches the test split as its validation curve (never selects on it).
    monitor_x, monitor_y = (x_val, y[val_idx]) if len(val_idx) else (x_te, y[test_idx])

    members, histories, epochs_run = [], [], 0
    for k in range(config.ensemble):
        member_seed = config.seed + 1009 * k
        torch.manual_seed(member_seed)
        net = build_network(net_config).to(device).to(memory_format=torch.channels_last)

        def cb(rec: dict, k: int = k) -> None:
            if on_epoch is not None:
                on_epoch(k, rec, (k + rec["epoch"] / recipe.epochs) / config.ensemble)

        hist = fit_member(
            net,
            x_tr,
            y_tr,
            recipe,
            device,
            member_seed,
            monitor_x,
            monitor_y,
            scaling,
            x_te if config.track_test else None,
            y[test_idx],
            use_compile,
            cb,
        )
        if on_epoch is not None and len(hist) < recipe.epochs:  # stopped early: close the member
            on_epoch(k, {**hist[-1], "stopped_early": True}, (k + 1) / config.ensemble)
        histories.append(hist)
        epochs_run += len(hist)
        members.append({n_: t.detach().cpu().clone() for n_, t in net.state_dict().items()})
        last_net = net

    # Test predictions: the ensemble mean in mm.
    preds = []
    for state in members:
        last_net.load_state_dict(state)
        preds.append(scaling.unscale_labels(predict_scaled(last_net, x_te, device)))
    test_pred = np.mean(preds, axis=0) if len(test_idx) else np.zeros(0, np.float32)
    m = regression_metrics(y[test_idx], test_pred)
    metrics = {f"test_{k}": v for k, v in m.items()}
    sizes = {
        "train_samples": int(len(train_idx)),
        "val_samples": int(len(val_idx)),
        "test_samples": int(len(test_idx)),
        "skipped_cells": samples.skipped,
        "masked_cells": samples.masked,
    }
    return TrainResult(
        members,
        net_config,
        scaling,
        recipe,
        histories,
        metrics,
        sizes,
        rows[test_idx],
        cols[test_idx],
        y[test_idx],
        test_pred.astype(np.float32),
        time.perf_counter() - t_start,
        str(device),
        epochs_run,
        split,
    )


def recipe_dict(r: Recipe) -> dict:
    d = asdict(r)
    d["widths"] = list(r.widths)
    return d


@dataclass
class WithTrees:
    """The network averaged with the tree baseline chosen on the validation cells: what
    ``train`` ships by default (:func:`average_with_trees`)."""

    name: str  # a key of cwsc.ml.baseline.BASELINES
    trees: object  # cwsc.ml.trees.TreeEnsemble
    info: dict  # ModelBundle.trees_info
    test_pred: np.ndarray  # (N_test,) float32, mm: the averaged model's, on result's test cells
    metrics: dict[str, float]  # test_r2, test_rmse, ... of the averaged model


def average_with_trees(result: TrainResult, best, weight: float | None = None) -> WithTrees | None:
    """Average the network of ``result`` with the tree baseline of ``best`` (a
    :class:`cwsc.ml.baseline.BestBaseline` fitted on ``result.split``) that has the higher
    R2 on the validation cells, never chosen by the test: map = ``(1 - weight) * network +
    weight * trees`` (``weight``: :data:`cwsc.ml.trees.TREES_WEIGHT`, 0.5, the rule
    ``benchmarks/real_map.py`` scores as ``net+trees``). None without validation cells (the
    seed recipe holds none): nothing to choose the trees on, so the network ships alone."""
    from cwsc.ml.baseline import BASELINES
    from cwsc.ml.trees import TREES_WEIGHT, export_trees

    name = best.chosen_on_validation()
    if name is None:
        return None
    w = TREES_WEIGHT if weight is None else float(weight)
    fit = best.fits[name]
    # Equal weights as 0.5 * (a + b), the benchmark's arithmetic, to the last bit.
    if w == 0.5:
        pred = 0.5 * (result.test_pred + fit.test_pred)
    else:
        pred = (1.0 - w) * result.test_pred + w * fit.test_pred
    pred = pred.astype(np.float32)
    m = regression_metrics(result.test_obs, pred)
    info = {
        "name": name,
        "neighbourhoods": list(BASELINES[name]),
        "weight": w,
        "val_r2": fit.val_r2,
        "test_r2": fit.test_r2,
        "iterations": fit.iterations,
    }
    return WithTrees(name, export_trees(fit.model), info, pred, {f"test_{k}": v for k, v in m.items()})
