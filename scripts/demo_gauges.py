"""Gauged catchments for the demo: squares of 2 x 2 demo cells with the area-weighted mean of
their runoff as the gauge's record, so that ``cwsc:evaluatecatchments`` can score the demo's
maps at "gauges" as the seed paper scored its map at real ones.

QGIS's Python (GDAL/OGR from ``osgeo``), no numpy 2 and no backend imports.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path


def make_gauges(data: Path, out: Path, count: int = 12) -> tuple[Path, Path]:
    """Write ``gauges.gpkg`` (polygons, field ``gauge``) and ``gauges.csv`` (``id``, ``month``,
    ``runoff`` in mm/month) into ``out`` from the demo rasters in ``data``: ``count`` squares on
    a regular lattice over the region, each on four land cells whose runoff a model made (not
    the cells whose runoff is noise)."""
    from osgeo import gdal, ogr, osr

    runoff = gdal.Open(str(data / "runoff.tif"))
    failed_ds = gdal.Open(str(data / "failed_cells.tif"))  # kept: a band outlives no dataset
    failed = failed_ds.GetRasterBand(1).ReadAsArray()
    x0, dx, _, y0, _, dy = runoff.GetGeoTransform()
    nodata = runoff.GetRasterBand(1).GetNoDataValue()
    rows, cols = failed.shape
    picked = []
    for r in range(2, rows - 2, 7):
        for c in range(2, cols - 2, 9):
            block = [(r + i, c + j) for i in (0, 1) for j in (0, 1)]
            if all(failed[i][j] == 0 for i, j in block):  # land (NaN is not 0) and not noise
                picked.append((r, c))
    picked = picked[:: max(len(picked) // count, 1)][:count]

    out.mkdir(parents=True, exist_ok=True)
    gpkg, table = out / "gauges.gpkg", out / "gauges.csv"
    driver = ogr.GetDriverByName("GPKG")
    if gpkg.exists():
        driver.DeleteDataSource(str(gpkg))
    ds = driver.CreateDataSource(str(gpkg))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    layer = ds.CreateLayer("gauges", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("gauge", ogr.OFTString))
    months = [
        b.GetDescription().split()[-1]
        for b in (runoff.GetRasterBand(k + 1) for k in range(runoff.RasterCount))
    ]
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "month", "runoff"])
        for n, (r, c) in enumerate(picked, start=1):
            gauge = f"G{n:02d}"
            left, top = x0 + c * dx, y0 + r * dy
            ring = ogr.Geometry(ogr.wkbLinearRing)
            for x, y in (
                (left, top),
                (left + 2 * dx, top),
                (left + 2 * dx, top + 2 * dy),
                (left, top + 2 * dy),
            ):
                ring.AddPoint_2D(x, y)
            ring.CloseRings()
            polygon = ogr.Geometry(ogr.wkbPolygon)
            polygon.AddGeometry(ring)
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetField("gauge", gauge)
            feature.SetGeometry(polygon)
            layer.CreateFeature(feature)
            # Cells weigh by their area: the cosine of their centre's latitude.
            weights = [math.cos(math.radians(y0 + (r + i + 0.5) * dy)) for i in (0, 1)]
            series = [runoff.ReadAsArray(c, r + i, 2, 1) for i in (0, 1)]  # (bands, 1, 2) each
            for k, month in enumerate(months):
                values = [(float(series[i][k][0][j]), weights[i]) for i in (0, 1) for j in (0, 1)]
                good = [(v, wt) for v, wt in values if v != nodata and v == v]
                value = sum(v * wt for v, wt in good) / sum(wt for _, wt in good) if good else ""
                w.writerow([gauge, month, value])
    ds = None
    return gpkg, table
