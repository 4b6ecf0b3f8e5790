"""cwsc.io.polygons: catchment polygons read, made valid, measured and shared out among raster cells."""

from __future__ import annotations

import json
import logging
import math

import fiona
import numpy as np
import pytest
import rasterio
from affine import Affine
from fiona.crs import CRS
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import shape as shapely_shape

from cwsc.errors import GridMismatch, InputFileError
from cwsc.io import polygons as P

WGS84 = CRS.from_epsg(4326).to_wkt()
LAEA = CRS.from_epsg(3035).to_wkt()
#: a 1 km grid in EPSG:3035, north-up, 100 x 100 cells from (4,000,000, 3,000,000)
GRID = (1000.0, 0.0, 4_000_000.0, 0.0, -1000.0, 3_000_000.0)


def box(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def poly(*rings):
    return {"type": "Polygon", "coordinates": [list(r) for r in rings]}


def km(x, y):
    """A point of GRID given in cells from its top-left corner (x right, y down)."""
    return (GRID[2] + 1000.0 * x, GRID[5] - 1000.0 * y)


def write_vector(path, features, crs="EPSG:4326", driver=None, id_type="int", geometry="Polygon"):
    schema = {"geometry": geometry, "properties": {"gauge": id_type, "name": "str"}}
    with fiona.open(
        path, "w", driver=driver, schema=schema, crs=CRS.from_user_input(crs) if crs else None
    ) as dst:
        for gid, geom in features:
            dst.write(
                fiona.Feature(
                    geometry=fiona.Geometry.from_dict(geom) if geom is not None else None,
                    properties=fiona.Properties(gauge=gid, name=f"river {gid}"),
                )
            )
    return path


def write_raster(path, data, transform, crs):
    data = np.asarray(data, dtype="float32")
    with rasterio.open(
        path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
        dtype="float32", transform=Affine(*transform), crs=crs, nodata=-9999.0,
    ) as dst:  # fmt: skip
        dst.write(np.where(np.isnan(data), -9999.0, data).astype("float32"))
    return path


# ---------------------------------------------------------------------------------------
# reference: Sutherland-Hodgman clipping of a ring against one rectangle


def shoelace(points):
    xy = np.asarray(points, dtype=float)
    x, y = xy[:, 0] - xy[0, 0], xy[:, 1] - xy[0, 1]
    return abs(0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)))


def _clip(ring, x0, y0, x1, y1):
    pts = list(ring[:-1]) if ring[0] == ring[-1] else list(ring)
    for inside, cut in (
        (lambda p: p[0] >= x0, lambda p, q: (x0, p[1] + (q[1] - p[1]) * (x0 - p[0]) / (q[0] - p[0]))),
        (lambda p: p[0] <= x1, lambda p, q: (x1, p[1] + (q[1] - p[1]) * (x1 - p[0]) / (q[0] - p[0]))),
        (lambda p: p[1] >= y0, lambda p, q: (p[0] + (q[0] - p[0]) * (y0 - p[1]) / (q[1] - p[1]), y0)),
        (lambda p: p[1] <= y1, lambda p, q: (p[0] + (q[0] - p[0]) * (y1 - p[1]) / (q[1] - p[1]), y1)),
    ):
        out = []
        for i, q in enumerate(pts):
            p = pts[i - 1]
            if inside(q):
                if not inside(p):
                    out.append(cut(p, q))
                out.append(q)
            elif inside(p):
                out.append(cut(p, q))
        pts = out
        if not pts:
            return 0.0
    return shoelace(pts)


def reference_fractions(geometry, transform, shape):
    a, _, c, _, e, f = transform
    out = np.zeros(shape)
    # about the raster's corner, so that large coordinates lose no precision
    rings = [[(x - c, y - f) for x, y in ring] for ring in geometry["coordinates"]]
    for r in range(shape[0]):
        for k in range(shape[1]):
            xs, ys = sorted((a * k, a * (k + 1))), sorted((e * r, e * (r + 1)))
            inside = _clip(rings[0], xs[0], ys[0], xs[1], ys[1]) - sum(
                _clip(h, xs[0], ys[0], xs[1], ys[1]) for h in rings[1:]
            )
            out[r, k] = inside / abs(a * e)
    return out


def dense(cover, shape):
    out = np.zeros(shape)
    out[cover.rows, cover.cols] = cover.fractions
    return out


# ---------------------------------------------------------------------------------------
# read_catchments


