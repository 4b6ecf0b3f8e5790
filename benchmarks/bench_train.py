"""Training benchmark: accuracy and speed of recipe "default" beside recipe "seed".

Printed, all measured in this run on this machine (ratios are what compare, the machine
may be shared):

1. On the synthetic twin (``cwsc.synthetic.twin``): test R2 of both recipes on the same split,
   and the training time the default recipe needs to reach the seed recipe's final test
   R2 as a fraction of the seed recipe's training time (target <= 1/4).
2. Training samples/s of the default network and recipe beside the seed's (ResNet-32,
   batch 32) on 11 x 11 patches of 13 predictors (+ the mask channel), CPU.
3. On CUDA only: samples/s for 11 x 11 x 13 patches and ResNet-32 (target >= 100,000 on
   an H100), else "not measured (no CUDA)".

   The same on the demo region of ``make demo`` (``cwsc.synthetic.demo_region``, seed 42) with its
   calibrated labels (from ``demo-output/`` when there, else calibrated in the run);
   ``CWSC_BENCH_DEMO=0`` skips it.

``CWSC_BENCH_QUICK=1``: a smaller twin and 30 seed epochs instead of 150.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from cwsc.machine.devices import prepare_process

prepare_process()  # before torch loads

QUICK = os.environ.get("CWSC_BENCH_QUICK") == "1"
KERAS_MS_PER_SAMPLE = 1.13  # the original Keras script, training epoch (issue 3)


def _time_to_reach(history: list[dict], target: float) -> float | None:
    for rec in history:
        if rec.get("test_r2") is not None and rec["test_r2"] >= target:
            return rec["seconds"]
    return None


def compare_recipes(
    predictors: np.ndarray, labels: np.ndarray, kge: np.ndarray | None, seed_epochs: int
) -> None:
    """Train both recipes on the same split and print the accuracy figures of issue 3."""
    from cwsc.ml.training import TrainConfig, train_from_arrays

    runs = {}
    for recipe, epochs in (("seed", seed_epochs), ("default", None)):
        cfg = TrainConfig(recipe=recipe, epochs=epochs, device="cpu", seed=0, track_test=True)
        t0 = time.perf_counter()
        res = train_from_arrays(predictors, labels, kge, cfg)
        wall = time.perf_counter() - t0
        h = res.histories[0]
        runs[recipe] = (res, h)
        print(
            f"  recipe {recipe:8s}: test R2 {res.metrics['test_r2']:.4f}  RMSE "
            f"{res.metrics['test_rmse']:.1f} mm  KGE {res.metrics['test_kge']:.3f}  "
            f"epochs {res.epochs_run}  train {h[-1]['seconds']:.1f} s (wall with evaluation "
            f"{wall:.1f} s)  sizes {res.sizes['train_samples']}/{res.sizes['val_samples']}/"
            f"{res.sizes['test_samples']} train/val/test",
            flush=True,
        )
    seed_res, seed_h = runs["seed"]
    def_res, def_h = runs["default"]
    target = seed_res.metrics["test_r2"]
    reach = _time_to_reach(def_h, target)
    seed_time = seed_h[-1]["seconds"]
    print(
        f"  default - seed test R2: {def_res.metrics['test_r2'] - target:+.4f} "
        f"(target >= 0: {'met' if def_res.metrics['test_r2'] >= target else 'NOT met'})"
    )
    if reach is None:
        print(f"  default never reached the seed's R2 {target:.4f}: NOT met")
    else:
        print(
            f"  time for default to reach the seed's final R2 {target:.4f}: {reach:.1f} s = "
            f"{reach / seed_time:.3f} of the seed's {seed_time:.1f} s "
            f"(target <= 0.25: {'met' if reach <= 0.25 * seed_time else 'NOT met'})"
        )


def accuracy() -> None:
    from cwsc.synthetic.twin import make_twin

    shape = (36, 36) if QUICK else (40, 40)
    twin = make_twin(shape, channels=13, seed=0)
    print(
        f"twin: {shape[0]} x {shape[1]} cells, 13 predictors, "
        f"{int(np.isfinite(twin.labels).sum())} land cells, CPU",
        flush=True,
    )
    compare_recipes(twin.predictors, twin.labels, twin.kge, 30 if QUICK else 150)


def demo_labels(data: dict) -> tuple[np.ndarray, np.ndarray, str]:
    """The demo region's calibrated CWSC labels and KGE (rows, cols): read from the last
    ``make demo`` when its output is there and matches, else calibrated here (SCE-UA with the
    demo's 300 evaluations, a couple of minutes)."""
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.calibration.driver import calibrate
    from cwsc.hydro.sceua import SceuaSettings
    from cwsc.io import rasters as io

    root = Path(__file__).resolve().parents[1] / "demo-output"
    shape = data["land"].shape
    try:
        with io.open_raster(str(root / "cwsc_labels.tif"), "LABELS") as r:
            labels = r.read()[0]
        with io.open_raster(str(root / "kge.tif"), "KGE") as r:
            kge = r.read()[0]
        if labels.shape == shape:
            return labels, kge, f"labels of the last make demo ({root})"
    except Exception:  # noqa: BLE001 - absent or unreadable: calibrate instead
        pass
    land = data["land"]
    months = data["precip_series"].shape[0]
    cells = np.flatnonzero(land.ravel())
    series = [
        data[k].reshape(months, -1)[:, cells].T for k in ("precip_series", "pet_series", "runoff_series")
    ]
    res = calibrate(*series, CalibrationConfig(sceua=SceuaSettings(max_evaluations=300)))
    labels = np.full(land.size, np.nan, np.float32)
    kge = np.full(land.size, np.nan, np.float32)
    labels[cells], kge[cells] = res.cwsc, res.kge
    return labels.reshape(shape), kge.reshape(shape), "labels calibrated in this run (300 evaluations)"


def accuracy_demo() -> None:
    from cwsc.synthetic.demo_region import PREDICTORS, DemoRegion, make_demo

    data = make_demo(DemoRegion(), 42)
    labels, kge, source = demo_labels(data)
    predictors = np.stack([data[name] for name in PREDICTORS]).astype(np.float32)
    print(
        f"demo region (seed 42): {int(data['land'].sum())} land cells, {len(PREDICTORS)} "
        f"predictors, {source}, KGE > 0, CPU",
        flush=True,
    )
    compare_recipes(predictors, labels, kge, 30 if QUICK else 150)


def throughput() -> None:
    import torch

    from cwsc.machine.devices import configure_cpu_threads
    from cwsc.ml.network import ResNetConfig, build_network
    from cwsc.ml.training import RECIPES

    configure_cpu_threads()
    rates = {}
    for name in ("seed", "default"):
        r = RECIPES[name]
        net = build_network(ResNetConfig(14, r.blocks, r.widths, r.sigmoid)).to(
            memory_format=torch.channels_last
        )
        opt = (
            torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
            if r.optimizer == "sgd"
            else torch.optim.AdamW(net.parameters(), lr=1e-3)
        )
        x = torch.randn(r.batch_size, 14, 11, 11).contiguous(memory_format=torch.channels_last)
        y = torch.rand(r.batch_size)
        steps = 6 if QUICK else 20
        best = 0.0
        for _ in range(2):  # the first round warms up the allocator and oneDNN
            t0 = time.perf_counter()
            for _ in range(steps):
                opt.zero_grad()
                torch.nn.functional.mse_loss(net(x), y).backward()
                opt.step()
            best = max(best, steps * r.batch_size / (time.perf_counter() - t0))
        rates[name] = best
        print(
            f"  CPU training, recipe {name:8s} (ResNet-{6 * r.blocks + 2} {list(r.widths)}, batch "
            f"{r.batch_size}): {best:,.0f} samples/s = {1e3 / best:.3f} ms/sample",
            flush=True,
        )
    print(
        f"  default / seed samples/s: {rates['default'] / rates['seed']:.2f}x "
        f"({torch.get_num_threads()} threads; the original Keras script: "
        f"{KERAS_MS_PER_SAMPLE} ms/sample on its machine)"
    )


def gpu_throughput() -> None:
    import torch

    if not torch.cuda.is_available():
        print("  GPU training samples/s: not measured (no CUDA)")
        return
    from cwsc.ml.network import ResNetConfig, build_network

    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    n = 131072
    x = torch.randn(n, 14, 11, 11, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.rand(n, device=dev)
    for bs in (1024, 4096):
        torch.manual_seed(0)
        net = build_network(ResNetConfig(14)).to(dev).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=True)

        def epoch(bs=bs, net=net, opt=opt) -> None:
            perm = torch.randperm(n, device=dev)
            for i in range(n // bs):
                idx = perm[i * bs : (i + 1) * bs]
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = net(x[idx])
                loss = torch.nn.functional.mse_loss(out.float(), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

        epoch()  # warm up cuDNN autotuning
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        epoch()
        epoch()
        torch.cuda.synchronize()
        rate = 2 * n / (time.perf_counter() - t0)
        print(
            f"  GPU ({torch.cuda.get_device_name()}) training ResNet-32, 11x11x13 patches (+mask), "
            f"batch {bs}, bf16, channels-last, data on the GPU: {rate:,.0f} samples/s "
            f"(target >= 100,000 on an H100)",
            flush=True,
        )


def main() -> None:
    print("accuracy on the synthetic twin (same split for both recipes)", flush=True)
    accuracy()
    if os.environ.get("CWSC_BENCH_DEMO", "1") != "0":
        print("accuracy on the demo region (same split for both recipes)", flush=True)
        accuracy_demo()
    print("training throughput", flush=True)
    throughput()
    gpu_throughput()


if __name__ == "__main__":
    main()
