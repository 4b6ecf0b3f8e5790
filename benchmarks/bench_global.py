"""The global case through the calibrate command: every land cell of a 0.5 degree grid.

720 x 360 cells, the land cells of ``global_land_mask`` (about 61,000 at 0.5 degree),
360 months of synthetic forcing and runoff, the three models, default settings, every core
(or CUDA when present, the Triton objective): the wall time of the whole command and the
peak RSS of the command and of its largest worker.

Long on a CPU (a quarter of an hour or more on 2 cores), so it runs only with CWSC_BENCH_GLOBAL=1 there;
on CUDA it always runs (target: the whole run in 60 s on an H200). CWSC_BENCH_QUICK=1 keeps
one cell in ten.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

QUICK = os.environ.get("CWSC_BENCH_QUICK", "0") == "1"
MONTHS = 360


def write_global_case(folder: Path) -> tuple[list[str], int]:
    """The three forcing files of the global case; (their command options, land cells)."""
    import rasterio
    from global_land_mask import globe
    from rasterio.transform import from_origin

    from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

    width, height = 720, 360
    lat = 89.75 - 0.5 * np.arange(height)
    lon = -179.75 + 0.5 * np.arange(width)
    land = globe.is_land(*np.meshgrid(lat, lon, indexing="ij")).ravel()
    if QUICK:
        land &= (np.arange(land.size) % 10) == 0
    cells = int(land.sum())
    p, e = synthetic_forcing(cells, MONTHS, seed=2)
    q = synthetic_runoff("DWBM", p, e, random_params("DWBM", cells, seed=2), noise=0.15, seed=2)
    profile = dict(
        driver="GTiff",
        width=width,
        height=height,
        count=MONTHS,
        dtype="float32",
        crs="EPSG:4326",
        transform=from_origin(-180, 90, 0.5, 0.5),
        nodata=-9999.0,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    )
    args = []
    for name, data in (("precip", p), ("pet", e), ("runoff", q)):
        path = folder / f"{name}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            band = np.full(width * height, -9999.0, np.float32)
            for b in range(MONTHS):
                band[land] = data[:, b]
                dst.write(band.reshape(height, width), b + 1)
        args += [f"--{name}", str(path)]
    return args, cells


def main() -> None:
    import torch

    from benchmarks.bench_scaling import _outputs, _run

    cuda = torch.cuda.is_available()
    if not cuda and os.environ.get("CWSC_BENCH_GLOBAL") != "1":
        print(
            "global case on the CPU: skipped (a quarter of an hour or more on 2 cores); "
            "CWSC_BENCH_GLOBAL=1 runs it"
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        args, cells = write_global_case(tmp)
        r = _run(args + _outputs(tmp / "out") + ["--out-details", str(tmp / "out" / "details.tif")])
        m = r["metrics"]
        where = f"CUDA ({torch.cuda.get_device_name()})" if cuda else f"CPU, {m.get('workers')} workers"
        print(
            f"global case, {cells} land cells x {MONTHS} months x 3 models on {where}: "
            f"{r['seconds']:.0f} s for the whole command ({m.get('engine')}; "
            f"target {'<= 60 s on an H200' if cuda else 'no slower than 13 min 16 s on 2 cores'}), "
            f"peak RSS command {r['command']:.0f} MiB, largest worker {r['worker']:.0f} MiB "
            f"(target <= 1 GB), median KGE {m.get('median_kge')}"
        )