@pytest.mark.parametrize(
    ("name", "driver"), [("c.gpkg", "GPKG"), ("c.shp", "ESRI Shapefile"), ("c.geojson", "GeoJSON")]
)
def test_read_catchments_every_format(tmp_path, name, driver):
    multi = {"type": "MultiPolygon", "coordinates": [[box(0, 0, 1, 1)], [box(2, 0, 3, 1)]]}
    geometry = "Unknown" if driver != "ESRI Shapefile" else "Polygon"
    path = write_vector(
        tmp_path / name, [(7, poly(box(0, 0, 1, 1))), (12, multi)], driver=driver, geometry=geometry
    )
    shapes, problems = P.read_catchments(path, "gauge")
    assert problems == []
    assert [s.id for s in shapes] == ["7", "12"]
    assert shapes[0].geometry["type"] == "Polygon"
    assert shapes[1].geometry["type"] == "MultiPolygon"
    assert CRS.from_wkt(shapes[0].crs_wkt).to_epsg() == 4326
    assert P.area_km2(shapes[1].geometry, shapes[1].crs_wkt) == pytest.approx(2 * 12308.46, rel=1e-4)
    # case-insensitive field name
    assert [s.id for s in P.read_catchments(path, "GAUGE")[0]] == ["7", "12"]
    if driver == "GPKG":  # the feature id, which QGIS lists as a field "fid"
        assert [s.id for s in P.read_catchments(path, "fid")[0]] == ["1", "2"]


def test_read_catchments_string_ids_and_empty_geometry(tmp_path):
    path = write_vector(
        tmp_path / "c.gpkg", [("A-1", poly(box(0, 0, 1, 1))), ("B 2", None)], driver="GPKG", id_type="str"
    )
    shapes, problems = P.read_catchments(path, "gauge")
    assert [s.id for s in shapes] == ["A-1"]
    assert [p.id for p in problems] == ["B 2"]
    assert (
        "c.gpkg" in problems[0].reason and "B 2" in problems[0].reason and "no geometry" in problems[0].reason
    )


def test_read_catchments_layers(tmp_path, caplog):
    path = tmp_path / "two.gpkg"
    schema = {"geometry": "Polygon", "properties": {"gauge": "str"}}
    for layer, gid in (("first", "a"), ("second", "b")):
        with fiona.open(path, "w", driver="GPKG", schema=schema, crs=CRS.from_epsg(4326), layer=layer) as dst:
            dst.write(
                fiona.Feature(
                    geometry=fiona.Geometry.from_dict(poly(box(0, 0, 1, 1))), properties={"gauge": gid}
                )
            )
    with caplog.at_level(logging.WARNING, logger="cwsc.io.polygons"):
        assert [s.id for s in P.read_catchments(path, "gauge")[0]] == ["a"]
    assert "two.gpkg' has 2 layers (first, second)" in caplog.text
    assert [s.id for s in P.read_catchments(path, "gauge", layer="second")[0]] == ["b"]
    with pytest.raises(InputFileError, match=r"two\.gpkg' has no layer 'third'; its layers: first, second"):
        P.read_catchments(path, "gauge", layer="third")


def test_read_catchments_refusals(tmp_path):
    good = poly(box(0, 0, 1, 1))
    path = write_vector(tmp_path / "c.gpkg", [(1, good)], driver="GPKG")
    with pytest.raises(InputFileError, match=r"c\.gpkg'.*no field 'basin'.*gauge, name"):
        P.read_catchments(path, "basin")
    with pytest.raises(InputFileError, match=r"nothere\.gpkg.*no such file"):
        P.read_catchments(tmp_path / "nothere.gpkg", "gauge")
    bad = tmp_path / "bad.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(InputFileError, match=r"bad\.gpkg.*cannot be read"):
        P.read_catchments(bad, "gauge")

    dup = write_vector(
        tmp_path / "dup.gpkg", [(1, good), (2, good), (1, good), (3, good), (3, good)], driver="GPKG"
    )
    with pytest.raises(InputFileError, match=r"dup\.gpkg.*duplicated ids.*1, 3"):
        P.read_catchments(dup, "gauge")

    noid = write_vector(tmp_path / "noid.gpkg", [(1, good), (None, good)], driver="GPKG")
    with pytest.raises(InputFileError, match=r"noid\.gpkg.*feature 2.*no value in the id field 'gauge'"):
        P.read_catchments(noid, "gauge")

    line = {"type": "LineString", "coordinates": [(0, 0), (1, 1)]}
    lines = write_vector(tmp_path / "lines.gpkg", [(1, good), (5, line)], driver="GPKG", geometry="Unknown")
    with pytest.raises(InputFileError, match=r"lines\.gpkg.*not a polygon: 5 \(a LineString\)"):
        P.read_catchments(lines, "gauge")

    nocrs = write_vector(tmp_path / "nocrs.shp", [(1, good)], crs=None, driver="ESRI Shapefile")
    with pytest.raises(InputFileError, match=r"nocrs\.shp' has no CRS"):
        P.read_catchments(nocrs, "gauge")


