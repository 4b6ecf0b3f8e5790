"""The learning from runoff: its configuration (:class:`LearnConfig`), the cells that take
part (:class:`Cells`), the learning loop (:func:`learn_from_arrays`) and its result
(:class:`LearnResult`)."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from cwsc.errors import InputFileError, ParameterError
from cwsc.hydro.calibration.config import split_months
from cwsc.hydro.metrics import finite_median as median
from cwsc.hydro.metrics import kge as kge_metric
from cwsc.hydro.models import PARAMETERS, Forcing, run_months, runoff_with_gradients
from cwsc.ml import patches as P
from cwsc.ml.network import ResNetConfig, build_network
from cwsc.ml.options import (
    LEARN_BATCH_SIZE,
    LEARN_EPOCHS,
    LEARN_PRETRAIN_BATCH_SIZE,
    LEARN_PRETRAIN_EPOCHS,
)
from cwsc.ml.physics.head import ParameterHead, joint_cwsc
from cwsc.ml.physics.losses import FIT_WEIGHT, combine, fit_loss, kge_mask_weight
from cwsc.ml.physics.prior import Prior, calibrate_prior, pretrain, prior_targets

log = logging.getLogger(__name__)

#: Fewest valid calibration months a cell needs to take part.
MIN_CALIBRATION_MONTHS = 24
#: Cells whose mean runoff over the calibration months exceeds this times their mean
#: precipitation take no part (see :func:`_cells`).
MAX_RUNOFF_COEFFICIENT = 1.0
#: The cell counts of a learning's metrics (the model file's sizes, the command's results, the
#: report's summary).
CELL_COUNTS = (
    "train_cells",
    "val_cells",
    "test_cells",
    "skipped_cells",
    "cells_without_runoff",
    "cells_runoff_above_precipitation",
)
#: Epochs in which every cell counts, before the KGE mask (``LearnConfig.kge_mask``) applies.
MASK_AFTER_EPOCHS = 3
#: Weight of the squared per-cell corrections (logit units) in the loss.
CORRECTION_WEIGHT = 1e-3
#: Learning rate of the per-cell corrections (Adam; each cell is seen once an epoch).
CORRECTION_LR = 0.05
#: Learning rate of the physics stage after a pretraining, as a fraction of
#: ``LearnConfig.learning_rate`` (a full one-cycle peak would throw the pretraining away).
PRETRAINED_LR_FACTOR = 0.1

#: Seconds per unit of work of each stage, measured on the 2-core development CPU with the
#: defaults on the demo region (seed 7: 1,191 training cells, 270 calibration months; under a
#: load of about 15 other processes, so about five times an idle machine's seconds; the
#: ratios are what counts, and they held on a twin, tests/cwsc/ml/test_physics.py): they only share the progress
#: bar out between the stages (:func:`stage_seconds`), so that it moves evenly; no result
#: depends on them. Calibrating: per training cell, model and calibration month (SCE-UA, one
#: restart); pretraining: per step (a small network's step costs about the same for 64 or 512
#: cells on a CPU); learning: per step, model and month run under autograd (the month loop's
#: cost per call hardly depends on the cells in it), and validating per model and month (the
#: same without gradients, on all the validation cells at once after each epoch).
SECONDS_CALIBRATING = 1.2e-4  # 117 s
SECONDS_PRETRAINING_STEP = 0.25  # 451 s for 100 epochs of 18 steps
SECONDS_LEARNING_STEP_MONTH = 1.1e-2  # with the next: 759 s for 40 epochs of 2 steps
SECONDS_VALIDATING_MONTH = 1.6e-3


@dataclass
class LearnConfig:
    """What the user chooses for ``learn``; ``None`` takes the default."""

    models: tuple[str, ...] = ("DWBM", "SWBM", "TVGM")
    patch_size: int = 11
    test_fraction: float = 0.3
    split: str = "random"
    block_size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    formulation: str = "conserving"
    objective: str = "kge"
    warmup_months: int | None = None  # default: as calibrate (min(months // 8, 24))
    calibration_fraction: float = 0.75
    kge_margin: float | None = 0.02
    learning_rate: float = 3e-3
    patience: int = 15  # epochs without a better validation loss before stopping (8 stopped
    # the demo twin (seed 7) after about 20 epochs at truth R2 -0.17; 40 epochs: 0.63)
    val_fraction: float = 0.15  # of the training cells, for early stopping
    checkpoint_months: int = 0  # 0: keep every month's tensors for the backward pass
    #: how the models' losses of a cell combine: "mean", or "best" (a soft minimum, so each
    #: model only has to fit the cells it can fit; the mean keeps a small weight)
    model_loss: str = "best"
    blocks: int = 2
    widths: tuple[int, int, int] = (16, 32, 64)
    sc_scale: str = "log"  # see ParameterHead
    #: each training cell may correct the network's parameters other than sc (penalised, see
    #: CORRECTION_WEIGHT): the landscape need not explain what it cannot (in the demo the
    #: models' other parameters are random fields), so sc alone carries it; held-out cells
    #: and maps use the network's parameters only
    cell_corrections: bool = True
    shared_sc: bool = False  # see ParameterHead
    #: after MASK_AFTER_EPOCHS, cells whose best model's KGE is at or below this take no part
    #: in the loss (None: every cell always)
    kge_mask: float | None = None
    mean_weight: float = 0.1  # of the models' mean loss beside the soft minimum
    #: epochs of pretraining the network on a per-cell calibration of the training cells
    #: (:class:`Prior`; 0: none, learning starts from the models' initial parameters)
    pretrain_epochs: int | None = None  # None: LEARN_PRETRAIN_EPOCHS
    #: cells per step of the pretraining (None: LEARN_PRETRAIN_BATCH_SIZE)
    pretrain_batch_size: int | None = None

    def resolved(self) -> tuple[int, int]:
        epochs = LEARN_EPOCHS if self.epochs is None else int(self.epochs)
        batch = LEARN_BATCH_SIZE if self.batch_size is None else int(self.batch_size)
        if epochs < 1:
            raise ParameterError(f"EPOCHS: {epochs} must be at least 1")
        if batch < 2:
            raise ParameterError(f"BATCH_SIZE: {batch} must be at least 2 (batch normalisation)")
        if self.pretrain_batch_size is not None and int(self.pretrain_batch_size) < 2:
            raise ParameterError(
                f"pretrain_batch_size: {self.pretrain_batch_size} must be at least 2 (batch normalisation)"
            )
        if not 0.0 <= self.test_fraction < 1.0:
            raise ParameterError(f"TEST_FRACTION: {self.test_fraction} must be in [0, 1)")
        if self.model_loss not in ("best", "mean"):
            raise ParameterError(f"MODEL_LOSS: unknown '{self.model_loss}' (use best or mean)")
        if self.sc_scale not in ("log", "linear"):
            raise ParameterError(f"SC_SCALE: unknown '{self.sc_scale}' (use log or linear)")
        self.pretraining()
        if self.objective not in ("kge", "nse"):
            raise ParameterError(f"OBJECTIVE: unknown objective '{self.objective}' (use kge or nse)")
        for m in self.models:
            if m not in PARAMETERS:
                raise ParameterError(f"MODELS: unknown model '{m}'; use a subset of {', '.join(PARAMETERS)}")
        return epochs, batch

    def pretraining(self) -> int:
        """Epochs of pretraining (0: none)."""
        n = LEARN_PRETRAIN_EPOCHS if self.pretrain_epochs is None else int(self.pretrain_epochs)
        if n < 0:
            raise ParameterError(f"PRETRAIN_EPOCHS: {n} must be 0 (no pretraining) or more")
        return n

    def periods(self, months: int) -> tuple[int, int]:
        """(w, c): scored calibration months [w, c), validation months [c, months)."""
        return split_months(months, self.warmup_months, self.calibration_fraction, MIN_CALIBRATION_MONTHS)


@dataclass
class LearnResult:
    """A learned network and what it reaches. Per-cell arrays are over ``rows``/``cols``
    (every cell that took part); ``part`` says which: 0 training, 1 validation, 2 held out."""

    state: dict[str, torch.Tensor]
    network: ResNetConfig
    head: ParameterHead
    scaling: P.Scaling
    history: list[dict]
    rows: np.ndarray
    cols: np.ndarray
    part: np.ndarray
    cwsc: np.ndarray  # (N,) joint CWSC, mm
    sc: np.ndarray  # (models, N) each model's sc, mm
    kge_cal: np.ndarray  # (models, N) over the calibration months
    kge_val: np.ndarray  # (models, N) over the validation months
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    device: str = "cpu"


@dataclass(frozen=True)
class Cells:
    """The cells that take part (``rows``, ``cols``) and how many were left out, and why."""

    rows: np.ndarray
    cols: np.ndarray
    skipped: int  # runoff and forcing, but a nodata predictor
    without_runoff: int  # forcing, but too few valid or varying runoff months
    runoff_above_precipitation: int  # more runoff than precipitation over the calibration months


def _cells(predictors, precip, pet, runoff, w, c) -> Cells:
    forcing_ok = np.isfinite(precip).all(0) & np.isfinite(pet).all(0)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        varies = np.nan_to_num(np.nanstd(runoff[w:c], axis=0)) > 0  # else KGE is undefined
        # The models conserve water: over years they cannot give more runoff than it rains.
        # Such runoff (a wrong gauge, catchment area or product; glacier melt, imports)
        # would pull sc towards its bound in the cell and, through the network, around it.
        valid = np.isfinite(runoff[w:c])
        rain = np.where(valid, precip[w:c], np.nan)
        wet = np.nanmean(runoff[w:c], axis=0) > MAX_RUNOFF_COEFFICIENT * np.nanmean(rain, axis=0)
    scored = (valid.sum(0) >= MIN_CALIBRATION_MONTHS) & varies
    own = np.isfinite(predictors).all(0)
    too_wet = forcing_ok & scored & wet
    rows, cols = np.nonzero(forcing_ok & scored & own & ~wet)
    if len(rows) == 0:
        raise InputFileError(
            f"RUNOFF: no cell has forcing in every month, valid predictors, at "
            f"least {MIN_CALIBRATION_MONTHS} valid, varying runoff months in the "
            f"calibration period (months {w + 1} to {c}) and no more runoff than "
            f"precipitation there; {int(scored.sum())} cells have enough runoff, "
            f"{int(too_wet.sum())} of them more runoff than precipitation"
        )
    return Cells(
        rows,
        cols,
        int((forcing_ok & scored & ~own & ~wet).sum()),
        int((forcing_ok & ~scored).sum()),
        int(too_wet.sum()),
    )


def stage_seconds(
    config: LearnConfig, train_cells: int, val_cells: int, months: int, calibrate: bool = True
) -> dict[str, float]:
    """Estimated seconds of each stage of a learning on the 2-core development CPU:
    ``calibration`` (of the training cells; 0 without a pretraining or with ``calibrate``
    False), ``pretraining`` and ``learning`` (every epoch run: early stopping may end it
    sooner), from the ``SECONDS_*`` unit costs. For the progress bar's shares, which only
    the ratios matter to; on a GPU every stage is faster."""
    epochs, batch = config.resolved()
    w, c = config.periods(months)
    models = len(config.models)
    pretrain_epochs = config.pretraining()
    pretrain_batch = (
        LEARN_PRETRAIN_BATCH_SIZE if config.pretrain_batch_size is None else config.pretrain_batch_size
    )
    calibration = SECONDS_CALIBRATING * train_cells * models * c if (pretrain_epochs and calibrate) else 0.0
    pretraining = SECONDS_PRETRAINING_STEP * pretrain_epochs * max(train_cells // max(pretrain_batch, 1), 1)
    steps = max(train_cells // max(batch, 1), 1)
    learning = (
        epochs
        * models
        * c
        * (SECONDS_LEARNING_STEP_MONTH * steps + SECONDS_VALIDATING_MONTH * (val_cells > 0))
    )
    return {"calibration": calibration, "pretraining": pretraining, "learning": learning}


def _simulated(
    forcings: dict[str, Forcing],
    head: ParameterHead,
    raw: torch.Tensor,
    idx: torch.Tensor,
    months: int | None = None,
) -> dict[str, torch.Tensor]:
    """Runoff (months, n) per model for the cells ``idx`` without gradients (fast path)."""
    prm = head.parameters(raw)
    with torch.no_grad():
        return {
            m: run_months(
                forcings[m].select(idx),
                {k: v.to(forcings[m].like.dtype) for k, v in prm[m].items()},
                months=months,
            )["runoff"]
            for m in head.models
        }


def learn_from_arrays(
    predictors: np.ndarray,
    precip: np.ndarray,
    pet: np.ndarray,
    runoff: np.ndarray,
    config: LearnConfig,
    on_epoch: Callable[[dict, float], None] | None = None,
    prior: Prior | None = None,
    on_calibration: Callable[[float], None] | None = None,
    on_pretrain: Callable[[int, int], None] | None = None,
    on_plan: Callable[[dict[str, float]], None] | None = None,
) -> LearnResult:
    """Learn the models' parameters from runoff (see :mod:`cwsc.ml.physics`).

    ``on_epoch(record, fraction_done)`` after every epoch; records hold epoch, seconds,
    train_loss, val_loss, train_kge and val_kge (medians over cells of the best model's
    calibration KGE; the training cells' during the epoch's steps). ``on_calibration(fraction)``
    while the training cells are calibrated, ``on_pretrain(epoch, epochs)`` after every epoch
    of the pretraining. ``on_plan(seconds)`` once the cells are known, before any stage runs:
    :func:`stage_seconds` of this run (the calibration 0 when ``prior`` is given).
    """
    from cwsc.machine.devices import autocast, configure_threads, resolve_device
    from cwsc.ml.training import EarlyStopping, augment, one_cycle_schedule, to_device

    t0 = time.perf_counter()
    epochs, batch = config.resolved()
    device = resolve_device(config.device)
    configure_threads(device)
    months = precip.shape[0]
    w, c = config.periods(months)
    P.check_patch_size(config.patch_size, predictors.shape[1:])
    cells = _cells(predictors, precip, pet, runoff, w, c)
    rows, cols = cells.rows, cells.cols
    n = len(rows)
    train_idx, test_idx = P.split_samples(
        rows, cols, config.test_fraction, config.split, config.block_size, config.seed
    )
    sub_tr, sub_val = P.split_samples(
        rows[train_idx],
        cols[train_idx],
        config.val_fraction,
        config.split,
        config.block_size,
        config.seed + 1,
    )
    val_idx, train_idx = train_idx[sub_val], train_idx[sub_tr]
    if len(train_idx) < 2:
        raise InputFileError(
            f"RUNOFF: {len(train_idx)} training cells (of {n} with runoff, after the test and "
            "validation parts): at least 2 are needed (batch normalisation); lower "
            "TEST_FRACTION, or give more cells with runoff"
        )
    if len(train_idx) < batch:
        # A small region: every step takes all its training cells (the step costs about the
        # same for fewer cells), rather than refusing the default batch size.
        log.info(
            f"BATCH_SIZE {batch} is more than the {len(train_idx)} training cells: each "
            "learning step takes all of them"
        )
        batch = len(train_idx)
    part = np.zeros(n, np.int8)
    part[val_idx], part[test_idx] = 1, 2
    if on_plan is not None:
        on_plan(stage_seconds(config, len(train_idx), len(val_idx), months, calibrate=prior is None))

    scaling = P.fit_scaling(
        predictors, rows[train_idx], cols[train_idx], np.zeros(len(train_idx), np.float32), "standard"
    )
    padded = P.pad_block(predictors.copy(), scaling, config.patch_size // 2)
    x_all = to_device(P.extract_patches(padded, rows, cols, config.patch_size), device)
    del padded
    p_all = torch.from_numpy(precip[:, rows, cols].astype(np.float32)).to(device)
    e_all = torch.from_numpy(pet[:, rows, cols].astype(np.float32)).to(device)
    q_all = torch.from_numpy(runoff[:, rows, cols].astype(np.float32)).to(device)
    forcings = {m: Forcing(m, p_all, e_all, config.formulation) for m in config.models}
    head = ParameterHead(tuple(config.models), config.sc_scale, config.shared_sc)
    net_config = ResNetConfig(
        predictors.shape[0] + 1, config.blocks, tuple(config.widths), False, head.outputs
    )
    torch.manual_seed(config.seed)
    net = build_network(net_config)
    with torch.no_grad():  # start from the models' initial parameters, small spread
        net.head.weight.mul_(0.1)
        net.head.bias.copy_(head.initial_bias())
    net = net.to(device).to(memory_format=torch.channels_last)
    learning_rate = config.learning_rate
    pretrain_epochs, pretrained_cells = config.pretraining(), 0
    if pretrain_epochs > 0:
        if prior is None:
            prior = calibrate_prior(
                precip, pet, runoff, rows[train_idx], cols[train_idx], config, on_calibration
            )
        target, weight = prior_targets(head, prior, rows, cols)
        weight[part != 0] = 0.0  # only the training cells' runoff is calibrated
        pretrained_cells = pretrain(
            net,
            head,
            x_all,
            target,
            weight,
            pretrain_epochs,
            config.seed,
            device,
            on_pretrain,
            batch_size=(
                LEARN_PRETRAIN_BATCH_SIZE
                if config.pretrain_batch_size is None
                else config.pretrain_batch_size
            ),
        )
        learning_rate *= PRETRAINED_LR_FACTOR
    steps = len(train_idx) // batch
    opt = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4)
    sched = one_cycle_schedule(opt, learning_rate, steps * epochs)
    gen = torch.Generator().manual_seed(config.seed)
    tr_t = torch.from_numpy(train_idx).to(device)
    corrections = torch.zeros((n, head.outputs), device=device, requires_grad=True)
    correctable = head.correctable().to(device)
    corr_opt = torch.optim.Adam([corrections], lr=CORRECTION_LR) if config.cell_corrections else None

    def corrected(raw: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if corr_opt is None:
            return raw
        return raw + torch.where(correctable, corrections[idx], torch.zeros((), device=device))

    obs_cal = q_all[w:c]

    def raw_of(idx: np.ndarray) -> torch.Tensor:
        net.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(idx), 1024):
                xb = x_all[torch.from_numpy(idx[i : i + 1024]).to(device)]
                with autocast(device):
                    out.append(net(xb).float())
        return torch.cat(out) if out else torch.zeros((0, head.outputs), device=device)

    def scores(idx: np.ndarray, raw: torch.Tensor, m0: int, m1: int) -> torch.Tensor:
        """(models, n) 1 - objective over months [m0, m1) for the cells ``idx``."""
        sims = _simulated(forcings, head, raw, torch.from_numpy(idx).to(device), m1)
        obs = q_all[m0:m1][:, torch.from_numpy(idx).to(device)]
        return torch.stack([fit_loss(sims[m][m0:m1], obs, config.objective) for m in head.models])

    history: list[dict] = []
    stopping = EarlyStopping(config.patience)
    train_seconds = 0.0
    for epoch in range(epochs):
        net.train()
        t_ep = time.perf_counter()
        perm = tr_t[torch.randperm(len(train_idx), generator=gen).to(device)]
        total = 0.0
        best_kges = []
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            xb = augment(x_all[idx], gen)
            with autocast(device):
                raw = corrected(net(xb).float(), idx)
            prm = head.parameters(raw)
            losses = []
            for m in head.models:
                q = runoff_with_gradients(
                    forcings[m].select(idx), prm[m], months=c, checkpoint_months=config.checkpoint_months
                )
                losses.append(fit_loss(q[w:], obs_cal[:, idx], config.objective))
            lost = torch.stack(losses)  # (models, B)
            fit = torch.nn.functional.mse_loss(head.fits(raw), (1.0 - lost.detach()).clamp(-1, 1))
            mask = kge_mask_weight(lost, config.kge_mask) if epoch >= MASK_AFTER_EPOCHS else None
            loss = combine(lost, config.model_loss, config.mean_weight, mask) + FIT_WEIGHT * fit
            if corr_opt is not None:
                loss = loss + CORRECTION_WEIGHT * corrections[idx].pow(2).sum(1).mean()
                corr_opt.zero_grad(set_to_none=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            if corr_opt is not None:
                corr_opt.step()
            sched.step()
            total += float(combine(lost.detach(), config.model_loss, config.mean_weight))
            best_kges.append(1 - lost.detach().min(0).values)
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_seconds += time.perf_counter() - t_ep
        rec = {
            "epoch": epoch + 1,
            "seconds": train_seconds,
            "train_loss": total / max(steps, 1),
            "train_kge": float(torch.median(torch.cat(best_kges))) if best_kges else None,
        }
        val = scores(val_idx, raw_of(val_idx), w, c) if len(val_idx) else None
        rec["val_loss"] = (
            float(combine(val, config.model_loss, config.mean_weight, kge_mask_weight(val, config.kge_mask)))
            if val is not None
            else None
        )
        rec["val_kge"] = float(torch.median(1 - val.min(0).values)) if val is not None else None
        history.append(rec)
        if on_epoch is not None:
            on_epoch(rec, (epoch + 1) / epochs)
        if stopping.should_stop(rec["val_loss"], net):
            break
    stopping.restore(net)

    all_idx = np.arange(n)
    raw = raw_of(all_idx)
    # The training cells' fits with their corrections (what learning reached there); the
    # held-out and validation cells' with the network's parameters alone.
    with torch.no_grad():
        own = torch.from_numpy(part == 0).to(device)[:, None]
        fitted = torch.where(own, corrected(raw, torch.from_numpy(all_idx).to(device)), raw)
    sims = _simulated(forcings, head, fitted, torch.from_numpy(all_idx).to(device))
    kge_cal = np.stack(
        [kge_metric(sims[m][w:c].cpu().numpy(), q_all[w:c].cpu().numpy(), axis=0) for m in head.models]
    )
    kge_val = np.stack(
        [
            kge_metric(sims[m][c:].cpu().numpy(), q_all[c:].cpu().numpy(), axis=0)
            if c < months
            else np.full(n, np.nan)
            for m in head.models
        ]
    )
    raw_np = raw.cpu().numpy()
    cwsc, sc = joint_cwsc(head, raw_np, config.kge_margin)
    # A cell's KGE is that of its best model by calibration KGE (as the label route's).
    with np.errstate(invalid="ignore"):
        best_model = np.argmax(np.nan_to_num(kge_cal, nan=-np.inf), axis=0)
    joint_cal = kge_cal[best_model, all_idx]
    joint_val = kge_val[best_model, all_idx]

    metrics = {
        "cal_kge_train_cells": median(joint_cal[part == 0]),
        "val_kge_train_cells": median(joint_val[part == 0]),
        "cal_kge_test_cells": median(joint_cal[part == 2]),
        "val_kge_test_cells": median(joint_val[part == 2]),
        "train_cells": int((part == 0).sum()),
        "val_cells": int((part == 1).sum()),
        "test_cells": int((part == 2).sum()),
        "skipped_cells": cells.skipped,
        "cells_without_runoff": cells.without_runoff,
        "cells_runoff_above_precipitation": cells.runoff_above_precipitation,
        "pretrained_cells": pretrained_cells,
        "epochs_run": len(history),
    }
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return LearnResult(
        state,
        net_config,
        head,
        scaling,
        history,
        rows,
        cols,
        part,
        cwsc.astype(np.float32),
        sc.astype(np.float32),
        kge_cal,
        kge_val,
        metrics,
        time.perf_counter() - t0,
        str(device),
    )
