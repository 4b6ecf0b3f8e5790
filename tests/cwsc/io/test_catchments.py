"""cwsc.io.catchments: polygons and series of gauged catchments in, per-catchment arrays out."""

from __future__ import annotations

import csv
import logging
import math

import fiona
import numpy as np
import pytest
import rasterio
from affine import Affine
from fiona.crs import CRS

from cwsc.errors import GridMismatch, InputFileError, ParameterError, UnitsError
from cwsc.io import catchments as C

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
    return abs(C._signed_area(np.asarray(pts)))


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
    shapes, problems = C.read_catchments(path, "gauge")
    assert problems == []
    assert [s.id for s in shapes] == ["7", "12"]
    assert shapes[0].geometry["type"] == "Polygon"
    assert shapes[1].geometry["type"] == "MultiPolygon"
    assert CRS.from_wkt(shapes[0].crs_wkt).to_epsg() == 4326
    assert C.area_km2(shapes[1].geometry, shapes[1].crs_wkt) == pytest.approx(2 * 12308.46, rel=1e-4)
    # case-insensitive field name
    assert [s.id for s in C.read_catchments(path, "GAUGE")[0]] == ["7", "12"]
    if driver == "GPKG":  # the feature id, which QGIS lists as a field "fid"
        assert [s.id for s in C.read_catchments(path, "fid")[0]] == ["1", "2"]


def test_read_catchments_string_ids_and_empty_geometry(tmp_path):
    path = write_vector(
        tmp_path / "c.gpkg", [("A-1", poly(box(0, 0, 1, 1))), ("B 2", None)], driver="GPKG", id_type="str"
    )
    shapes, problems = C.read_catchments(path, "gauge")
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
    with caplog.at_level(logging.WARNING, logger="cwsc.io.catchments"):
        assert [s.id for s in C.read_catchments(path, "gauge")[0]] == ["a"]
    assert "two.gpkg' has 2 layers (first, second)" in caplog.text
    assert [s.id for s in C.read_catchments(path, "gauge", layer="second")[0]] == ["b"]
    with pytest.raises(InputFileError, match=r"two\.gpkg' has no layer 'third'; its layers: first, second"):
        C.read_catchments(path, "gauge", layer="third")


def test_read_catchments_refusals(tmp_path):
    good = poly(box(0, 0, 1, 1))
    path = write_vector(tmp_path / "c.gpkg", [(1, good)], driver="GPKG")
    with pytest.raises(InputFileError, match=r"c\.gpkg'.*no field 'basin'.*gauge, name"):
        C.read_catchments(path, "basin")
    with pytest.raises(InputFileError, match=r"nothere\.gpkg.*no such file"):
        C.read_catchments(tmp_path / "nothere.gpkg", "gauge")
    bad = tmp_path / "bad.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(InputFileError, match=r"bad\.gpkg.*cannot be read"):
        C.read_catchments(bad, "gauge")

    dup = write_vector(
        tmp_path / "dup.gpkg", [(1, good), (2, good), (1, good), (3, good), (3, good)], driver="GPKG"
    )
    with pytest.raises(InputFileError, match=r"dup\.gpkg.*duplicated ids.*1, 3"):
        C.read_catchments(dup, "gauge")

    noid = write_vector(tmp_path / "noid.gpkg", [(1, good), (None, good)], driver="GPKG")
    with pytest.raises(InputFileError, match=r"noid\.gpkg.*feature 2.*no value in the id field 'gauge'"):
        C.read_catchments(noid, "gauge")

    line = {"type": "LineString", "coordinates": [(0, 0), (1, 1)]}
    lines = write_vector(tmp_path / "lines.gpkg", [(1, good), (5, line)], driver="GPKG", geometry="Unknown")
    with pytest.raises(InputFileError, match=r"lines\.gpkg.*not a polygon: 5 \(a LineString\)"):
        C.read_catchments(lines, "gauge")

    nocrs = write_vector(tmp_path / "nocrs.shp", [(1, good)], crs=None, driver="ESRI Shapefile")
    with pytest.raises(InputFileError, match=r"nocrs\.shp' has no CRS"):
        C.read_catchments(nocrs, "gauge")


# ---------------------------------------------------------------------------------------
# area_km2