# ---------------------------------------------------------------------------------------
# area_km2


def quadrangle(lat0, lat1, width):
    """km2 on the WGS84 ellipsoid between two latitudes over ``width`` degrees of longitude,
    computed here independently of the module."""
    a, e2 = 6378137.0, 6.69437999014e-3
    e = math.sqrt(e2)

    def q(phi):
        s = math.sin(math.radians(phi))
        return s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return 0.5 * a * a * (1 - e2) * math.radians(width) * abs(q(lat1) - q(lat0)) / 1e6


@pytest.mark.parametrize("lat", [0.0, 30.0, 60.0, -45.0])
def test_area_of_one_degree_cells(lat):
    expected = quadrangle(lat, lat + 1, 1.0)
    got = P.area_km2(poly(box(10, lat, 11, lat + 1)), WGS84)
    assert got == pytest.approx(expected, rel=1e-3)
    if lat == 0.0:
        assert got == pytest.approx(12308, rel=1e-3)
    if lat == 60.0:
        assert got == pytest.approx(6123, rel=1e-3)


def test_area_holes_parts_and_projected_crs():
    outer, hole = box(0, 0, 2, 2), box(0.5, 0.5, 1.5, 1.5)
    whole = P.area_km2(poly(outer), WGS84)
    assert P.area_km2(poly(outer, hole), WGS84) == pytest.approx(
        whole - P.area_km2(poly(hole), WGS84), rel=1e-9
    )
    multi = {"type": "MultiPolygon", "coordinates": [[box(0, 0, 1, 1)], [box(0, 60, 1, 61)]]}
    assert P.area_km2(multi, WGS84) == pytest.approx(12308.46 + 6123.14, rel=1e-4)
    # EPSG:3035 is equal-area (GRS80, practically WGS84): a 100 km square is 10,000 km2
    square = poly(box(4_321_000, 3_210_000, 4_421_000, 3_310_000))
    assert P.area_km2(square, LAEA) == pytest.approx(10_000.0, rel=1e-4)


# ---------------------------------------------------------------------------------------
# cell_fractions


def test_square_on_whole_cells_and_offset_by_half_a_cell():
    cover = P.cell_fractions(poly(box(*km(2, 5), *km(5, 3))), LAEA, GRID, LAEA, (100, 100))
    assert sorted(zip(cover.rows.tolist(), cover.cols.tolist())) == [
        (r, c) for r in (3, 4) for c in (2, 3, 4)
    ]
    np.testing.assert_allclose(cover.fractions, 1.0)
    np.testing.assert_allclose(cover.cell_km2, 1.0)
    assert cover.inside == pytest.approx(1.0)
    assert cover.window() == (slice(3, 5), slice(2, 5))

    cover = P.cell_fractions(poly(box(*km(2.5, 5.5), *km(5.5, 3.5))), LAEA, GRID, LAEA, (100, 100))
    grid = dense(cover, (100, 100))[3:6, 2:6]
    np.testing.assert_allclose(grid, [[0.25, 0.5, 0.5, 0.25], [0.5, 1, 1, 0.5], [0.25, 0.5, 0.5, 0.25]])
    assert cover.area_km2 == pytest.approx(6.0)


@pytest.mark.parametrize(
    "geometry",
    [
        poly([km(1.2, 1.3), km(7.9, 2.1), km(3.3, 8.8), km(1.2, 1.3)]),  # triangle
        poly([km(1, 1), km(9, 1), km(9, 3.5), km(3.5, 3.5), km(3.5, 9), km(1, 9), km(1, 1)]),  # concave L
        poly(box(*km(0.5, 9.5), *km(9.5, 0.5)), box(*km(3.2, 6.7), *km(6.1, 2.6))),  # hole
        poly(
            [km(9.5, 0.2), km(0.3, 0.7), km(4.4, 4.4), km(0.2, 9.1), km(9.3, 9.9), km(6.1, 5.0), km(9.5, 0.2)]
        ),
    ],
    ids=["triangle", "L", "hole", "concave"],
)
def test_fractions_match_clipping_each_cell(geometry):
    shape = (12, 12)
    cover = P.cell_fractions(geometry, LAEA, GRID, LAEA, shape)
    # exactextract keeps each fraction in single precision (about 1e-7 of a cell)
    np.testing.assert_allclose(
        dense(cover, shape), reference_fractions(geometry, GRID, shape), rtol=1e-7, atol=1e-9
    )
    assert cover.area_km2 == pytest.approx(shapely_shape(geometry).area / 1e6, rel=1e-7)


