"""What runs the calibration objective, decided once per run: the one place that chooses.

Four engines, the first that applies:

- ``"c"``: the C kernels of :mod:`cwsc.hydro.engines.cpu` (CPU, float32, when a C
  compiler builds them);
- ``"triton"``: the Triton kernel of :mod:`cwsc.hydro.engines.cuda` (CUDA, float32);
- ``"torch-compiled"``: the models' torch code with the month steps fused by
  ``torch.compile`` (:mod:`cwsc.hydro.engines.fusion`), for jobs large enough to repay compiling;
- ``"torch"``: the same code run eagerly.

Every batch and shard of a run gets the same :class:`Engine`, so a seed gives the same
result however the cells are cut. :class:`Tuning` lets benchmarks and tests force a choice;
users get the automatic one (or the ``CWSC_NATIVE`` / ``CWSC_COMPILE`` switches, see
:mod:`cwsc.machine.environment`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.engines import cpu as cpu_kernels
from cwsc.hydro.engines import cuda as cuda_kernels
from cwsc.hydro.engines import fusion
from cwsc.machine import environment

ENGINES = ("c", "triton", "torch-compiled", "torch")


@dataclass(frozen=True)
class Tuning:
    """Overrides of the automatic choice (benchmarks, tests); None: automatic."""

    kernels: bool | None = None  # hand-written kernels (C on CPU, Triton on CUDA)
    compile: bool | None = None  # torch.compile on the torch path
    max_columns: int | None = None  # columns per model call (memory); None: 64 Ki CPU, 1 Mi CUDA


@dataclass(frozen=True)
class Engine:
    """The choice for one run. ``max_columns``: model runs per call (a stop signal is
    handled between calls). ``reason``: why torch runs on a CPU float32 run ("" otherwise)."""

    kind: str
    max_columns: int
    reason: str = ""

    @property
    def fused(self) -> bool:
        return self.kind == "torch-compiled"

    def kernel(self):
        """``score_sums`` of the hand-written kernel, or None on the torch engines."""
        if self.kind == "c":
            return cpu_kernels.score_sums
        if self.kind == "triton":
            return cuda_kernels.score_sums
        return None

    def describe(self) -> str:
        """What runs the models, in a user's words (for the log)."""
        if self.kind == "c":
            return "models run in the C kernels"
        if self.kind == "triton":
            return "models run in the Triton kernel"
        return f"models run in torch ({self.reason})" if self.reason else "models run in torch"


def calibration_work(cells: int, months: int, config: CalibrationConfig) -> float:
    """Cell-months a calibration may simulate: what decides whether compiling pays."""
    return float(cells) * max(1, int(config.restarts)) * config.sceua.max_evaluations * months


def choose_engine(config: CalibrationConfig, cells: int, months: int, tuning: Tuning | None = None) -> Engine:
    """The engine for calibrating ``cells`` cells of ``months`` months with ``config``."""
    tuning = tuning or Tuning()
    device = torch.device(config.device)
    max_columns = tuning.max_columns or (1 << 20 if device.type == "cuda" else 1 << 16)
    kernels = tuning.kernels if tuning.kernels is not None else environment.kernels_switch()
    float32 = config.dtype == torch.float32
    if kernels is not False and float32:
        if device.type == "cpu" and cpu_kernels.available():
            return Engine("c", max_columns)
        if device.type != "cpu" and cuda_kernels.available(device):
            return Engine("triton", max_columns)
    reason = ""
    if device.type == "cpu" and float32:
        reason = "C kernels turned off" if kernels is False else cpu_kernels.why_not()
    fused = fusion.compile_wanted(
        cells * max(1, int(config.restarts)) * config.sceua.complexes,
        device,
        tuning.compile,
        work=calibration_work(cells, months, config),
    )
    return Engine("torch-compiled" if fused else "torch", max_columns, reason)