@pytest.mark.parametrize("lat", [0.0, 30.0, 60.0, -45.0])
def test_area_of_one_degree_cells(lat):
    # the ellipsoidal quadrangle, computed here independently of the module
    a, e2 = 6378137.0, 6.69437999014e-3
    e = math.sqrt(e2)

    def q(phi):
        s = math.sin(math.radians(phi))
        return s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    expected = 0.5 * a * a * (1 - e2) * math.radians(1.0) * abs(q(lat + 1) - q(lat)) / 1e6
    got = C.area_km2(poly(box(10, lat, 11, lat + 1)), WGS84)
    assert got == pytest.approx(expected, rel=1e-3)
    if lat == 0.0:
        assert got == pytest.approx(12308, rel=1e-3)
    if lat == 60.0:
        assert got == pytest.approx(6123, rel=1e-3)


def test_area_holes_parts_and_projected_crs():
    outer, hole = box(0, 0, 2, 2), box(0.5, 0.5, 1.5, 1.5)
    whole = C.area_km2(poly(outer), WGS84)
    assert C.area_km2(poly(outer, hole), WGS84) == pytest.approx(
        whole - C.area_km2(poly(hole), WGS84), rel=1e-9
    )
    multi = {"type": "MultiPolygon", "coordinates": [[box(0, 0, 1, 1)], [box(0, 60, 1, 61)]]}
    assert C.area_km2(multi, WGS84) == pytest.approx(12308.46 + 6123.14, rel=1e-4)
    # EPSG:3035 is equal-area (GRS80, practically WGS84): a 100 km square is 10,000 km2
    square = poly(box(4_321_000, 3_210_000, 4_421_000, 3_310_000))
    assert C.area_km2(square, LAEA) == pytest.approx(10_000.0, rel=1e-4)


# ---------------------------------------------------------------------------------------
# cell_fractions


def test_square_on_whole_cells_and_offset_by_half_a_cell():
    cover = C.cell_fractions(poly(box(*km(2, 5), *km(5, 3))), LAEA, GRID, LAEA, (100, 100))
    assert sorted(zip(cover.rows.tolist(), cover.cols.tolist())) == [
        (r, c) for r in (3, 4) for c in (2, 3, 4)
    ]
    np.testing.assert_allclose(cover.fractions, 1.0)
    np.testing.assert_allclose(cover.cell_km2, 1.0)
    assert cover.inside == pytest.approx(1.0)
    assert cover.window() == (slice(3, 5), slice(2, 5))

    cover = C.cell_fractions(poly(box(*km(2.5, 5.5), *km(5.5, 3.5))), LAEA, GRID, LAEA, (100, 100))
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
    cover = C.cell_fractions(geometry, LAEA, GRID, LAEA, shape)
    np.testing.assert_allclose(dense(cover, shape), reference_fractions(geometry, GRID, shape), atol=1e-9)
    assert cover.area_km2 == pytest.approx(C._planar_area(C._polygons(geometry)) / 1e6, rel=1e-9)


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
            got = dense(C.cell_fractions(geometry, LAEA, t, LAEA, shape), shape)
            np.testing.assert_allclose(got, reference_fractions(geometry, t, shape), atol=1e-9)


def test_multipolygon_parts_partly_off_the_raster_and_off_it():
    multi = {
        "type": "MultiPolygon",
        "coordinates": [[box(*km(0, 1), *km(1, 0))], [box(*km(-2, 4), *km(2, 3))]],
    }
    cover = C.cell_fractions(multi, LAEA, GRID, LAEA, (100, 100))
    assert sorted(zip(cover.rows.tolist(), cover.cols.tolist())) == [(0, 0), (3, 0), (3, 1)]
    assert cover.area_km2 == pytest.approx(3.0)
    assert cover.inside == pytest.approx(3.0 / 5.0)

    huge = C.cell_fractions(poly(box(*km(-50, 300), *km(400, -70))), LAEA, GRID, LAEA, (20, 30))
    np.testing.assert_allclose(dense(huge, (20, 30)), 1.0)
    assert huge.inside == pytest.approx(600 / (450 * 370))

    off = C.cell_fractions(poly(box(*km(200, 5), *km(203, 3))), LAEA, GRID, LAEA, (100, 100))
    assert off.empty and off.inside == 0.0
    shapes = [
        C.CatchmentShape("far", poly(box(*km(200, 5), *km(203, 3))), LAEA),
        C.CatchmentShape("near", multi, LAEA),
    ]
    covers, problems = C.cover_catchments(shapes, GRID, LAEA, (100, 100), "cwsc.tif")
    assert list(covers) == ["near"]
    assert problems == [C.NotScored("far", "catchment far lies outside the raster 'cwsc.tif'")]