def test_random_concave_polygons_and_flipped_grids():
    rng = np.random.default_rng(3)
    shape = (10, 10)
    south_up = (1000.0, 0.0, 4_000_000.0, 0.0, 1000.0, 2_990_000.0)
    east_left = (-1000.0, 0.0, 4_010_000.0, 0.0, -1000.0, 3_000_000.0)
    for _ in range(6):
        n = int(rng.integers(5, 30))
        angle = np.sort(rng.uniform(0, 2 * np.pi, n))
        radius = rng.uniform(500, 6000, n)
        pts = [(4_005_000 + r * math.cos(a), 2_995_000 + r * math.sin(a)) for a, r in zip(angle, radius)]
        pts = pts[::-1] if rng.random() < 0.5 else pts  # either orientation
        geometry = poly(pts + [pts[0]])
        for t in (GRID, south_up, east_left):
            got = dense(P.cell_fractions(geometry, LAEA, t, LAEA, shape), shape)
            np.testing.assert_allclose(got, reference_fractions(geometry, t, shape), atol=1e-9)


def test_multipolygon_parts_partly_off_the_raster_and_off_it():
    multi = {
        "type": "MultiPolygon",
        "coordinates": [[box(*km(0, 1), *km(1, 0))], [box(*km(-2, 4), *km(2, 3))]],
    }
    cover = P.cell_fractions(multi, LAEA, GRID, LAEA, (100, 100))
    assert sorted(zip(cover.rows.tolist(), cover.cols.tolist())) == [(0, 0), (3, 0), (3, 1)]
    assert cover.area_km2 == pytest.approx(3.0)
    assert cover.inside == pytest.approx(3.0 / 5.0)

    huge = P.cell_fractions(poly(box(*km(-50, 300), *km(400, -70))), LAEA, GRID, LAEA, (20, 30))
    np.testing.assert_allclose(dense(huge, (20, 30)), 1.0)
    assert huge.inside == pytest.approx(600 / (450 * 370))

    off = P.cell_fractions(poly(box(*km(200, 5), *km(203, 3))), LAEA, GRID, LAEA, (100, 100))
    assert off.empty and off.inside == 0.0
    shapes = [
        P.CatchmentShape("far", poly(box(*km(200, 5), *km(203, 3))), LAEA),
        P.CatchmentShape("near", multi, LAEA),
    ]
    covers, problems = P.cover_catchments(shapes, GRID, LAEA, (100, 100), "cwsc.tif")
    assert list(covers) == ["near"]
    assert problems == [P.NotScored("far", "catchment far lies outside the raster 'cwsc.tif'")]


def test_rotated_and_crsless_rasters_refused():
    rotated = (1000.0, 10.0, 4_000_000.0, 10.0, -1000.0, 3_000_000.0)
    with pytest.raises(GridMismatch, match="catchment 9.*rotated"):
        P.cell_fractions(poly(box(*km(0, 1), *km(1, 0))), LAEA, rotated, LAEA, (10, 10), where="catchment 9")
    with pytest.raises(GridMismatch, match="no CRS"):
        P.cell_fractions(poly(box(*km(0, 1), *km(1, 0))), LAEA, GRID, "", (10, 10))


def test_geographic_polygon_on_projected_raster(tmp_path):
    path = write_raster(
        tmp_path / "laea.tif",
        np.ones((1, 200, 200)),
        (1000.0, 0, 4_250_000.0, 0, -1000.0, 3_150_000.0),
        "EPSG:3035",
    )
    with rasterio.open(path) as ds:
        transform, crs, shape = tuple(ds.transform)[:6], ds.crs.to_wkt(), ds.shape
    geometry = poly(box(10.0, 50.0, 11.0, 51.0))  # about 7,900 km2 in the raster's middle
    cover = P.cell_fractions(geometry, WGS84, transform, crs, shape)
    assert len(cover) > 7000
    assert cover.inside == pytest.approx(1.0)
    assert cover.area_km2 == pytest.approx(P.area_km2(geometry, WGS84), rel=1e-3)


