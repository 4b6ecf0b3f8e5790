"""Learning-from-runoff benchmark (``learn``): cells x months per second of a learning step.

Printed, all measured in this run, on CPU and (when present) CUDA:

1. The step the ``learn`` command repeats: a batch of 128 cells' patches through the network,
   the three models' month loops under autograd from month 0, the loss over the calibration
   months and the backward pass into the network, as cells x months per second; beside it the
   baseline, the same month loops without gradients (what one calibration evaluation costs),
   and the ratio of the two.
2. The same step with the month loop checkpointed in blocks of 24 months
   (``CHECKPOINT_MONTHS``) against full backpropagation through time: its time ratio (more
   recomputation, less memory held for the backward pass).
3. A whole small ``learn_from_arrays`` (a demo cut) in seconds per epoch.
4. The whole demo region as ``make demo`` learns it (seeds 42 and 7, every default), against
   the settings before the larger batches (:data:`OLD_SETTINGS`), alternating in this run:
   seconds of the pretraining and of the learning (the calibration of the training cells is
   the same for both and made once per seed), the ratio old / new, and the held-out cells'
   validation KGE that ``learn`` reports, each.

``CWSC_BENCH_QUICK=1`` shortens every part (part 4: a cut of the region, seed 42, few epochs;
a smoke test only: the cut has fewer training cells than one batch of either setting, so its
ratio is about 1).
"""

from __future__ import annotations

import os
import time

import numpy as np

from cwsc.machine.devices import prepare_process

prepare_process()  # before torch loads

QUICK = os.environ.get("CWSC_BENCH_QUICK") == "1"
MODELS = ("DWBM", "SWBM", "TVGM")
#: ``learn``'s settings before issue 34 item 4: cells per step of the learning and of the
#: pretraining (every other setting is the default of both).
OLD_SETTINGS = {"batch_size": 128, "pretrain_batch_size": 64}


def _step_rates(device, cells: int = 128, months: int = 240, repeats: int = 3) -> dict:
    import torch

    from cwsc.hydro.models import Forcing, run_months, runoff_with_gradients
    from cwsc.ml.network import ResNetConfig, build_network
    from cwsc.ml.physics import ParameterHead, fit_loss
    from cwsc.synthetic.forcing import synthetic_forcing

    p, e = synthetic_forcing(cells, months, seed=1)
    p = torch.tensor(p.T.copy(), dtype=torch.float32, device=device)
    e = torch.tensor(e.T.copy(), dtype=torch.float32, device=device)
    forcings = {m: Forcing(m, p, e) for m in MODELS}
    obs = p * 0.3
    head = ParameterHead(MODELS)
    net = build_network(ResNetConfig(14, 2, (16, 32, 64), False, head.outputs)).to(device)
    x = torch.randn(cells, 14, 11, 11, device=device)
    w = 24

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(checkpoint: int) -> None:
        raw = net(x)
        prm = head.parameters(raw)
        loss = sum(
            fit_loss(
                runoff_with_gradients(forcings[m], prm[m], checkpoint_months=checkpoint)[w:], obs[w:]
            ).mean()
            for m in MODELS
        )
        net.zero_grad(set_to_none=True)
        loss.backward()

    def forward_only() -> None:
        with torch.no_grad():
            prm = head.parameters(net(x))
            for m in MODELS:
                run_months(forcings[m], prm[m])

    def timed(fn, *a) -> float:
        fn(*a)  # warm-up
        sync()
        t = time.perf_counter()
        for _ in range(repeats):
            fn(*a)
        sync()
        return (time.perf_counter() - t) / repeats

    full = timed(step, 0)
    checkpointed = timed(step, 24)
    baseline = timed(forward_only)
    work = cells * months * len(MODELS)
    return {"step": work / full, "baseline": work / baseline, "checkpoint_ratio": checkpointed / full}


def _demo_cut_epoch() -> float:
    from cwsc.ml.physics import LearnConfig, learn_from_arrays
    from cwsc.synthetic.demo_region import PREDICTORS, DemoRegion, make_demo

    d = make_demo(DemoRegion(west=-10, east=(0 if QUICK else 10), south=40, north=56, years=15), 42)
    predictors = np.stack([d[k] for k in PREDICTORS]).astype(np.float32)
    epochs = 2 if QUICK else 4
    r = learn_from_arrays(
        predictors,
        d["precip_series"],
        d["pet_series"],
        d["runoff_series"],
        LearnConfig(epochs=epochs, patience=epochs, device="cpu"),
    )
    cells = r.metrics["train_cells"]
    return r.history[-1]["seconds"] / len(r.history), cells


