"""The Triton kernel of the calibration objective (cwsc/hydro/engines/cuda_triton.py, launched by
cwsc/hydro/engines/cuda.py).

On a machine with CUDA it runs compiled on the GPU; elsewhere in Triton's interpreter
(TRITON_INTERPRET=1, the kernel's own arithmetic evaluated with numpy), so its equations are
held to the torch reference on every machine where Triton is installed.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch
from backend_testing import dwbm_cells, objective_case

from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.calibration.shard import calibrate_model
from cwsc.hydro.engines import cuda as cuda_kernels
from cwsc.hydro.engines.selection import Engine, choose_engine
from cwsc.hydro.models import PARAMETERS, run_months
from cwsc.hydro.sceua import SceuaSettings
from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

CUDA = torch.cuda.is_available()
needs_triton = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None, reason="triton is not installed"
)


@pytest.fixture
def device(monkeypatch):
    if CUDA:
        return torch.device("cuda")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    return torch.device("cpu")


@needs_triton
@pytest.mark.parametrize("model", ["DWBM", "SWBM", "TVGM"])
@pytest.mark.parametrize("form", ["conserving", "seed"])
def test_triton_objective_matches_torch_in_float64(model, form, device):
    objective = "kge" if form == "conserving" else "nse"
    forcing64, target64, cell, x, w, c = objective_case(
        model, form, objective, torch.float64, columns=130 if not CUDA else 600
    )
    prm = {k: x[:, i].contiguous() for i, k in enumerate(PARAMETERS[model])}
    sim = run_months(forcing64.select(cell), prm, fused=False, months=c)["runoff"]
    ref = target64.objective(sim, cell, fused=False)

    forcing32, target32, *_ = objective_case(
        model, form, objective, torch.float32, columns=130 if not CUDA else 600
    )
    _, stacked = forcing32.block_arrays()
    sums = cuda_kernels.score_sums(
        model,
        form == "conserving",
        cell.to(device),
        stacked.to(device),
        x.T.to(torch.float32).to(device),
        c,
        w,
        target32.weight.to(device),
        target32.centred.to(device),
    )
    got = target32.objective_from_sums(sums.cpu(), cell)
    np.testing.assert_array_equal(torch.isnan(got).numpy(), torch.isnan(ref).numpy())
    fine = torch.isfinite(ref) & (ref.abs() < 10)
    assert int(fine.sum()) > 80
    assert float((got - ref)[fine].abs().max()) < 2e-4


def test_a_failing_gpu_kernel_falls_back_to_torch(monkeypatch, caplog):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("no kernel image is available for execution on the device")

    monkeypatch.setattr(cuda_kernels, "_BROKEN", False)
    monkeypatch.setattr(cuda_kernels, "score_sums", broken)
    p, e = synthetic_forcing(3, 60, seed=2)
    q = synthetic_runoff("SWBM", p, e, random_params("SWBM", 3, seed=2), noise=0.05, seed=2)
    lab = calibrate_model(
        "SWBM",
        p,
        e,
        q,
        CalibrationConfig(models=("SWBM",), sceua=SceuaSettings(max_evaluations=60)),
        engine=Engine("triton", max_columns=1 << 16),
    )
    assert calls == [1]  # tried once, then torch for the rest of the run
    assert np.all(np.isfinite(lab.kge_cal))
    assert "Triton calibration kernel failed" in caplog.text
    assert not cuda_kernels.available(torch.device("cuda"))


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
@needs_triton
def test_calibration_on_cuda_uses_the_kernel_and_matches_cpu():
    p, e, q = dwbm_cells(64, 120, seed=5)
    cfg = dict(models=("DWBM",), sceua=SceuaSettings(max_evaluations=400), seed=1)
    assert choose_engine(CalibrationConfig(device="cuda", **cfg), 64, 120).kind == "triton"
    gpu = calibrate_model("DWBM", p, e, q, CalibrationConfig(device="cuda", **cfg))
    cpu = calibrate_model("DWBM", p, e, q, CalibrationConfig(**cfg))
    assert abs(np.median(gpu.kge_cal) - np.median(cpu.kge_cal)) < 0.01
    assert os.environ.get("TRITON_INTERPRET") != "1"