def test_projected_polygon_on_geographic_raster(tmp_path):
    path = write_raster(
        tmp_path / "deg.tif", np.ones((1, 60, 80)), (0.05, 0, 8.0, 0, -0.05, 53.0), "EPSG:4326"
    )
    with rasterio.open(path) as ds:
        transform, crs, shape = tuple(ds.transform)[:6], ds.crs.to_wkt(), ds.shape
    geometry = poly(box(4_321_000, 3_000_000, 4_400_000, 3_080_000))  # 6,320 km2 in EPSG:3035
    cover = P.cell_fractions(geometry, LAEA, transform, crs, shape)
    assert cover.inside == pytest.approx(1.0)
    assert cover.area_km2 == pytest.approx(6320.0, rel=2e-3)
    # a 0..360 raster and a polygon at -10..-9 degrees east
    shifted = (0.5, 0, 340.0, 0, -0.5, 10.0)
    cover = P.cell_fractions(poly(box(-10.0, 0.0, -9.0, 1.0)), WGS84, shifted, crs, (20, 40))
    assert sorted(set(cover.cols.tolist())) == [20, 21] and cover.fractions.sum() == pytest.approx(4.0)


def test_ten_thousand_cells_fast():
    import time

    angle = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    radius = 57_000 + 3000 * np.sin(7 * angle)
    pts = [(4_060_000 + r * math.cos(a), 2_940_000 + r * math.sin(a)) for a, r in zip(angle, radius)]
    geometry = poly(pts + [pts[0]])
    # CPU seconds of this process, not wall time: other test processes on the machine do not count.
    start = time.process_time()
    cover = P.cell_fractions(geometry, LAEA, GRID, LAEA, (120, 120))
    assert time.process_time() - start < 1.0
    assert len(cover) > 10_000
    assert cover.area_km2 == pytest.approx(shapely_shape(geometry).area / 1e6, rel=1e-7)


# ---------------------------------------------------------------------------------------
# weighted statistics


def test_weighted_mean_and_spread_by_hand():
    cover = P.CellCover(
        rows=np.array([0, 0, 1]), cols=np.array([0, 1, 1]), fractions=np.array([1.0, 0.5, 0.25]),
        cell_km2=np.array([2.0, 2.0, 4.0]),
    )  # fmt: skip
    stack = np.array(
        [
            [[10.0, 20.0], [99.0, 40.0]],
            [[10.0, np.nan], [99.0, 40.0]],
            [[np.nan, np.nan], [99.0, np.nan]],
        ]
    )
    # weights 2, 1, 1 (km2)
    expected = [(2 * 10 + 1 * 20 + 1 * 40) / 4, (2 * 10 + 1 * 40) / 3, np.nan]
    np.testing.assert_allclose(P.weighted_mean(stack, cover), expected)
    mean = 20.0
    assert P.weighted_spread(stack[0], cover) == pytest.approx(
        math.sqrt((2 * (10 - mean) ** 2 + (20 - mean) ** 2 + (40 - mean) ** 2) / 4)
    )
    assert math.isnan(P.weighted_spread(stack[2], cover))
    assert P.weighted_mean(stack[0], cover) == pytest.approx([20.0])


def test_weighted_mean_on_geographic_cells_uses_their_areas():
    transform = (1.0, 0.0, 0.0, 0.0, -1.0, 61.0)  # rows: 60..61 N, then 59..60 N ...
    cover = P.cell_fractions(poly(box(0, 0, 1, 61)), WGS84, transform, WGS84, (61, 1))
    assert len(cover) == 61
    np.testing.assert_allclose(cover.fractions, 1.0)
    assert cover.cell_km2[cover.rows == 60][0] == pytest.approx(12308.46, rel=1e-5)
    assert cover.cell_km2[cover.rows == 0][0] == pytest.approx(6123.14, rel=1e-5)
    values = np.arange(61, dtype=float)[None, :, None]
    w = cover.cell_km2
    assert P.weighted_mean(values, cover)[0] == pytest.approx(np.dot(w, cover.rows) / w.sum())


# ---------------------------------------------------------------------------------------
# hard geometry: 180 degrees, Greenwich on 0..360, invalid polygons


#: a global 1-degree raster, -180..180 and 0..360
GLOBAL = (1.0, 0.0, -180.0, 0.0, -1.0, 90.0)
GLOBAL_360 = (1.0, 0.0, 0.0, 0.0, -1.0, 90.0)