def _demo_region_against_old(seed: int) -> dict:
    """Part 4 for one seed: {"old"|"new": {"pretraining", "learning", "val_kge"}} and the
    seconds of the calibration both start from."""
    import cwsc.ml.physics.learning as L
    from cwsc.ml.physics import LearnConfig, learn_from_arrays
    from cwsc.synthetic.demo_region import PREDICTORS, DemoRegion, make_demo

    region = DemoRegion(west=-10, east=0, south=40, north=56, years=15) if QUICK else DemoRegion()
    d = make_demo(region, seed)
    arrays = (
        np.stack([d[k] for k in PREDICTORS]).astype(np.float32),
        *(d[k].astype(np.float32) for k in ("precip_series", "pet_series", "runoff_series")),
    )
    quick = {"epochs": 4, "pretrain_epochs": 10} if QUICK else {}
    made: dict = {}
    calibrate_prior = L.calibrate_prior

    def calibrate_once(*args, **kwargs):
        t = time.perf_counter()
        made["prior"] = calibrate_prior(*args, **kwargs)
        made["seconds"] = time.perf_counter() - t
        return made["prior"]

    out: dict = {}
    for name, settings in (("old", OLD_SETTINGS), ("new", {})):
        marks: dict = {}

        def pretrained(epoch: int, epochs: int, marks: dict = marks) -> None:
            if epoch == epochs:
                marks["pretrained"] = time.perf_counter()

        config = LearnConfig(seed=seed, device="cpu", **quick, **settings)
        L.calibrate_prior = calibrate_once
        try:
            t = time.perf_counter()
            r = learn_from_arrays(*arrays, config, prior=made.get("prior"), on_pretrain=pretrained)
            end = time.perf_counter()
        finally:
            L.calibrate_prior = calibrate_prior
        start = t + (made["seconds"] if name == "old" else 0.0)
        middle = marks.get("pretrained", start)
        out[name] = {
            "pretraining": middle - start,
            "learning": end - middle,
            "val_kge": r.metrics["val_kge_test_cells"],
            "epochs": r.metrics["epochs_run"],
        }
    out["calibration"] = made.get("seconds", 0.0)
    return out


def main() -> None:
    import torch

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        r = _step_rates(device, months=120 if QUICK else 240, repeats=2 if QUICK else 3)
        print(
            f"{device.type}: learning step {r['step'] / 1e3:8.1f} k cell-months/s (3 models, "
            f"network and backward); baseline month loops without gradients "
            f"{r['baseline'] / 1e3:8.1f} k/s; step / baseline time {r['baseline'] / r['step']:.1f}x",
            flush=True,
        )
        print(
            f"{device.type}: checkpointed in blocks of 24 months / full BPTT: "
            f"{r['checkpoint_ratio']:.2f}x the time",
            flush=True,
        )
    if not torch.cuda.is_available():
        print("cuda: not measured (no CUDA)")
    seconds, cells = _demo_cut_epoch()
    print(
        f"cpu: demo cut ({cells} training cells x 180 months x 3 models): {seconds:.1f} s per "
        "epoch (the full demo region has about 4x the cells and 2x the months)"
    )
    for seed in (42,) if QUICK else (42, 7):
        r = _demo_region_against_old(seed)
        old, new = r["old"], r["new"]
        t_old, t_new = old["pretraining"] + old["learning"], new["pretraining"] + new["learning"]
        print(
            f"cpu: demo region{' (cut)' if QUICK else ''}, seed {seed}: calibration of the training "
            f"cells {r['calibration']:.0f} s (both); old settings {OLD_SETTINGS}: pretraining "
            f"{old['pretraining']:.0f} s + learning {old['learning']:.0f} s ({old['epochs']} epochs), "
            f"held-out validation KGE {old['val_kge']:.3f}; defaults: {new['pretraining']:.0f} s + "
            f"{new['learning']:.0f} s ({new['epochs']} epochs), {new['val_kge']:.3f}; old / new "
            f"time {t_old / t_new:.2f}x, with the calibration "
            f"{(t_old + r['calibration']) / (t_new + r['calibration']):.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