def test_rotated_and_crsless_rasters_refused():
    rotated = (1000.0, 10.0, 4_000_000.0, 10.0, -1000.0, 3_000_000.0)
    with pytest.raises(GridMismatch, match="catchment 9.*rotated"):
        C.cell_fractions(poly(box(*km(0, 1), *km(1, 0))), LAEA, rotated, LAEA, (10, 10), where="catchment 9")
    with pytest.raises(GridMismatch, match="no CRS"):
        C.cell_fractions(poly(box(*km(0, 1), *km(1, 0))), LAEA, GRID, "", (10, 10))


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
    cover = C.cell_fractions(geometry, WGS84, transform, crs, shape)
    assert len(cover) > 7000
    assert cover.inside == pytest.approx(1.0)
    assert cover.area_km2 == pytest.approx(C.area_km2(geometry, WGS84), rel=1e-3)


def test_projected_polygon_on_geographic_raster(tmp_path):
    path = write_raster(
        tmp_path / "deg.tif", np.ones((1, 60, 80)), (0.05, 0, 8.0, 0, -0.05, 53.0), "EPSG:4326"
    )
    with rasterio.open(path) as ds:
        transform, crs, shape = tuple(ds.transform)[:6], ds.crs.to_wkt(), ds.shape
    geometry = poly(box(4_321_000, 3_000_000, 4_400_000, 3_080_000))  # 6,320 km2 in EPSG:3035
    cover = C.cell_fractions(geometry, LAEA, transform, crs, shape)
    assert cover.inside == pytest.approx(1.0)
    assert cover.area_km2 == pytest.approx(6320.0, rel=2e-3)
    # a 0..360 raster and a polygon at -10..-9 degrees east
    shifted = (0.5, 0, 340.0, 0, -0.5, 10.0)
    cover = C.cell_fractions(poly(box(-10.0, 0.0, -9.0, 1.0)), WGS84, shifted, crs, (20, 40))
    assert sorted(set(cover.cols.tolist())) == [20, 21] and cover.fractions.sum() == pytest.approx(4.0)


def test_ten_thousand_cells_fast():
    import time

    angle = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    radius = 57_000 + 3000 * np.sin(7 * angle)
    pts = [(4_060_000 + r * math.cos(a), 2_940_000 + r * math.sin(a)) for a, r in zip(angle, radius)]
    geometry = poly(pts + [pts[0]])
    start = time.perf_counter()
    cover = C.cell_fractions(geometry, LAEA, GRID, LAEA, (120, 120))
    assert time.perf_counter() - start < 1.0
    assert len(cover) > 10_000
    assert cover.area_km2 == pytest.approx(C._planar_area(C._polygons(geometry)) / 1e6, rel=1e-9)


# ---------------------------------------------------------------------------------------
# weighted statistics


