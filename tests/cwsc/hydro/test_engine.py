"""Which engine runs the calibration objective, decided once per run, and how the log names it."""

from __future__ import annotations

import torch

from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.engines import cpu as cpu_kernels
from cwsc.hydro.engines.selection import Tuning, choose_engine


def _describe(config, tuning=None):
    return choose_engine(config, 100, 120, tuning).describe()


def test_environment_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv("CWSC_NATIVE", "0")
    assert choose_engine(CalibrationConfig(), 100, 120).kind in ("torch", "torch-compiled")
    monkeypatch.delenv("CWSC_NATIVE")
    assert choose_engine(CalibrationConfig(), 100, 120, Tuning(kernels=False)).kind != "c"


def test_the_calibrate_log_names_the_engine():
    if cpu_kernels.available():
        assert _describe(CalibrationConfig()) == "models run in the C kernels"
        assert (
            _describe(CalibrationConfig(), Tuning(kernels=False))
            == "models run in torch (C kernels turned off)"
        )
    else:
        assert cpu_kernels.why_not() in _describe(CalibrationConfig())
    assert _describe(CalibrationConfig(dtype=torch.float64)) == "models run in torch"


def test_small_torch_runs_stay_eager_and_compile_can_be_forced():
    eager = choose_engine(CalibrationConfig(), 10, 60, Tuning(kernels=False))
    assert eager.kind == "torch" and not eager.fused and eager.kernel() is None
    forced = choose_engine(CalibrationConfig(), 10, 60, Tuning(kernels=False, compile=True))
    assert forced.kind == "torch-compiled" and forced.fused
