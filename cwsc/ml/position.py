"""Where each cell lies on the Earth, as extra input channels of the network.

Four channels: the sine and cosine of the latitude and of the longitude of each cell's
centre, so the network can learn what varies with place and is not in the predictors
(neighbouring cells' labels agree more than their predictors do). Sine and cosine keep
180 W and 180 E together. On a projected grid the centres are converted to longitude and
latitude (WGS 84) first; a grid without a CRS has no position.
"""

from __future__ import annotations

import numpy as np

from cwsc.io import rasters as io
from cwsc.ml.options import POSITION_MIN_CELLS

#: Names of the channels :func:`position_channels` returns, in order.
POSITION_CHANNELS = ("sine of latitude", "cosine of latitude", "sine of longitude", "cosine of longitude")


def has_position(grid: io.Grid) -> bool:
    """Whether the cells of ``grid`` can be placed on the Earth (it has a CRS)."""
    return bool(grid.crs)


def cell_lonlat(grid: io.Grid, rows: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (degrees, WGS 84) of the centres of the cells in ``rows`` (all by
    default): float64 ``(n_rows, width)`` each."""
    r0, r1, _ = (rows or slice(0, grid.height)).indices(grid.height)
    a, b, c, d, e, f = grid.transform[:6]
    rr, cc = np.meshgrid(np.arange(r0, r1) + 0.5, np.arange(grid.width) + 0.5, indexing="ij")
    x = c + a * cc + b * rr
    y = f + d * cc + e * rr
    crs = grid.rasterio_crs()
    if crs is None:
        raise ValueError("a grid without a CRS has no position")
    if crs.is_geographic:
        return x, y
    from rasterio.warp import transform

    lon, lat = transform(crs, "EPSG:4326", x.ravel(), y.ravel())
    return np.asarray(lon).reshape(x.shape), np.asarray(lat).reshape(y.shape)


def position_channels(grid: io.Grid, rows: slice | None = None) -> np.ndarray:
    """The :data:`POSITION_CHANNELS` of the cells in ``rows`` (all by default): float32
    ``(4, n_rows, width)``, each in [-1, 1]."""
    lon, lat = cell_lonlat(grid, rows)
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.sin(la), np.cos(la), np.sin(lo), np.cos(lo)]).astype(np.float32)


def use_position(requested: bool | None, cells: int, grid: io.Grid) -> tuple[bool, str]:
    """Whether the network takes the position channels, and why in a few words.

    requested: True (``--position``), False (``--no-position``) or None (decided by the
    data: on with :data:`POSITION_MIN_CELLS` labelled cells or more); cells: the labelled
    cells with valid predictors; a grid without a CRS never has a position."""
    if requested is False:
        return False, "off (--no-position)"
    if not has_position(grid):
        return False, "off: the grid has no CRS, so the cells cannot be placed on the Earth"
    if requested:
        return True, "on (--position)"
    if cells >= POSITION_MIN_CELLS:
        return True, f"on: {cells:,} labelled cells, at least {POSITION_MIN_CELLS:,}"
    return False, (
        f"off: {cells:,} labelled cells, fewer than {POSITION_MIN_CELLS:,} (on a small region "
        "the network learns the place instead of the predictors; --position to force it)"
    )
