"""Prediction benchmark: speed per cell, GPU global grid, and bounded memory on a huge grid.

Printed, all measured in this run:

1. CPU network time per cell (11 x 11 patches of 13 predictors + mask) for the default
   network beside the seed's ResNet-32, and the end-to-end rate of ``predict_raster``
   (read, patches, network, write) on a small grid. Target: default <= 0.135 ms/cell
   (half the original Keras script's 0.27 ms/cell).
2. On CUDA only: the 720 x 360 global grid (259,200 cells) end to end (target <= 2 s on an
   H100), else "not measured (no CUDA)".
3. Memory: a 20,000 x 20,000 x 13 predictor GeoTIFF is written to disk, then
   ``python -m cwsc predict`` reads and writes the whole grid strip by strip in a
   child process whose peak RSS is reported (target < 2 GB). Only a narrow band of columns
   holds valid predictors (the rest is nodata) so the network part stays short on CPU;
   every strip is still read, padded, scanned and written. ``CWSC_BENCH_QUICK=1`` uses
   4,000 x 4,000.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cwsc.machine.devices import prepare_process

prepare_process()  # before torch loads

QUICK = os.environ.get("CWSC_BENCH_QUICK") == "1"
KERAS_MS_PER_CELL = 0.27
ROOT = Path(__file__).resolve().parents[1]


def _bundle(recipe: str, channels: int = 13, members: int = 1):
    from cwsc.ml.modelfile import ModelBundle
    from cwsc.ml.network import ResNetConfig, build_network
    from cwsc.ml.patches import Scaling
    from cwsc.ml.training import RECIPES

    r = RECIPES[recipe]
    cfg = ResNetConfig(channels + 1, r.blocks, r.widths, r.sigmoid)
    states = [build_network(cfg).state_dict() for _ in range(members)]
    sc = Scaling(
        "standard" if recipe == "default" else "patch_minmax",
        np.zeros(channels, np.float32),
        np.ones(channels, np.float32),
        150.0,
        80.0,
    )
    # No training grid recorded: the benchmark grids have several resolutions.
    return ModelBundle(states, cfg, sc, [f"p{i:02d}" for i in range(channels)], 11, {}, {"name": recipe})


def _write_predictors(
    path: Path, height: int, width: int, channels: int = 13, valid_cols: slice | None = None, seed: int = 0
) -> int:
    """A tiled, compressed 13-band GeoTIFF written strip by strip; returns the valid cells."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    prof = dict(
        driver="GTiff",
        width=width,
        height=height,
        count=channels,
        dtype="float32",
        crs="EPSG:4326",
        transform=from_origin(-180, 90, 360 / width, 180 / height),
        nodata=-9999.0,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        zlevel=1,
        BIGTIFF="YES",
    )
    valid = 0
    with rasterio.open(path, "w", **prof) as dst:
        for r0 in range(0, height, 256):
            h = min(256, height - r0)
            if valid_cols is None:
                block = rng.normal(0, 1, (channels, h, width)).astype(np.float32)
                valid += h * width
            else:
                block = np.full((channels, h, width), -9999.0, np.float32)
                n = valid_cols.stop - valid_cols.start
                block[:, :, valid_cols] = rng.normal(0, 1, (channels, h, n))
                valid += h * n
            dst.write(block, window=Window(0, r0, width, h))
        for i in range(channels):
            dst.set_band_description(i + 1, f"p{i:02d}")
    return valid


