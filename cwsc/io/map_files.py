"""The CWSC map as the files GIS, web and model users expect.

- :func:`to_cog`: a finished GeoTIFF rewritten in GDAL's Cloud-Optimised GeoTIFF layout
  (tiled, internal overviews by averaging, the header and overviews first, ``LAYOUT=COG``),
  so web maps and cloud readers fetch only the tiles they show.
- :func:`write_cf_netcdf`: CF-1.8 NetCDF of one or more layers of a GeoTIFF, with latitude /
  longitude (or projected x / y) coordinates, a ``grid_mapping`` variable, units and long
  names, compressed: what distributed models (mHM, Wflow) read parameter maps from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

#: Rows written per NetCDF strip (bounded memory for any grid).
NETCDF_STRIP_ROWS = 512


#: The suffix of a map file's staged copy beside its temporary (removed with it).
STAGE_SUFFIX = ".stage"


def to_cog(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy the GeoTIFF ``source`` to ``target`` as a Cloud-Optimised GeoTIFF (band
    descriptions, units, nodata and tags kept)."""
    import rasterio
    from rasterio.shutil import copy

    with rasterio.Env(GDAL_CACHEMAX=64):
        copy(
            str(source),
            str(target),
            driver="COG",
            COMPRESS="DEFLATE",
            PREDICTOR="YES",
            BLOCKSIZE=512,
            OVERVIEW_RESAMPLING="AVERAGE",
            BIGTIFF="IF_SAFER",
            NUM_THREADS="ALL_CPUS",
        )
    return Path(target)


def _crs_attributes(crs) -> dict:
    """The CF ``grid_mapping`` attributes of a rasterio CRS: the WKT (``crs_wkt``, CF's own,
    and ``spatial_ref``, which GDAL and QGIS read), and the mapping name of a geographic CRS."""
    wkt = crs.to_wkt()
    attrs = {"crs_wkt": wkt, "spatial_ref": wkt}
    if crs.is_geographic:
        attrs["grid_mapping_name"] = "latitude_longitude"
    return attrs


def write_cf_netcdf(
    target: str | os.PathLike, layers: Sequence[tuple[str | os.PathLike, int, str, str, str]], title: str
) -> Path:
    """Write bands of GeoTIFFs on one grid to ``target`` as CF-1.8 NetCDF.

    layers: (GeoTIFF, band (1-based), variable name, long name, units) per variable; the
    grid and CRS are the first GeoTIFF's. The GeoTIFF's nodata becomes NaN, the fill value.
    Rows are written north to south as the raster has them, with their (descending)
    latitudes: CF readers such as xarray and QGIS place them by the coordinates.
    """
    import contextlib

    import netCDF4
    import rasterio

    from cwsc import __version__

    with contextlib.ExitStack() as stack:
        sources = [stack.enter_context(rasterio.open(layer[0])) for layer in layers]
        src = sources[0]
        width, height, t = src.width, src.height, src.transform
        for other, layer in zip(sources, layers):
            if (other.width, other.height, other.transform) != (width, height, t):
                raise ValueError(f"{layer[0]} is not on the grid of {layers[0][0]}")
        x = t.c + t.a * (np.arange(width) + 0.5)
        y = t.f + t.e * (np.arange(height) + 0.5)
        geographic = src.crs is not None and src.crs.is_geographic
        nc = stack.enter_context(netCDF4.Dataset(target, "w", format="NETCDF4"))
        nc.Conventions = "CF-1.8"
        nc.title = title
        nc.source = f"CWSC toolkit backend {__version__}"
        ydim, xdim = ("lat", "lon") if geographic else ("y", "x")
        nc.createDimension(ydim, height)
        nc.createDimension(xdim, width)
        vy = nc.createVariable(ydim, "f8", (ydim,))
        vx = nc.createVariable(xdim, "f8", (xdim,))
        vy[:], vx[:] = y, x
        if geographic:
            vy.standard_name, vy.long_name, vy.units = "latitude", "latitude", "degrees_north"
            vx.standard_name, vx.long_name, vx.units = "longitude", "longitude", "degrees_east"
        else:
            vy.standard_name, vy.long_name, vy.units = (
                "projection_y_coordinate",
                "y coordinate of projection",
                "m",
            )
            vx.standard_name, vx.long_name, vx.units = (
                "projection_x_coordinate",
                "x coordinate of projection",
                "m",
            )
        mapping = nc.createVariable("crs", "i4")
        if src.crs is not None:
            mapping.setncatts(_crs_attributes(src.crs))
        mapping.GeoTransform = " ".join(str(v) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
        chunk = (min(height, 256), min(width, 256))
        variables = []
        for _, _, name, long_name, units in layers:
            v = nc.createVariable(
                name,
                "f4",
                (ydim, xdim),
                zlib=True,
                complevel=4,
                shuffle=True,
                chunksizes=chunk,
                fill_value=np.float32(np.nan),
            )
            v.long_name, v.units, v.grid_mapping = long_name, units, "crs"
            variables.append(v)
        for r0 in range(0, height, NETCDF_STRIP_ROWS):
            r1 = min(height, r0 + NETCDF_STRIP_ROWS)
            window = rasterio.windows.Window(0, r0, width, r1 - r0)
            for reader, (_, band, *_), v in zip(sources, layers, variables):
                data = reader.read(band, window=window).astype(np.float32)
                if reader.nodata is not None:
                    data[data == np.float32(reader.nodata)] = np.nan
                v[r0:r1, :] = data
    return Path(target)


def stage_path(temporary: str | os.PathLike) -> Path:
    """Where a map is written before it is rewritten as a COG: beside its temporary, with a
    suffix that :mod:`cwsc.runtime.outputs` removes with it (and cleans after a killed run)."""
    return Path(str(temporary) + STAGE_SUFFIX)
