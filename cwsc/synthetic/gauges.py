"""Gauged catchments for the demo region: squares of 2 x 2 demo cells whose gauge record is
the area-weighted mean of their runoff, so that ``cwsc:evaluatecatchments`` can score the
demo's maps at "gauges" as the seed paper scored its map at real ones (the rule of
``scripts/demo_gauges.py``, which ``make demo`` runs in QGIS's Python).
"""

from __future__ import annotations

import math

import numpy as np

from cwsc.io.polygons import CatchmentShape
from cwsc.io.rasters import Grid

#: The fields of the demo's gauges.gpkg and the columns of its gauges.csv.
GAUGE_FIELDS = [("gauge", "str")]
SERIES_FIELDS = [("id", "str"), ("month", "str"), ("runoff", "float")]


def demo_gauges(
    failed: np.ndarray, runoff: np.ndarray, grid: Grid, months: list[str], count: int = 12
) -> tuple[list[CatchmentShape], list[dict], list[dict]]:
    """``count`` square catchments on a regular lattice over the region, each on four land
    cells whose runoff a model made (``failed`` 0, not the cells whose runoff is noise).

    ``failed``: (rows, cols), 1 noise, 0 model runoff, NaN sea; ``runoff``: (months, rows, cols)
    mm/month; ``months``: "YYYY-MM" per band. Returns the polygons (ids G01, G02 ...), their
    records (``gauge``) and the series rows (``id``, ``month``, ``runoff`` in mm/month: the
    mean of the four cells weighted by their area, the cosine of the latitude)."""
    rows, cols = failed.shape
    picked = []
    for r in range(2, rows - 2, 7):
        for c in range(2, cols - 2, 9):
            block = failed[r : r + 2, c : c + 2]
            if np.all(block == 0):  # land (NaN is not 0) and not noise
                picked.append((r, c))
    picked = picked[:: max(len(picked) // count, 1)][:count]
    dx, _, x0, _, dy, y0 = grid.transform  # affine (a, b, c, d, e, f); dy < 0: north up
    shapes, records, series = [], [], []
    for n, (r, c) in enumerate(picked, start=1):
        gauge = f"G{n:02d}"
        left, top = x0 + c * dx, y0 + r * dy
        ring = [
            (left, top),
            (left + 2 * dx, top),
            (left + 2 * dx, top + 2 * dy),
            (left, top + 2 * dy),
            (left, top),
        ]
        shapes.append(CatchmentShape(gauge, {"type": "Polygon", "coordinates": [ring]}, grid.crs))
        records.append({"gauge": gauge})
        weights = np.array([math.cos(math.radians(y0 + (r + i + 0.5) * dy)) for i in (0, 1)])
        block = runoff[:, r : r + 2, c : c + 2]  # (months, 2, 2)
        w = np.broadcast_to(weights[None, :, None], block.shape)
        good = np.isfinite(block)
        total = np.where(good, block * w, 0.0).sum(axis=(1, 2))
        weight = np.where(good, w, 0.0).sum(axis=(1, 2))
        for k, month in enumerate(months):
            value = float(total[k] / weight[k]) if weight[k] > 0 else None
            series.append({"id": gauge, "month": month, "runoff": value})
    return shapes, records, series