def test_ring_through_180_degrees(tmp_path):
    # drawn 178 -> -178 as files store it: 4 degrees wide, not a 356-degree band
    ring = [(178.0, -2.5), (-178.0, -2.5), (-178.0, 2.5), (178.0, 2.5), (178.0, -2.5)]
    expected = quadrangle(-2.5, 2.5, 4.0)  # about 246,000 km2
    assert P.area_km2(poly(ring), WGS84) == pytest.approx(expected, rel=1e-3)
    path = write_vector(tmp_path / "c.gpkg", [(1, poly(ring))], driver="GPKG")
    (shape,), _ = P.read_catchments(path, "gauge")
    assert P.area_km2(shape.geometry, shape.crs_wkt) == pytest.approx(expected, rel=1e-3)
    for transform in (GLOBAL, GLOBAL_360):
        cover = P.cell_fractions(shape.geometry, shape.crs_wkt, transform, WGS84, (180, 360))
        lon = transform[2] + cover.cols + 0.5
        assert sorted(set(((lon + 180) % 360 - 180).tolist())) == [-179.5, -178.5, 178.5, 179.5]
        assert cover.inside == pytest.approx(1.0)
        assert cover.area_km2 == pytest.approx(expected, rel=1e-3)


def test_polygon_across_greenwich_on_a_0_360_grid():
    square = poly(box(-2.0, 50.0, 2.0, 52.0))
    cover = P.cell_fractions(square, WGS84, GLOBAL_360, WGS84, (180, 360))
    assert sorted(set(cover.cols.tolist())) == [0, 1, 358, 359]
    assert cover.fractions.sum() == pytest.approx(8.0)
    assert cover.area_km2 == pytest.approx(quadrangle(50.0, 52.0, 4.0), rel=1e-6)
    assert cover.inside == pytest.approx(1.0)
    # the same square in 0..360 longitudes, on a -180..180 grid
    cover = P.cell_fractions(poly(box(358.0, 50.0, 362.0, 52.0)), WGS84, GLOBAL, WGS84, (180, 360))
    assert sorted(set(cover.cols.tolist())) == [178, 179, 180, 181]
    assert cover.area_km2 == pytest.approx(quadrangle(50.0, 52.0, 4.0), rel=1e-6)


def test_invalid_polygons_repaired_with_a_warning_naming_them(tmp_path, caplog):
    bow_tie = poly([km(0, 2), km(2, 0), km(2, 2), km(0, 0), km(0, 2)])  # two triangles of 1 km2
    hole_outside = poly(box(*km(0, 2), *km(2, 0)), box(*km(5, 2), *km(6, 1)))  # 4 km2, the hole elsewhere
    # a ring crossing itself at km(2, 0): lobes of 8 and 4 km2
    crossing = poly([km(0, 0), km(4, 0), km(4, 4), km(2, 4), km(2, -2), km(0, -2), km(0, 0)])
    good = poly(box(*km(0, 1), *km(1, 0)))
    path = write_vector(
        tmp_path / "c.gpkg",
        [(5, bow_tie), (6, hole_outside), (7, good), (8, crossing)],
        crs="EPSG:3035",
        driver="GPKG",
    )
    with caplog.at_level(logging.WARNING, logger="cwsc.io.polygons"):
        shapes, problems = P.read_catchments(path, "gauge")
    assert problems == []
    warning = [r.getMessage() for r in caplog.records if "make_valid" in r.getMessage()]
    assert len(warning) == 1 and "c.gpkg" in warning[0]
    assert "5 (Self-intersection" in warning[0] and "6 (Hole lies outside shell" in warning[0]
    assert "8 (" in warning[0] and "7 (" not in warning[0]
    areas = {s.id: P.area_km2(s.geometry, s.crs_wkt) for s in shapes}
    # as drawn, the bow-tie's lobes cancel (0 km2), the outside hole takes 1 km2 off and the
    # crossing ring's lobes subtract (4 km2)
    assert areas == pytest.approx({"5": 2.0, "6": 4.0, "7": 1.0, "8": 8.0 + 4.0}, rel=1e-3)
    covers, _ = P.cover_catchments(shapes, GRID, LAEA, (100, 100), "grid.tif")
    assert covers["6"].area_km2 == pytest.approx(4.0, rel=1e-6)
    assert covers["5"].area_km2 == pytest.approx(2.0, rel=1e-6)


