"""Shared helpers for the backend tests: real GeoTIFFs written with rasterio, real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def write_tif(path, data, transform=(0.5, 0, -10.0, 0, -0.5, 60.0), crs="EPSG:4326",
              nodata=-9999.0, descriptions=None):
    """Write float ``data`` (rows, cols) or (bands, rows, cols) with NaN as nodata."""
    import rasterio
    from affine import Affine

    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype="float32", crs=crs, transform=Affine(*transform),
                       nodata=nodata) as dst:
        dst.write(np.where(np.isfinite(data), data, nodata).astype(np.float32))
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
    return Path(path)


def read_tif(path):
    import rasterio

    with rasterio.open(path) as src:
        data = src.read().astype(np.float32)
        if src.nodata is not None:
            data[data == src.nodata] = np.nan
        return data, src.profile, list(src.descriptions)


def run_backend(*args, timeout=600, **kwargs):
    """Run ``python -m backend`` as the plugin does; returns (exit code, events, stderr)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "backend", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env, **kwargs)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, events, proc.stderr


def last_event(events, kind):
    matches = [e for e in events if e["event"] == kind]
    return matches[-1] if matches else None


@pytest.fixture
def tif(tmp_path):
    def make(name, data, **kw):
        return write_tif(tmp_path / name, data, **kw)
    return make
