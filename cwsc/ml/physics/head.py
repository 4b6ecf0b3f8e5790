"""The parameter head: how the network's outputs become the water balance models'
parameters (squashed into their bounds) and per-model fits (predicted calibration KGE), and
the joint CWSC of the label rule on those fits."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from cwsc.hydro.labels import label_rule
from cwsc.hydro.models import PARAMETERS

#: Smallest sc (mm) of the logarithmic scale (the bounds allow 0, a logarithm does not).
LOG_SC_FLOOR = 1.0


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