def test_geojson_in_metres_without_a_crs_refused(tmp_path):
    path = tmp_path / "basins.geojson"
    ring = box(4_321_000.0, 3_210_000.0, 4_331_000.0, 3_220_000.0)
    feature = {"type": "Feature", "properties": {"gauge": 3}, "geometry": poly(ring)}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(InputFileError, match=r"basins\.geojson.*catchment 3.*not degrees.*GeoJSON.*RFC 7946"):
        P.read_catchments(path, "gauge")
    # in degrees it reads
    feature["geometry"] = poly(box(10.0, 50.0, 10.1, 50.1))
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    assert [s.id for s in P.read_catchments(path, "gauge")[0]] == ["3"]


def test_layer_picked_as_qgis_writes_it(tmp_path, caplog):
    path = tmp_path / "gauges.gpkg"
    point_schema = {"geometry": "Point", "properties": {"gauge": "str"}}
    with fiona.open(
        path, "w", driver="GPKG", schema=point_schema, crs=CRS.from_epsg(4326), layer="stations"
    ) as dst:
        dst.write(
            fiona.Feature(
                geometry=fiona.Geometry.from_dict({"type": "Point", "coordinates": (0.5, 0.5)}),
                properties={"gauge": "a"},
            )
        )
    polygon_schema = {"geometry": "Polygon", "properties": {"gauge": "str"}}
    for layer, gid in (("basins", "b"), ("subbasins", "c")):
        with fiona.open(
            path, "w", driver="GPKG", schema=polygon_schema, crs=CRS.from_epsg(4326), layer=layer
        ) as dst:
            dst.write(
                fiona.Feature(
                    geometry=fiona.Geometry.from_dict(poly(box(0, 0, 1, 1))), properties={"gauge": gid}
                )
            )
    assert [s.id for s in P.read_catchments(f"{path}|layername=subbasins", "gauge")[0]] == ["c"]
    assert [s.id for s in P.read_catchments(f"{path}|layerid=1", "gauge")[0]] == ["b"]
    # no layer named: the first polygon layer, not the points
    with caplog.at_level(logging.WARNING, logger="cwsc.io.polygons"):
        assert [s.id for s in P.read_catchments(path, "gauge")[0]] == ["b"]
    assert "reading 'basins'" in caplog.text and "|layername=NAME" in caplog.text
    with pytest.raises(
        InputFileError,
        match=r"layer 'stations' of .*gauges\.gpkg' holds point geometries, not polygons; its polygon "
        r"layers: basins, subbasins; pick one as '.*gauges\.gpkg\|layername=basins'",
    ):
        P.read_catchments(f"{path}|layername=stations", "gauge")
    with pytest.raises(InputFileError, match=r"no layer 'lakes'; its layers: stations, basins, subbasins"):
        P.read_catchments(f"{path}|layername=lakes", "gauge")
    with pytest.raises(InputFileError, match=r"the option 'subset=\"gauge\" = 'b'' cannot be applied"):
        P.read_catchments(f"{path}|layername=basins|subset=\"gauge\" = 'b'", "gauge")


def test_shapefile_with_utf8_ids_and_no_cpg(tmp_path):
    names = ["Müggelsee", "Škofja Loka", "Ærø"]
    path = tmp_path / "c.shp"
    with fiona.open(
        path, "w", driver="ESRI Shapefile", encoding="utf-8", crs=CRS.from_epsg(4326),
        schema={"geometry": "Polygon", "properties": {"gauge": "str"}},
    ) as dst:  # fmt: skip
        for i, name in enumerate(names):
            dst.write(
                fiona.Feature(
                    geometry=fiona.Geometry.from_dict(poly(box(i, 0, i + 1, 1))), properties={"gauge": name}
                )
            )
    # GDAL writes UTF-8 and a .cpg saying so; many tools write the UTF-8 without the .cpg
    (tmp_path / "c.cpg").unlink()
    assert [s.id for s in P.read_catchments(path, "gauge")[0]] == names
    # a Latin-1 Shapefile without a .cpg still reads as Latin-1
    with fiona.open(
        tmp_path / "l.shp", "w", driver="ESRI Shapefile", encoding="latin1", crs=CRS.from_epsg(4326),
        schema={"geometry": "Polygon", "properties": {"gauge": "str"}},
    ) as dst:  # fmt: skip
        dst.write(
            fiona.Feature(
                geometry=fiona.Geometry.from_dict(poly(box(0, 0, 1, 1))), properties={"gauge": "Sée"}
            )
        )
    (tmp_path / "l.cpg").unlink()
    assert [s.id for s in P.read_catchments(tmp_path / "l.shp", "gauge")[0]] == ["Sée"]


