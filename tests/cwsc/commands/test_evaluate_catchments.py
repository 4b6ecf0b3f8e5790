"""``python -m cwsc evaluate-catchments`` on the nine real catchments (square polygons of each
catchment's area, since no geometry is shipped): a map holding each catchment's own label
scores within 0.05 of the free calibration; a map of 5 mm everywhere clearly below. Bad
input: every catchment that cannot be scored is listed with its reason."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from backend_testing import refused, run_backend, write_tif

#: The holmes package ships no area for the two Quebec catchments; their runoff is in mm
#: already, so a nominal area only sizes the test's square.
NOMINAL_KM2 = 1000.0
CELL = 0.1  # degrees: the test map's cells
LAT0, LON0 = 45.0, 5.0


def _square(cx: float, cy: float, area_km2: float) -> dict:
    side = math.sqrt(area_km2)
    dy = side / 111.32 / 2
    dx = side / (111.32 * math.cos(math.radians(cy))) / 2
    ring = [
        (cx - dx, cy - dy),
        (cx + dx, cy - dy),
        (cx + dx, cy + dy),
        (cx - dx, cy + dy),
        (cx - dx, cy - dy),
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def _write_polygons(path, items):
    import fiona
    from fiona.crs import CRS

    schema = {"geometry": "Polygon", "properties": {"gauge": "str"}}
    with fiona.open(path, "w", driver="GPKG", schema=schema, crs=CRS.from_epsg(4326)) as dst:
        for gauge, geom in items:
            dst.write({"geometry": geom, "properties": {"gauge": gauge}})
    return path


def _map(path, polygons, values, shape=(60, 120)):
    """A 0.1-degree map holding ``values[i]`` in every cell that touches polygon i."""
    data = np.full(shape, np.nan, np.float32)
    for geom, v in zip(polygons, values):
        xs, ys = zip(*geom["coordinates"][0])
        c0, c1 = int((min(xs) - LON0) / CELL), int(math.ceil((max(xs) - LON0) / CELL))
        r0, r1 = int((LAT0 + 6 - max(ys)) / CELL), int(math.ceil((LAT0 + 6 - min(ys)) / CELL))
        data[r0:r1, c0:c1] = v
    return write_tif(path, data, transform=(CELL, 0, LON0, 0, -CELL, LAT0 + 6))


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    import real_catchments as rc

    try:
        catchments = rc.all_catchments()
    except rc.DataUnavailable as exc:
        pytest.skip(f"real catchment data unavailable (no package registry reachable?): {exc}")
    folder = tmp_path_factory.mktemp("catchments")
    polygons = []
    for i, c in enumerate(catchments):
        area = c.area_km2 if np.isfinite(c.area_km2) else NOMINAL_KM2
        polygons.append((c.name, _square(LON0 + 1.0 + 1.2 * (i % 9), LAT0 + 1.5 + 3.0 * (i // 9), area)))
    gpkg = _write_polygons(folder / "gauges.gpkg", polygons)
    series = rc.write_series_csv(folder / "series.csv", catchments)
    return catchments, polygons, gpkg, series, folder


def _evaluate(real, cwsc, out, *extra):
    _, _, gpkg, series, _ = real
    out.mkdir(exist_ok=True)
    args = ["evaluate-catchments", "--catchments", gpkg, "--id-field", "gauge", "--series", series]
    args += ["--cwsc", cwsc, "--out", out / "scores.gpkg", "--out-table", out / "scores.csv"]
    args += ["--out-report", out / "report.html", "--restarts", "2", *extra]
    rc, events, err = run_backend(*args, timeout=1200)
    assert rc == 0, err[-3000:]
    with open(out / "scores.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    result = [e for e in events if e["event"] == "result"][-1]
    return rows, result["metrics"], events


def _median(rows, key):
    return float(np.median([float(r[key]) for r in rows.values() if r[key] not in ("", None)]))


@pytest.mark.network
@pytest.mark.slow
def test_a_map_of_each_catchments_own_label_scores_like_the_free_calibration_and_5_mm_does_not(
    real, tmp_path
):
    catchments, polygons, _, _, folder = real
    geoms = [g for _, g in polygons]
    wrong = _map(folder / "five_mm.tif", geoms, [5.0] * len(geoms))
    rows, metrics, events = _evaluate(real, wrong, tmp_path / "wrong")
    assert metrics["catchments_scored"] == len(catchments) and metrics["catchments_not_scored"] == 0
    free = _median(rows, "kge_val_free")
    # Measured here: 0.204 below (issue: at least 0.2); the test leaves room for another
    # processor's rounding to move single SCE-UA runs.
    assert _median(rows, "kge_val_map") <= free - 0.18
    # snow: the share of P that passed through the store, empty without temperature; the
    # Hesse gauges (3.5-4.9 % snow) get none of it, the Quebec ones (a quarter snow) all.
    snow = {c.name: rows[c.name]["snow"] for c in catchments}
    assert {n for n, v in snow.items() if v == ""} == {c.name for c in catchments if c.temperature is None}
    assert {n for n, v in snow.items() if v and float(v) == 1.0} == {"au_saumon", "baskatong"}
    assert all(float(v) == 0.0 for n, v in snow.items() if v and n not in ("au_saumon", "baskatong"))

    own = _map(folder / "own.tif", geoms, [float(rows[c.name]["sc_free_mm"]) for c in catchments])
    rows, metrics, _ = _evaluate(
        real, own, tmp_path / "own", "--reference-maps", wrong, "--reference-names", "five"
    )
    print(
        f"\nmedian validation KGE: free {_median(rows, 'kge_val_free'):.3f}, own-label map "
        f"{_median(rows, 'kge_val_map'):.3f}, 5 mm map {_median(rows, 'kge_val_five'):.3f}, constant map "
        f"{_median(rows, 'kge_val_constant'):.3f}"
    )
    assert abs(_median(rows, "kge_val_map") - _median(rows, "kge_val_free")) <= 0.05
    assert metrics["median_kge_val_map"] == pytest.approx(_median(rows, "kge_val_map"))
    assert _median(rows, "kge_val_five") <= _median(rows, "kge_val_free") - 0.18
    for c in catchments:
        assert float(rows[c.name]["cwsc_map_mm"]) == pytest.approx(
            float(rows[c.name]["sc_free_mm"]), rel=1e-4
        )
    report = (tmp_path / "own" / "report.html").read_text()
    assert "Hydrographs" in report and report.count("<img") >= 2 + len(catchments)
    assert "identifiable range" in report and "rank correlation" in report

    # The map check with teeth (issue 35): the own-label map lies inside every identifiable
    # range and ranks like the labels; the constant map (the median) and the same values
    # shuffled among the catchments do neither, while their validation KGE stays close.
    own_check = metrics
    assert all(r["in_range_map"] == "1" for r in rows.values())
    assert own_check["share_in_range_map"] == 1.0 and own_check["spearman_map_labels"] == pytest.approx(1.0)
    # Measured: 6 of the 9 ranges hold the constant (the median label; real ranges are wide), all 9
    # the own labels; the constant has no rank correlation at all.
    assert own_check["share_in_range_constant"] <= own_check["share_in_range_map"] - 2 / 9
    labels = [float(rows[c.name]["sc_free_mm"]) for c in catchments]
    shuffled = [labels[i] for i in np.random.default_rng(0).permutation(len(labels))]
    shuffled_map = _map(folder / "shuffled.tif", geoms, shuffled)
    rows_s, metrics_s, _ = _evaluate(real, shuffled_map, tmp_path / "shuffled")
    print(
        f"share in range: own {own_check['share_in_range_map']:.2f}, constant "
        f"{own_check['share_in_range_constant']:.2f}, shuffled {metrics_s['share_in_range_map']:.2f}; Spearman "
        f"own {own_check['spearman_map_labels']:.2f}, shuffled {metrics_s['spearman_map_labels']:.2f}; median "
        f"validation KGE own {own_check['median_kge_val_map']:.3f}, constant {own_check['median_kge_val_constant']:.3f}, "
        f"shuffled {metrics_s['median_kge_val_map']:.3f}"
    )
    assert metrics_s["share_in_range_map"] < own_check["share_in_range_map"]
    assert metrics_s["spearman_map_labels"] <= 0.0  # this permutation's ranks: -0.25

    import fiona

    with fiona.open(tmp_path / "own" / "scores.gpkg") as src:
        fields = set(src.schema["properties"])
        assert len(src) == len(catchments)
    assert {"kge_val_map", "cwsc_map_sd_mm", "sc_low_mm", "cwsc_five_mm", "kge_val_five"} <= fields


@pytest.fixture
def small(tmp_path):
    """Three synthetic catchments (DWBM runoff, 60 months) with polygons and a table."""
    from cwsc.hydro.models import simulate
    from cwsc.synthetic.forcing import random_params, synthetic_forcing

    p, e = synthetic_forcing(3, 60, seed=2)
    params = random_params("DWBM", 3, seed=2)
    q = np.asarray(simulate("DWBM", p, e, params).runoff)
    months = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(60)]
    ids = ["a", "b", "c"]
    polygons = [(cid, _square(LON0 + 1.0 + 1.2 * i, LAT0 + 1.5, 800.0)) for i, cid in enumerate(ids)]
    gpkg = _write_polygons(tmp_path / "gauges.gpkg", polygons)
    table = tmp_path / "series.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "month", "runoff", "precipitation", "pet"])
        for k, cid in enumerate(ids):
            for i, m in enumerate(months):
                w.writerow([cid, m, q[k, i], p[k, i], e[k, i]])
    cwsc = _map(tmp_path / "map.tif", [g for _, g in polygons], [150.0, 300.0, 450.0])
    return {"gpkg": gpkg, "table": table, "cwsc": cwsc, "folder": tmp_path, "months": months, "q": q}


def _small_args(small, out, table=None):
    return [
        "evaluate-catchments",
        "--catchments",
        small["gpkg"],
        "--id-field",
        "gauge",
        "--series",
        table or small["table"],
        "--cwsc",
        small["cwsc"],
        "--out",
        out / "s.gpkg",
        "--out-table",
        out / "s.csv",
        "--out-report",
        out / "r.html",
        "--models",
        "DWBM",
        "--max-evaluations",
        "200",
    ]


@pytest.mark.slow
def test_every_catchment_not_scored_is_listed_with_its_reason(small, tmp_path):
    table = tmp_path / "bad.csv"
    lines = small["table"].read_text().splitlines()
    kept = [lines[0]] + [x for x in lines[1:] if not x.startswith("c,")]  # c: polygon, no rows
    kept += [x.replace("b,", "b,", 1) for x in lines[1:] if x.startswith("b,2000-01")]  # b: a month twice
    kept += ["z,2001-01,3.0,50,40"]  # z: rows, no polygon
    table.write_text("\n".join(kept) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    rc, events, err = run_backend(*_small_args(small, out, table))
    assert rc == 0, err[-2000:]
    with open(out / "s.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert rows["a"]["not_scored"] == "" and float(rows["a"]["kge_cal_free"]) > 0.8
    assert "2000-01" in rows["b"]["not_scored"] and "b" in rows["b"]["not_scored"]
    assert "c" in rows["c"]["not_scored"] and "z" in rows["z"]["not_scored"]
    warnings = " ".join(e["message"] for e in events if e.get("level") == "warning")
    assert all(f"{x}" in warnings for x in ("2000-01", "z"))


@pytest.mark.slow
def test_too_few_months_is_a_reason_not_a_crash(small, tmp_path):
    table = tmp_path / "short.csv"
    lines = small["table"].read_text().splitlines()
    table.write_text("\n".join([lines[0]] + [x for x in lines[1:] if not x.startswith("a,")][:80]) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    rc, events, err = run_backend(*_small_args(small, out, table))
    assert rc == 0, err[-2000:]
    with open(out / "s.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert "24" in rows["c"]["not_scored"]  # 20 months only


@pytest.mark.slow
def test_a_missing_id_field_is_refused_naming_the_fields_there_are(small, tmp_path):
    args = _small_args(small, tmp_path)
    args[args.index("gauge")] = "station"
    refused(args, "station", "gauge", "gauges.gpkg")
    assert not list(tmp_path.glob("s.*"))
    # Last year's outputs survive a refused run byte for byte.
    old = {name: f"last year's {name}".encode() for name in ("s.gpkg", "s.csv", "r.html")}
    for name, data in old.items():
        (tmp_path / name).write_bytes(data)
    refused(args, "station")
    assert {name: (tmp_path / name).read_bytes() for name in old} == old


@pytest.mark.slow
def test_forcing_from_rasters_averaged_over_the_polygons_gives_the_tables_result(small, tmp_path):
    """P and PET as dated rasters (each polygon's cells holding its series, and the same in
    kelvin-free mm/month) instead of table columns: the same scores."""
    import rasterio

    lines = small["table"].read_text().splitlines()
    rows = [x.split(",") for x in lines[1:]]
    ids = sorted({r[0] for r in rows})
    with rasterio.open(small["cwsc"]) as src:
        shape, transform = src.shape, src.transform
        map_values = src.read(1)
    cells = {cid: np.isclose(map_values, v) for cid, v in zip(ids, (150.0, 300.0, 450.0))}
    months = small["months"]
    stacks = {}
    for column, name in ((3, "p"), (4, "e")):
        stack = np.full((len(months), *shape), np.nan, np.float32)
        for r in rows:
            stack[months.index(r[1])][cells[r[0]]] = float(r[column])
        stacks[name] = write_tif(
            tmp_path / f"{name}.tif", stack, transform=tuple(transform)[:6], descriptions=months
        )
    table = tmp_path / "runoff_only.csv"
    table.write_text("\n".join(["id,month,runoff"] + [",".join(r[:3]) for r in rows]) + "\n")
    results = []
    for folder, series, extra in (
        (tmp_path / "columns", small["table"], []),
        (tmp_path / "rasters", table, ["--precip", stacks["p"], "--pet", stacks["e"]]),
    ):
        folder.mkdir()
        rc, _, err = run_backend(*_small_args(small, folder, series), *extra)
        assert rc == 0, err[-2000:]
        with open(folder / "s.csv", newline="") as f:
            results.append({r["id"]: r for r in csv.DictReader(f)})
    for cid in ids:
        assert results[1][cid]["not_scored"] == ""
        assert float(results[1][cid]["kge_cal_free"]) == pytest.approx(
            float(results[0][cid]["kge_cal_free"]), abs=1e-3
        )


@pytest.mark.slow
def test_a_catchment_whose_forcing_cannot_balance_is_warned_about_and_flagged(small, tmp_path):
    """Issue 35: catchment c's PET cut to a fifth, so its long-term P - Q exceeds the PET; the
    run names it with its numbers and sets bit 128; a and b balance."""
    from cwsc.hydro.balance import water_balance
    from cwsc.hydro.labels import FLAG_WATER_BALANCE

    table = tmp_path / "low_pet.csv"
    with open(small["table"], newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        if r["id"] == "c":
            r["pet"] = str(float(r["pet"]) / 5)
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    c = [r for r in rows if r["id"] == "c"]
    expected = water_balance(
        *(np.array([float(r[k]) for r in c]) for k in ("precipitation", "pet", "runoff"))
    )
    assert expected.bad
    out = tmp_path / "out"
    out.mkdir()
    rc, events, err = run_backend(*_small_args(small, out, table))
    assert rc == 0, err[-2000:]
    with open(out / "s.csv", newline="") as f:
        scores = {r["id"]: r for r in csv.DictReader(f)}
    assert int(scores["c"]["flags"]) & FLAG_WATER_BALANCE
    assert (
        not int(scores["a"]["flags"]) & FLAG_WATER_BALANCE
        and not int(scores["b"]["flags"]) & FLAG_WATER_BALANCE
    )
    said = [e["message"] for e in events if e.get("level") == "warning" and "bit 128" in e["message"]]
    assert (
        len(said) == 1
        and f"c: Q/P {expected.runoff_excess:.2f}, (P - Q)/PET {expected.evaporation_excess:.2f}" in said[0]
    )
    assert "a:" not in said[0] and "b:" not in said[0]


@pytest.mark.slow
def test_scores_are_one_layer_of_the_users_project_geopackage(small, tmp_path):
    """--out project.gpkg: the scores become the layer cwsc_scores (or --layer); the user's
    layers (here the gauges' polygons) stay as they were (issue 33: they were all lost)."""
    import fiona

    project = tmp_path / "project.gpkg"
    project.write_bytes(small["gpkg"].read_bytes())  # the user's project: layer "gauges"
    with fiona.open(project) as src:
        mine = [dict(f.properties) for f in src]
    args = _small_args(small, tmp_path)
    args[args.index(small["gpkg"])] = project  # the polygons come from the project too
    args[args.index(tmp_path / "s.gpkg")] = project
    before = project.read_bytes()
    refused([*args, "--layer", "gauges"], "OUTPUT", "'gauges'", "holds the catchments")
    assert project.read_bytes() == before
    args[args.index(project, args.index("--out"))] = f"{project}|layername=scores 2024"
    rc, events, err = run_backend(*args)
    assert rc == 0, err[-2000:]
    assert sorted(fiona.listlayers(project)) == ["gauges", "scores 2024"]
    with fiona.open(project, layer="gauges") as src:
        assert [dict(f.properties) for f in src] == mine
    with fiona.open(project, layer="scores 2024") as src:
        assert {f.properties["id"] for f in src} == {"a", "b", "c"}


def test_the_polygon_layer_is_picked_as_qgis_writes_it(small, tmp_path):
    """--catchments path|layername=NAME, as QGIS writes a layer of a GeoPackage: naming the
    gauges' points layer is refused, naming the polygon layers there are, before any work."""
    import fiona
    from fiona.crs import CRS

    schema = {"geometry": "Point", "properties": {"gauge": "str"}}
    with fiona.open(
        small["gpkg"], "w", driver="GPKG", schema=schema, crs=CRS.from_epsg(4326), layer="stations"
    ) as dst:
        dst.write({"geometry": {"type": "Point", "coordinates": (6.0, 46.5)}, "properties": {"gauge": "a"}})  # fmt: skip
    args = _small_args(small, tmp_path)
    args[args.index(small["gpkg"])] = f"{small['gpkg']}|layername=stations"
    refused(args, "'stations'", "point", "its polygon layers: gauges", "|layername=gauges")
    assert not list(tmp_path.glob("s.*"))


@pytest.mark.network
def test_bit_32_fires_at_a_snowy_gauge_without_temperature_and_not_at_a_snowless_one(real, tmp_path):
    """Issue 35: bit 32 fired for none of six snowy gauges. Au Saumon (a quarter of its
    precipitation snow) and the Lahn at Marburg (4 %) without their temperature column: the
    first is flagged and named in a warning, the second is not; with temperature neither."""
    import real_catchments as rc

    catchments, polygons, _, _, folder = real
    pick = [c for c in catchments if c.name in ("au_saumon", "lahn_marburg")]
    gpkg = _write_polygons(
        tmp_path / "two.gpkg", [(n, g) for n, g in polygons if n in ("au_saumon", "lahn_marburg")]
    )
    geoms = [g for n, g in polygons if n in ("au_saumon", "lahn_marburg")]
    cwsc = _map(tmp_path / "map.tif", geoms, [150.0, 150.0])
    got = {}
    for name, columns in (
        ("without", ("runoff", "precipitation", "pet")),
        ("with", ("runoff", "precipitation", "pet", "temperature")),
    ):
        series = rc.write_series_csv(tmp_path / f"{name}.csv", pick, columns)
        out = tmp_path / name
        out.mkdir()
        args = ["evaluate-catchments", "--catchments", gpkg, "--id-field", "gauge", "--series", series]
        args += [
            "--cwsc",
            cwsc,
            "--out",
            out / "s.gpkg",
            "--out-table",
            out / "s.csv",
            "--out-report",
            out / "r.html",
        ]
        args += ["--models", "DWBM", "--max-evaluations", "200"]
        code, events, err = run_backend(*args, timeout=900)
        assert code == 0, err[-3000:]
        with open(out / "s.csv", newline="") as f:
            got[name] = {r["id"]: int(r["flags"]) for r in csv.DictReader(f)}
        said = [e["message"] for e in events if e.get("level") == "warning" and "bit 32" in e["message"]]
        got[name]["said"] = said
    assert got["without"]["au_saumon"] & 32 and not got["without"]["lahn_marburg"] & 32
    assert len(got["without"]["said"]) == 1 and "au_saumon" in got["without"]["said"][0]
    assert "lahn_marburg" not in got["without"]["said"][0]
    assert not got["with"]["au_saumon"] & 32 and not got["with"]["said"]