def network_speed() -> None:
    import torch

    from cwsc.machine.devices import configure_cpu_threads

    configure_cpu_threads()
    ms = {}
    n = 2048 if QUICK else 8192
    x = torch.randn(n, 14, 11, 11).contiguous(memory_format=torch.channels_last)
    for recipe in ("seed", "default"):
        net = _bundle(recipe).networks("cpu")[0]
        best = 1e9
        with torch.inference_mode():
            net(x[:256])
            for _ in range(3):
                t0 = time.perf_counter()
                for i in range(0, n, 2048):
                    net(x[i : i + 2048])
                best = min(best, time.perf_counter() - t0)
        ms[recipe] = best / n * 1e3
        c = net.config
        print(
            f"  CPU network, recipe {recipe:8s} (ResNet-{c.depth} {list(c.widths)}): "
            f"{ms[recipe]:.4f} ms/cell = {1e3 / ms[recipe]:,.0f} cells/s",
            flush=True,
        )
    print(
        f"  default / seed time per cell: {ms['default'] / ms['seed']:.3f} "
        f"({torch.get_num_threads()} threads); default {ms['default']:.4f} ms/cell against the "
        f"target 0.135 ms/cell: {'met' if ms['default'] <= 0.135 else 'NOT met'} on this CPU now"
    )


def end_to_end_cpu(tmp: Path) -> None:
    from cwsc.ml.predict import predict_raster

    h, w = (100, 150) if QUICK else (180, 360)
    path = tmp / "small.tif"
    cells = _write_predictors(path, h, w)
    b = _bundle("default")
    out = predict_raster(b, [str(path)], tmp / "small_out.tif", device="cpu")
    assert out["cells_predicted"] == cells
    print(
        f"  CPU predict_raster end to end, default network, {w} x {h} grid: "
        f"{out['seconds']:.2f} s = {out['seconds'] / cells * 1e3:.4f} ms/cell (with I/O)",
        flush=True,
    )


def gpu_global(tmp: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        print("  GPU global grid (259,200 cells): not measured (no CUDA)")
        return
    from cwsc.ml.predict import predict_raster

    path = tmp / "global.tif"
    cells = _write_predictors(path, 360, 720)
    for recipe in ("default", "seed"):
        b = _bundle(recipe)
        predict_raster(b, [str(path)], tmp / "warm.tif", device="cuda")  # cuDNN autotuning
        out = predict_raster(b, [str(path)], tmp / f"global_{recipe}.tif", device="cuda")
        print(
            f"  GPU ({torch.cuda.get_device_name()}) global grid {cells:,} cells, recipe {recipe} "
            f"network, end to end with GeoTIFF I/O: {out['seconds']:.2f} s (target <= 2 s)",
            flush=True,
        )


def memory(tmp: Path) -> None:
    import resource  # noqa: F401 - Linux/macOS only; wait4 below gives the child's peak RSS

    size = 4000 if QUICK else 20000
    path = tmp / "huge.tif"
    t0 = time.perf_counter()
    mid = size // 2
    valid = _write_predictors(path, size, size, valid_cols=slice(mid - 2, mid + 2))
    gb = path.stat().st_size / 1e9
    print(
        f"  wrote {size:,} x {size:,} x 13 predictors ({size * size * 13 * 4 / 1e9:.1f} GB as "
        f"float32, {gb:.2f} GB compressed) in {time.perf_counter() - t0:.0f} s; "
        f"{valid:,} valid cells",
        flush=True,
    )
    from cwsc.ml.modelfile import save_model

    model = save_model(tmp / "m.pt", _bundle("default"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cwsc",
            "predict",
            "--model",
            str(model),
            "--predictors",
            str(path),
            "--out",
            str(tmp / "huge_out.tif"),
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    rss_gb = usage.ru_maxrss * 1024 / 1e9  # KiB on Linux
    ok = os.waitstatus_to_exitcode(status) == 0 and '"result"' in out
    print(
        f"  predict {size:,} x {size:,} x 13 in a child process: {'ok' if ok else 'FAILED'}, "
        f"{time.perf_counter() - t0:.0f} s, peak RSS {rss_gb:.2f} GB (target < 2 GB: "
        f"{'met' if rss_gb < 2 else 'NOT met'})",
        flush=True,
    )
    if not ok:
        print(out[-2000:])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cwsc-bench-") as d:
        tmp = Path(d)
        print("prediction speed", flush=True)
        network_speed()
        end_to_end_cpu(tmp)
        gpu_global(tmp)
        print("memory", flush=True)
        memory(tmp)


if __name__ == "__main__":
    main()