# ---------------------------------------------------------------------------------------
# the property: covered area = geodesic area, anywhere on the globe


def geodesic_km2(lonlat_rings):
    """The polygon's geodesic area, its edges straight in longitude and latitude (densified
    to 0.01 degrees), by pyproj's Geod directly."""
    from pyproj import Geod

    total = 0.0
    for k, ring in enumerate(lonlat_rings):
        pts = np.asarray(ring)
        steps = [
            np.linspace(p, q, max(2, int(np.abs(q - p).max() / 0.01) + 2))[:-1]
            for p, q in zip(pts[:-1], pts[1:])
        ]
        dense_ring = np.vstack(steps)
        area, _ = Geod(ellps="WGS84").polygon_area_perimeter(dense_ring[:, 0], dense_ring[:, 1])
        total += abs(area) * (1 if k == 0 else -1)
    return total / 1e6


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    lon=st.one_of(st.floats(170.0, 190.0), st.floats(-10.0, 10.0), st.floats(-180.0, 180.0)),
    lat=st.floats(-65.0, 65.0),
    radius=st.floats(1.0, 8.0),
    radii=st.lists(st.floats(0.4, 1.0), min_size=3, max_size=24),
    res=st.sampled_from([0.25, 0.5, 1.0]),
    origin=st.sampled_from([-180.0, 0.0]),
    wrap=st.booleans(),
)
def test_covered_area_is_the_geodesic_area(lon, lat, radius, radii, res, origin, wrap):
    """A random star-shaped (so valid) polygon anywhere, across 180 degrees and Greenwich
    included, on a global grid of -180..180 or 0..360: the cells' km2 add up to the polygon's
    geodesic area within 0.1 %."""
    angles = np.linspace(0.0, 2.0 * np.pi, len(radii), endpoint=False)
    r = radius * np.asarray(radii)
    x = lon + r * np.cos(angles) / max(math.cos(math.radians(lat)), 0.3)
    y = np.clip(lat + r * np.sin(angles), -85.0, 85.0)
    drawn = np.column_stack([x, y])
    drawn = np.vstack([drawn, drawn[:1]])
    expected = geodesic_km2([drawn])
    stored = drawn.copy()
    if wrap:  # as files store it: every longitude in -180..180, so a ring across 180 jumps
        stored[:, 0] = (stored[:, 0] + 180.0) % 360.0 - 180.0
    geometry = poly([tuple(p) for p in stored])
    assert P.area_km2(geometry, WGS84) == pytest.approx(expected, rel=1e-3)
    shape = (int(180 / res), int(360 / res))
    cover = P.cell_fractions(geometry, WGS84, (res, 0.0, origin, 0.0, -res, 90.0), WGS84, shape)
    assert cover.inside == pytest.approx(1.0, abs=1e-6)
    assert cover.area_km2 == pytest.approx(expected, rel=1e-3)


def test_degenerate_polygons_are_not_scored_with_their_reason(tmp_path):
    line_ring = poly([(0.0, 0.0), (1.0, 1.0), (0.0, 0.0)])  # there and back: no ring
    flat = poly([(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (0.0, 0.0)])  # no area
    good = poly(box(0, 0, 1, 1))
    path = write_vector(tmp_path / "c.gpkg", [(1, line_ring), (2, flat), (3, good)], driver="GPKG")
    shapes, problems = P.read_catchments(path, "gauge")
    assert [s.id for s in shapes] == ["3"]
    reasons = {p.id: p.reason for p in problems}
    assert "catchment 1 has no geometry" in reasons["1"] and "c.gpkg" in reasons["1"]
    assert "catchment 2 has no area once its polygon is repaired" in reasons["2"]


def test_a_polygon_off_the_rasters_longitudes_is_an_empty_cover():
    """East of a small geographic raster, at no multiple of 360 degrees on it: an empty cover
    (the catchment is then not scored), not a failure inside the fraction computation."""
    square = {"type": "Polygon", "coordinates": [[(30, 30), (30.5, 30), (30.5, 30.5), (30, 30.5), (30, 30)]]}
    wgs84 = CRS.from_epsg(4326).to_wkt()
    cover = P.cell_fractions(square, wgs84, (0.25, 0, 10.0, 0, -0.25, 50.0), wgs84, (4, 6))
    assert cover.inside == 0 and cover.rows.size == 0
