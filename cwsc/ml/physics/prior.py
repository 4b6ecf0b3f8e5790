"""The pretraining: a per-cell calibration of the training cells (:class:`Prior`,
:func:`calibrate_prior`), the network's targets and loss from it, and the loop that fits the
network to them (:func:`pretrain`) before learning from runoff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch

from cwsc.ml.options import LEARN_PRETRAIN_BATCH_SIZE
from cwsc.ml.physics.head import ParameterHead

#: Learning rate of the pretraining (network only: no month loop to run); its batch size is
#: :data:`cwsc.ml.options.LEARN_PRETRAIN_BATCH_SIZE`.
PRETRAIN_LR = 3e-3
#: Weight of the sc outputs in the pretraining loss, beside the other parameters' and fits' 1.
PRETRAIN_SC_WEIGHT = 10.0


@dataclass(frozen=True)
class Prior:
    """A per-cell calibration of the training cells that the network is pretrained on:
    ``params[model][parameter]`` and ``kge`` ``(models, rows, cols)`` (calibration KGE) and
    ``cwsc`` ``(rows, cols)`` (the label rule's joint CWSC, mm), NaN where not calibrated."""

    params: dict[str, dict[str, np.ndarray]]
    kge: np.ndarray
    cwsc: np.ndarray


class _Settings(Protocol):
    """What :func:`calibrate_prior` reads of a :class:`~cwsc.ml.physics.learning.LearnConfig`
    (not imported here: the learning loop imports this module)."""

    models: tuple[str, ...]
    objective: str
    formulation: str
    kge_margin: float | None
    seed: int

    def periods(self, months: int) -> tuple[int, int]: ...


def calibrate_prior(
    precip: np.ndarray,
    pet: np.ndarray,
    runoff: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    config: _Settings,
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


def prior_targets(
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
    :class:`Prior`'s targets (see :func:`prior_targets`)."""
    n_par = len(head.names)
    out = torch.cat([torch.sigmoid(raw[:, :n_par]), raw[:, n_par:]], 1)
    return ((out - target).pow(2) * weight).sum() / weight.sum().clamp_min(1.0)


def pretrain(
    net: torch.nn.Module,
    head: ParameterHead,
    x: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    epochs: int,
    seed: int,
    device: torch.device,
    on_epoch: Callable[[int, int], None] | None = None,
    batch_size: int = LEARN_PRETRAIN_BATCH_SIZE,
) -> int:
    """Fits the network to a :class:`Prior`'s targets (squared error of the squashed
    parameters and of the fits, masked by ``weight``); returns how many cells it was fitted
    to. ``on_epoch(done, epochs)`` after every epoch; ``batch_size`` cells per step."""
    from cwsc.machine.devices import autocast
    from cwsc.ml.training import augment, one_cycle_schedule

    keep = torch.nonzero(weight.sum(1) > 0).flatten().to(device)
    if len(keep) < 2 or epochs < 1:
        return 0
    target, weight = target.to(device), weight.to(device)
    batch = min(batch_size, len(keep))
    steps = max(len(keep) // batch, 1)
    opt = torch.optim.AdamW(net.parameters(), lr=PRETRAIN_LR, weight_decay=1e-4)
    sched = one_cycle_schedule(opt, PRETRAIN_LR, steps * epochs)
    gen = torch.Generator().manual_seed(seed + 2)
    for epoch in range(epochs):
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
        if on_epoch is not None:
            on_epoch(epoch + 1, epochs)
    return len(keep)
