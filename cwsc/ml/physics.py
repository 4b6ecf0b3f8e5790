"""Physics-guided parameter learning: the network learns the models' parameters from runoff.

Beside the label route (calibrate, mask, train), the ResNet maps each cell's predictor patch
to the parameters of the chosen water balance models (squashed into their bounds, see
:class:`ParameterHead`); the models run from month 0 on the cell's forcing
(:func:`cwsc.hydro.models.runoff_with_gradients`) and the loss is the mean of 1 - KGE
(or 1 - NSE) over the calibration months of the training cells, so the gradient flows from
the runoff misfit back through every month into the network (Tsai et al. 2021).

Learning starts from a per-cell calibration of the training cells (:func:`calibrate_prior`):
the network is first fitted to those parameters (:func:`_pretrain`, ``LearnConfig.
pretrain_epochs``), because gradient descent from the models' initial parameters does not find
what SCE-UA finds per cell (sc moves off to make up for the other parameters); learning from
runoff then goes on from there at a fraction of the rate. Validation and held-out cells are
never calibrated.

The network also predicts, per model, the calibration KGE that model reaches in the cell
(its "fit", regressed on the detached simulated KGE): the joint CWSC of a cell follows the
label rule (:func:`cwsc.hydro.labels.label_rule`) on these fits, so a map can be made
where no runoff is known. ``learn_from_arrays`` is the whole step on arrays; no file I/O.

Shapes: predictors ``(C, rows, cols)``; precipitation, PET and runoff ``(months, rows, cols)``
in mm/month, NaN = nodata.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from cwsc.errors import InputFileError, ParameterError
from cwsc.hydro.calibration.config import split_months
from cwsc.hydro.labels import label_rule
from cwsc.hydro.metrics import finite_median as median
from cwsc.hydro.metrics import kge as kge_metric
from cwsc.hydro.metrics import kge_from_moments, moments
from cwsc.hydro.models import PARAMETERS, Forcing, run_months, runoff_with_gradients
from cwsc.ml import patches as P
from cwsc.ml.network import ResNetConfig, build_network
from cwsc.ml.options import LEARN_BATCH_SIZE, LEARN_EPOCHS, LEARN_PRETRAIN_EPOCHS

#: Weight of the fit regression in the loss (it must not pull the parameters).
FIT_WEIGHT = 0.1
#: Width (in 1 - KGE) of the soft minimum over models of ``model_loss="best"``.
SOFT_MIN_WIDTH = 0.05
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
#: Smallest sc (mm) of the logarithmic scale (the bounds allow 0, a logarithm does not).
LOG_SC_FLOOR = 1.0
#: Weight of the squared per-cell corrections (logit units) in the loss.
CORRECTION_WEIGHT = 1e-3
#: Learning rate of the per-cell corrections (Adam; each cell is seen once an epoch).
CORRECTION_LR = 0.05
#: Batch size and learning rate of the pretraining (network only: no month loop to run).
PRETRAIN_BATCH_SIZE = 64
PRETRAIN_LR = 3e-3
#: Weight of the sc outputs in the pretraining loss, beside the other parameters' and fits' 1.
PRETRAIN_SC_WEIGHT = 10.0
#: Learning rate of the physics stage after a pretraining, as a fraction of
#: ``LearnConfig.learning_rate`` (a full one-cycle peak would throw the pretraining away).
PRETRAINED_LR_FACTOR = 0.1


@dataclass(frozen=True)
class Prior:
    """A per-cell calibration of the training cells that the network is pretrained on:
    ``params[model][parameter]`` and ``kge`` ``(models, rows, cols)`` (calibration KGE) and
    ``cwsc`` ``(rows, cols)`` (the label rule's joint CWSC, mm), NaN where not calibrated."""

    params: dict[str, dict[str, np.ndarray]]
    kge: np.ndarray
    cwsc: np.ndarray


@dataclass(frozen=True)
class ParameterHead:
    """How the network's outputs become parameters: for each model its parameters in
    :data:`~cwsc.hydro.models.PARAMETERS` order, ``lower + (upper - lower) * sigmoid(raw)``,
    then one fit (predicted calibration KGE) per model."""

    models: tuple[str, ...]
    #: "log": sc = exp(log lo + (log hi - log lo) * sigmoid) with lo at least
    #: :data:`LOG_SC_FLOOR`, so that equal steps of the network are equal ratios of sc (the
    #: capacities of a region span two orders of magnitude); "linear" as the other parameters
    sc_scale: str = "log"
    #: one sc for every model (the first model's sc output serves all): the models then differ
    #: in their other parameters only, and every cell's best-fitting model trains the one map
    shared_sc: bool = False

    @property
    def names(self) -> list[tuple[str, str]]:
        return [(m, k) for m in self.models for k in PARAMETERS[m]]

    @property
    def outputs(self) -> int:
        return len(self.names) + len(self.models)

    def parameters(self, raw: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """raw ``(N, outputs)`` -> model -> parameter -> ``(N,)`` in the parameter's units."""
        out: dict[str, dict[str, torch.Tensor]] = {m: {} for m in self.models}
        first_sc = self.names.index((self.models[0], "sc"))
        for j, (m, k) in enumerate(self.names):
            lo, hi, _ = PARAMETERS[m][k]
            if k == "sc" and self.shared_sc:
                j = first_sc
            if k == "sc" and self.sc_scale == "log":
                a, b = math.log(max(lo, LOG_SC_FLOOR)), math.log(hi)
                out[m][k] = torch.exp(a + (b - a) * torch.sigmoid(raw[:, j]))
            else:
                out[m][k] = lo + (hi - lo) * torch.sigmoid(raw[:, j])
        return out

    def correctable(self) -> torch.Tensor:
        """(outputs,) bool: the outputs a per-cell correction may move (every parameter but
        sc; sc and the fits come from the landscape alone: letting the corrections move sc
        too made the map worse, truth R2 0.50 -> -0.60 on a demo cut)."""
        return torch.tensor([k != "sc" for _, k in self.names] + [False] * len(self.models))

    def fits(self, raw: torch.Tensor) -> torch.Tensor:
        """raw ``(N, outputs)`` -> predicted calibration KGE ``(models, N)``."""
        return raw[:, len(self.names) :].T

    def fraction(self, model: str, name: str, values):
        """Where ``values`` (the parameter's units; numpy or a number) lie in the parameter's
        squashed range, 0 at the lower and 1 at the upper bound: the sigmoid that gives them
        (on the log scale for sc with ``sc_scale="log"``). NaN stays NaN."""
        lo, hi, _ = PARAMETERS[model][name]
        if name == "sc" and self.sc_scale == "log":
            a = math.log(max(lo, LOG_SC_FLOOR))
            with np.errstate(invalid="ignore", divide="ignore"):
                return (np.log(np.maximum(values, LOG_SC_FLOOR)) - a) / (math.log(hi) - a)
        return (np.asarray(values, np.float64) - lo) / (hi - lo)

    def initial_bias(self) -> torch.Tensor:
        """Output biases that start every parameter at its model's initial value."""
        b = []
        for m, k in self.names:
            u = min(max(float(self.fraction(m, k, PARAMETERS[m][k][2])), 0.05), 0.95)
            b.append(math.log(u / (1 - u)))
        return torch.tensor(b + [0.5] * len(self.models))

    def to_dict(self) -> dict:
        return {
            "models": list(self.models),
            "sc_scale": self.sc_scale,
            "shared_sc": self.shared_sc,
            "parameters": {m: list(PARAMETERS[m]) for m in self.models},
        }

    @classmethod
    def from_dict(cls, d: dict) -> ParameterHead:
        head = cls(tuple(d["models"]), d.get("sc_scale", "linear"), bool(d.get("shared_sc")))
        for m in head.models:
            if list(d["parameters"][m]) != list(PARAMETERS[m]):
                raise ValueError(
                    f"{m}: parameters {d['parameters'][m]} differ from this backend's {list(PARAMETERS[m])}"
                )
        return head


def joint_cwsc(
    head: ParameterHead, raw: np.ndarray, margin: float | None, threshold: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(joint CWSC ``(N,)``, each model's sc ``(models, N)``) in mm from network outputs
    ``(N, outputs)``, the label rule applied to the predicted fits."""
    t = torch.from_numpy(np.asarray(raw, np.float32))
    prm = head.parameters(t)
    scs = np.stack([prm[m]["sc"].numpy() for m in head.models]).astype(np.float64)
    fits = head.fits(t).numpy().astype(np.float64)
    return label_rule(fits, scs, threshold, margin)[0], scs


def fit_loss(sim: torch.Tensor, obs: torch.Tensor, objective: str = "kge") -> torch.Tensor:
    """Per cell 1 - KGE (2009) or 1 - NSE of ``sim`` against ``obs``, both ``(months, N)``;
    NaN observations are skipped. The simulated variance is floored so that a cell whose
    model gives constant runoff still has a finite gradient."""
    mo, ms, vo, vs, cov, _ = moments(sim, obs, 0, 1)
    if objective == "kge":
        return 1.0 - kge_from_moments(mo, ms, vo, vs.clamp_min(1e-6), cov)
    valid = ~torch.isnan(obs)
    err = torch.where(valid, sim - obs, torch.zeros((), dtype=sim.dtype)).pow(2).sum(0)
    n = valid.sum(0).to(sim.dtype).clamp_min(1.0)
    return err / (vo * n)


def combine(
    losses: torch.Tensor, how: str = "best", mean_weight: float = 0.1, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """One loss from the models' per-cell losses ``(models, N)``: their mean, or ("best") a
    soft minimum over the models (width :data:`SOFT_MIN_WIDTH`) plus ``mean_weight`` times
    the mean, so that each model's parameters need only fit the cells that model can fit.
    ``weight`` ``(N,)``: each cell's weight (0: the cell takes no part)."""
    if how == "best" and losses.shape[0] > 1:
        soft = -SOFT_MIN_WIDTH * torch.logsumexp(-losses / SOFT_MIN_WIDTH, dim=0)
        per_cell = soft + mean_weight * losses.mean(0)
    else:
        per_cell = losses.mean(0)
    if weight is None:
        return per_cell.mean()
    return (per_cell * weight).sum() / weight.sum().clamp_min(1.0)


def kge_mask_weight(losses: torch.Tensor, threshold: float | None) -> torch.Tensor | None:
    """(N,) 1 where the best model of a cell reaches a KGE (1 - loss) above ``threshold``,
    else 0: the label route's KGE mask, applied to the fits as learning goes (runoff that no
    model can make from the cell's forcing must not pull the parameters)."""
    if threshold is None:
        return None
    return (1.0 - losses.detach().min(0).values > threshold).to(losses.dtype)


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

    def resolved(self) -> tuple[int, int]:
        epochs = LEARN_EPOCHS if self.epochs is None else int(self.epochs)
        batch = LEARN_BATCH_SIZE if self.batch_size is None else int(self.batch_size)
        if epochs < 1:
            raise ParameterError(f"EPOCHS: {epochs} must be at least 1")
        if batch < 2:
            raise ParameterError(f"BATCH_SIZE: {batch} must be at least 2 (batch normalisation)")
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


def calibrate_prior(
    precip: np.ndarray,
    pet: np.ndarray,
    runoff: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    config: LearnConfig,
    progress: Callable[[float], None] | None = None,
) -> Prior:
    """The :class:`Prior`: each model calibrated (SCE-UA, one restart, no identifiability
    profile) in the cells ``rows, cols`` on the calibration months of ``config``, with its
    objective and formulation."""
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.calibration.driver import calibrate

    w, c = config.periods(precip.shape[0])
    cal = CalibrationConfig(
        models=tuple(config.models),
        objective=config.objective,
        formulation=config.formulation,
        warmup_months=w,
        calibration_fraction=c / precip.shape[0],
        restarts=1,
        profile=None,
        kge_margin=config.kge_margin,
        seed=config.seed,
    )
    at = lambda a: a[:, rows, cols].T.astype(np.float64)  # noqa: E731
    result = calibrate(at(precip), at(pet), at(runoff), cal, progress=progress)

    def grid(values: np.ndarray) -> np.ndarray:
        out = np.full(precip.shape[1:], np.nan)
        out[rows, cols] = values
        return out

    return Prior(
        {m: {k: grid(v) for k, v in lab.params.items()} for m, lab in result.models.items()},
        np.stack([grid(result.models[m].kge_cal) for m in config.models]),
        grid(result.cwsc),
    )


def _prior_targets(
    head: ParameterHead, prior: Prior, rows: np.ndarray, cols: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, weights), both ``(N, outputs)``: the parameters as fractions of their squashed
    range (every model's sc the cell's joint CWSC, so that the models agree where the fits do
    not tell them apart), then the fits (calibration KGE). Weight 0 where the calibration gave
    nothing or the cell's best KGE is not above 0 (the label route's mask)."""
    n = len(rows)
    target = np.zeros((n, head.outputs), np.float64)
    weight = np.zeros((n, head.outputs), np.float64)
    kge = prior.kge[:, rows, cols]
    with np.errstate(invalid="ignore"):
        usable = np.nanmax(np.where(np.isfinite(kge), kge, -np.inf), axis=0) > 0
    for j, (m, k) in enumerate(head.names):
        u = head.fraction(m, k, prior.cwsc[rows, cols] if k == "sc" else prior.params[m][k][rows, cols])
        ok = np.isfinite(u) & usable
        target[:, j] = np.where(ok, np.clip(u, 0.0, 1.0), 0.0)
        weight[:, j] = ok * (PRETRAIN_SC_WEIGHT if k == "sc" else 1.0)
    for i in range(len(head.models)):
        j = len(head.names) + i
        ok = np.isfinite(kge[i]) & usable
        target[:, j] = np.where(ok, np.clip(kge[i], -1.0, 1.0), 0.0)
        weight[:, j] = ok
    return torch.from_numpy(target.astype(np.float32)), torch.from_numpy(weight.astype(np.float32))


def _prior_loss(
    head: ParameterHead, raw: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Weighted squared error of the network outputs ``raw`` (N, outputs) against a
    :class:`Prior`'s targets (see :func:`_prior_targets`)."""
    n_par = len(head.names)
    out = torch.cat([torch.sigmoid(raw[:, :n_par]), raw[:, n_par:]], 1)
    return ((out - target).pow(2) * weight).sum() / weight.sum().clamp_min(1.0)


def _pretrain(
    net: torch.nn.Module,
    head: ParameterHead,
    x: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    epochs: int,
    seed: int,
    device: torch.device,
) -> int:
    """Fits the network to a :class:`Prior`'s targets (squared error of the squashed
    parameters and of the fits, masked by ``weight``); returns how many cells it was fitted
    to."""
    from cwsc.machine.devices import autocast
    from cwsc.ml.training import augment, one_cycle_schedule

    keep = torch.nonzero(weight.sum(1) > 0).flatten().to(device)
    if len(keep) < 2 or epochs < 1:
        return 0
    target, weight = target.to(device), weight.to(device)
    batch = min(PRETRAIN_BATCH_SIZE, len(keep))
    steps = max(len(keep) // batch, 1)
    opt = torch.optim.AdamW(net.parameters(), lr=PRETRAIN_LR, weight_decay=1e-4)
    sched = one_cycle_schedule(opt, PRETRAIN_LR, steps * epochs)
    gen = torch.Generator().manual_seed(seed + 2)
    for _ in range(epochs):
        net.train()
        perm = keep[torch.randperm(len(keep), generator=gen).to(device)]
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            with autocast(device):
                raw = net(augment(x[idx], gen)).float()
            loss = _prior_loss(head, raw, target[idx], weight[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return len(keep)


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
) -> LearnResult:
    """Learn the models' parameters from runoff (see the module docstring).

    ``on_epoch(record, fraction_done)`` after every epoch; records hold epoch, seconds,
    train_loss, val_loss, train_kge and val_kge (medians over cells of the best model's
    calibration KGE; the training cells' during the epoch's steps).
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
    if len(train_idx) < batch:
        raise InputFileError(
            f"RUNOFF: {len(train_idx)} training cells (of {n} with runoff, after the "
            f"test and validation parts) is fewer than one batch of {batch}; lower "
            "BATCH_SIZE or TEST_FRACTION"
        )
    part = np.zeros(n, np.int8)
    part[val_idx], part[test_idx] = 1, 2

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
        target, weight = _prior_targets(head, prior, rows, cols)
        weight[part != 0] = 0.0  # only the training cells' runoff is calibrated
        pretrained_cells = _pretrain(net, head, x_all, target, weight, pretrain_epochs, config.seed, device)
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