def test_weighted_mean_and_spread_by_hand():
    cover = C.CellCover(
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
    np.testing.assert_allclose(C.weighted_mean(stack, cover), expected)
    mean = 20.0
    assert C.weighted_spread(stack[0], cover) == pytest.approx(
        math.sqrt((2 * (10 - mean) ** 2 + (20 - mean) ** 2 + (40 - mean) ** 2) / 4)
    )
    assert math.isnan(C.weighted_spread(stack[2], cover))
    assert C.weighted_mean(stack[0], cover) == pytest.approx([20.0])


def test_weighted_mean_on_geographic_cells_uses_their_areas():
    transform = (1.0, 0.0, 0.0, 0.0, -1.0, 61.0)  # rows: 60..61 N, then 59..60 N ...
    cover = C.cell_fractions(poly(box(0, 0, 1, 61)), WGS84, transform, WGS84, (61, 1))
    assert len(cover) == 61
    np.testing.assert_allclose(cover.fractions, 1.0)
    assert cover.cell_km2[cover.rows == 60][0] == pytest.approx(12308.46, rel=1e-5)
    assert cover.cell_km2[cover.rows == 0][0] == pytest.approx(6123.14, rel=1e-5)
    values = np.arange(61, dtype=float)[None, :, None]
    w = cover.cell_km2
    assert C.weighted_mean(values, cover)[0] == pytest.approx(np.dot(w, cover.rows) / w.sum())


# ---------------------------------------------------------------------------------------
# read_series, match_ids, runoff_in_mm


def write_csv(path, rows, header=("id", "month", "runoff")):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def months_from(year, n):
    return [f"{year + (i // 12)}-{i % 12 + 1:02d}" for i in range(n)]


def test_read_series(tmp_path, caplog):
    rows = [("7", m, str(i), str(2 * i), "", "x") for i, m in enumerate(months_from(2001, 30))]
    rows.insert(5, ("A", "2001-01", "1", "", "", ""))
    rows += [
        ("A", m, "1.5", "", "3", "") for m in months_from(2001, 24)[1:] if m not in ("2001-06", "2001-07")
    ]
    rows += [("A", "2003-06", "", "", "", "")]
    path = write_csv(
        tmp_path / "q.csv", rows, header=("ID", "Month", "RUNOFF", "Precipitation", "pet", "station")
    )
    with caplog.at_level(logging.WARNING, logger="cwsc.io.catchments"):
        table = C.read_series(path, min_months=20)
    assert "station" in caplog.text and "q.csv" in caplog.text
    assert table.variables == ["runoff", "precipitation", "pet"]
    assert set(table.series) == {"7", "A"} and table.problems == []
    s = table.series["7"]
    assert s.months == months_from(2001, 30) and s.gaps == []
    np.testing.assert_array_equal(s.runoff, np.arange(30.0))
    np.testing.assert_array_equal(s.precipitation, 2 * np.arange(30.0))
    assert np.isnan(s.pet).all() and s.temperature is None
    a = table.series["A"]
    assert a.months[0] == "2001-01" and a.months[-1] == "2003-06" and len(a.months) == 23
    assert a.gaps == ["2001-06 to 2001-07", "2003-01 to 2003-05"]
    assert np.isnan(a.runoff[-1]) and a.pet[1] == 3.0
    assert "A (2001-06 to 2001-07" in caplog.text


def test_read_series_problems_per_id(tmp_path):
    rows = [("1", m, "1") for m in months_from(2001, 24)]
    rows += [("2", m, "1") for m in months_from(2001, 24)] + [("2", "2001-03", "2"), ("2", "2001-05", "2")]
    rows += [("3", m, "1" if i < 23 else "") for i, m in enumerate(months_from(2001, 30))]
    table = C.read_series(write_csv(tmp_path / "q.csv", rows))
    assert list(table.series) == ["1"]
    reasons = {p.id: p.reason for p in table.problems}
    assert "q.csv" in reasons["2"] and "id 2" in reasons["2"] and "2001-03, 2001-05" in reasons["2"]
    assert "id 3 has runoff for 23 months; at least 24" in reasons["3"]
    assert table.ids == ["1", "2", "3"]


def test_read_series_file_errors(tmp_path):
    with pytest.raises(InputFileError, match=r"q\.csv', line 1: no column 'runoff'.*id, month, discharge"):
        C.read_series(
            write_csv(tmp_path / "q.csv", [("1", "2001-01", "1")], header=("id", "month", "discharge"))
        )
    with pytest.raises(InputFileError, match=r"b\.csv', line 3: '2001-13' is not a month"):
        C.read_series(write_csv(tmp_path / "b.csv", [("1", "2001-01", "1"), ("1", "2001-13", "1")]))
    with pytest.raises(InputFileError, match=r"c\.csv', line 2, column 'Runoff': 'abc' is not a number"):
        C.read_series(
            write_csv(tmp_path / "c.csv", [("1", "2001-01", "abc")], header=("id", "month", "Runoff"))
        )
    with pytest.raises(InputFileError, match=r"d\.csv', line 2: no id"):
        C.read_series(write_csv(tmp_path / "d.csv", [("", "2001-01", "1")]))
    with pytest.raises(InputFileError, match=r"e\.csv.*no such file"):
        C.read_series(tmp_path / "e.csv")
    semicolons = tmp_path / "s.csv"
    semicolons.write_text("id;month;runoff\n" + "".join(f"9;{m};1,5\n" for m in months_from(2001, 24)))
    with pytest.raises(InputFileError, match=r"s\.csv', line 2, column 'runoff': '1,5' is not a number"):
        C.read_series(semicolons)


def test_match_ids_both_ways(tmp_path):
    shapes = [C.CatchmentShape(i, poly(box(0, 0, 1, 1)), WGS84) for i in ("1", "2", "5")]
    rows = [(i, m, "1") for i in ("2", "1", "9", "4") for m in months_from(2001, 24)]
    rows += [("8", "2001-01", "1")]
    table = C.read_series(write_csv(tmp_path / "q.csv", rows))
    paired, problems = C.match_ids(shapes, table, known=[C.NotScored("4", "no geometry")])
    assert paired == ["1", "2"]
    reasons = {p.id: p.reason for p in problems}
    assert set(reasons) == {"5", "9"}  # 4 and 8 are already listed
    assert (
        "catchment 5 has a polygon but no row in the series table" in reasons["5"] and "q.csv" in reasons["5"]
    )
    assert "catchment 9 has rows in the series table" in reasons["9"] and "no polygon" in reasons["9"]


def test_runoff_in_mm():
    months = ["2000-01", "2000-02", "2001-02"]
    values = np.array([1.0, 1.0, 1.0])
    np.testing.assert_array_equal(C.runoff_in_mm(values, months, "mm/month", None), values)
    np.testing.assert_array_equal(C.runoff_in_mm(values, months, "mm/day", None), [31.0, 29.0, 28.0])
    np.testing.assert_array_equal(
        C.runoff_in_mm(values, [24000, 24001, 24013], "mm d-1", None), [31.0, 29.0, 28.0]
    )
    # 1 m3/s over 100 km2 for 31 days: 31 * 86400 / 1e8 m = 26.784 mm
    got = C.runoff_in_mm(values, months, "m3/s", 100.0)
    np.testing.assert_allclose(got, [26.784, 29 * 0.864, 28 * 0.864])
    with pytest.raises(ParameterError, match="catchment 7.*area"):
        C.runoff_in_mm(values, months, "m3/s", None, id="7")
    with pytest.raises(UnitsError, match=r"'l/s'.*mm/month, mm/day, m3/s"):
        C.runoff_in_mm(values, months, "l/s", 100.0)


# ---------------------------------------------------------------------------------------
# writing


def test_write_catchments_and_table(tmp_path):
    shapes = [
        C.CatchmentShape("7", poly(box(4_321_000, 3_210_000, 4_331_000, 3_220_000)), LAEA),
        C.CatchmentShape(
            "A",
            {"type": "MultiPolygon", "coordinates": [[box(4_400_000, 3_210_000, 4_410_000, 3_220_000)]]},
            LAEA,
        ),
    ]
    fields = [("id", "str"), ("cells", "int"), ("kge", "float"), ("reason", "str")]
    records = [
        {"id": "7", "cells": np.int64(12), "kge": np.float64(0.5)},
        {"id": "A", "cells": None, "kge": float("nan"), "reason": "too short"},
    ]
    out = tmp_path / "scores.gpkg"
    (tmp_path / "scores.gpkg").write_text("stale")
    assert C.write_catchments(out, shapes, records, fields) == out
    assert fiona.listlayers(out) == ["scores"]
    with fiona.open(out) as src:
        assert src.crs.to_epsg() == 3035
        assert list(src.schema["properties"]) == ["id", "cells", "kge", "reason"]
        feats = list(src)
    assert [dict(f.properties) for f in feats] == [
        {"id": "7", "cells": 12, "kge": 0.5, "reason": None},
        {"id": "A", "cells": None, "kge": None, "reason": "too short"},
    ]
    assert feats[0].geometry.type == "MultiPolygon"
    back, problems = C.read_catchments(out, "id")
    assert [s.id for s in back] == ["7", "A"] and problems == []
    assert C.area_km2(back[0].geometry, back[0].crs_wkt) == pytest.approx(100.0, rel=1e-3)

    table = C.write_table(tmp_path / "scores.csv", records, fields)
    assert table.read_text().splitlines() == ["id,cells,kge,reason", "7,12,0.5,", "A,,,too short"]
    with pytest.raises(ValueError, match="type 'double'"):
        C.write_table(tmp_path / "x.csv", records, [("kge", "double")])
