"""evaluate-catchments refuses what cannot be scored and says why (issue #33 sections 2 and 4):
the map, table and rasters go through the input gate; a run where nothing could be scored
exits 2 with last year's files unchanged; a catchment too short for WARMUP_MONTHS is skipped
with its reason; runoff in m3/s read as mm/month is named with the unit that fits; an
undefined KGE counts as the run's worst score."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from backend_testing import refused, run_backend, write_tif

sys.path.insert(0, str(Path(__file__).parent))  # the fixtures of test_evaluate_catchments.py
import test_evaluate_catchments as base  # noqa: E402

_map, _small_args, _square, _write_polygons = base._map, base._small_args, base._square, base._write_polygons
small = base.small  # the three synthetic catchments (a fixture)

LAT0, LON0 = 45.0, 5.0


def _keep_last_year(folder):
    old = {name: f"last year's {name}".encode() for name in ("s.gpkg", "s.csv", "r.html")}
    for name, data in old.items():
        (folder / name).write_bytes(data)
    return old


def _unchanged(folder, old):
    return {name: (folder / name).read_bytes() for name in old} == old


def test_an_undeclared_minus_9999_in_the_map_is_refused_not_averaged(small, tmp_path):
    import rasterio

    with rasterio.open(small["cwsc"]) as src:
        data, profile = src.read(), src.profile
    data[data == 300.0] = -9999.0  # catchment b's cells: sc of -2441 mm once averaged
    data[~np.isfinite(data)] = 0.0
    profile.update(nodata=None)
    with rasterio.open(tmp_path / "map_fill.tif", "w", **profile) as dst:
        dst.write(data)
    args = _small_args(small, tmp_path)
    args[args.index("--cwsc") + 1] = tmp_path / "map_fill.tif"
    old = _keep_last_year(tmp_path)
    refused(args, "CWSC", "map_fill.tif", "-9999")
    assert _unchanged(tmp_path, old)


def test_an_undeclared_minus_9999_in_a_precipitation_raster_is_refused_not_averaged(small, tmp_path):
    """P from a dated raster (the table has no precipitation column) holding -9999 in one of
    catchment a's cells, undeclared: refused naming the file, not averaged into a's P."""
    import rasterio

    with rasterio.open(small["cwsc"]) as src:
        profile, inside = src.profile, np.argwhere(src.read(1) == 150.0)[0]
    stack = np.full((len(small["months"]), profile["height"], profile["width"]), 80.0, np.float32)
    stack[7, inside[0], inside[1]] = -9999.0
    profile.update(count=stack.shape[0], nodata=None)
    with rasterio.open(tmp_path / "p_fill.tif", "w", **profile) as dst:
        dst.write(stack)
        for band, month in enumerate(small["months"], start=1):
            dst.set_band_description(band, month)
    lines = [x.split(",") for x in small["table"].read_text().splitlines()]
    table = tmp_path / "no_p.csv"
    table.write_text("\n".join(",".join([r[0], r[1], r[2], r[4]]) for r in lines) + "\n")
    args = [*_small_args(small, tmp_path, table), "--precip", tmp_path / "p_fill.tif"]
    refused(args, "PRECIPITATION", "p_fill.tif", "-9999", "band 8")


def test_a_forcing_file_given_as_the_map_is_refused_by_its_bands(small, tmp_path):
    stack = write_tif(tmp_path / "precip.tif", np.full((60, 6, 6), 80.0), descriptions=small["months"])
    args = _small_args(small, tmp_path)
    args[args.index("--cwsc") + 1] = stack
    refused(args, "CWSC", "precip.tif", "60 bands")


def test_a_reference_named_map_sd_is_refused_before_any_work(small, tmp_path):
    args = [*_small_args(small, tmp_path), "--reference-maps", small["cwsc"], "--reference-names", "map_sd"]
    refused(args, "REFERENCE_NAMES", "map_sd")
    assert not (tmp_path / "s.csv").exists()


def test_a_run_where_nothing_can_be_scored_refuses_and_keeps_last_years_files(small, tmp_path):
    """Daily rows: every catchment has its months more than once, so none can be scored."""
    table = tmp_path / "daily.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "month", "runoff", "precipitation", "pet"])
        for cid in ("a", "b", "c"):
            for day in range(1, 29):
                for month in small["months"][:30]:
                    w.writerow([cid, f"{month}-{day:02d}", 1.0, 3.0, 2.0])
    old = _keep_last_year(tmp_path)
    refused(_small_args(small, tmp_path, table), "no catchment could be scored", "more than once")
    assert _unchanged(tmp_path, old)


@pytest.mark.slow
def test_a_catchment_too_short_for_the_warmup_is_skipped_with_its_reason(small, tmp_path):
    table = tmp_path / "short_a.csv"
    lines = small["table"].read_text().splitlines()
    a = [x for x in lines[1:] if x.startswith("a,")][:30]
    table.write_text("\n".join([lines[0], *a, *[x for x in lines[1:] if not x.startswith("a,")]]) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    rc, events, err = run_backend(*_small_args(small, out, table), "--warmup-months", "30")
    assert rc == 0, (events[-1:], err[-2000:])
    with open(out / "s.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert "WARMUP_MONTHS=30" in rows["a"]["not_scored"] and "catchment a" in rows["a"]["not_scored"]
    assert rows["b"]["not_scored"] == "" and rows["c"]["not_scored"] == ""
    assert "WARMUP_MONTHS=30" in (out / "r.html").read_text()


@pytest.mark.slow
def test_a_catchment_always_below_freezing_is_skipped_with_its_reason(small, tmp_path):
    lines = small["table"].read_text().splitlines()
    table = tmp_path / "cold_a.csv"
    rows = [lines[0] + ",temperature"]
    rows += [x + (",-6.5" if x.startswith("a,") else ",12.0") for x in lines[1:]]
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    rc, events, err = run_backend(*_small_args(small, out, table))
    assert rc == 0, (events[-1:], err[-2000:])
    with open(out / "s.csv", newline="") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert "below freezing in every month" in rows["a"]["not_scored"]
    assert rows["b"]["not_scored"] == "" and rows["c"]["not_scored"] == ""


def test_runoff_in_m3s_left_at_mm_per_month_is_named_with_the_unit_that_fits(tmp_path):
    """A 200,000 km2 basin whose table gives its discharge in m3/s: read as mm/month it is
    several times its precipitation; the refusal says RUNOFF_UNITS=m3/s."""
    from cwsc.hydro.models import simulate
    from cwsc.synthetic.forcing import random_params, synthetic_forcing

    p, e = synthetic_forcing(1, 60, seed=5)
    q_mm = np.asarray(simulate("DWBM", p, e, random_params("DWBM", 1, seed=5)).runoff)[0]
    area = 200000.0
    months = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(60)]
    seconds = np.array([86400.0 * (29 if m.endswith("02") else 30) for m in months])
    q_m3s = q_mm * area * 1e6 / 1000.0 / seconds
    geom = _square(LON0 + 6.0, LAT0 + 3.0, area)
    gpkg = _write_polygons(tmp_path / "basin.gpkg", [("big", geom)])
    table = tmp_path / "discharge.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "month", "runoff", "precipitation", "pet"])
        for i, m in enumerate(months):
            w.writerow(["big", m, q_m3s[i], p[0, i], e[0, i]])
    cwsc = _map(tmp_path / "map.tif", [geom], [200.0])
    args = _small_args({"gpkg": gpkg, "cwsc": cwsc}, tmp_path, table)
    refused(args, "catchment big", "times its precipitation", "RUNOFF_UNITS=m3/s")


def test_an_undefined_kge_counts_as_the_runs_worst_score_and_says_why():
    from cwsc.commands.evaluate_catchments import _worst_for_undefined
    from cwsc.evaluation.catchments import CatchmentScore, Fit

    def fit(kge_val):
        return Fit("DWBM", 0.8, kge_val, {"sc": 100.0}, np.zeros(3))

    scores = {
        "a": CatchmentScore(
            100.0, 50.0, 150.0, 0, ["DWBM"], fit(0.7), {"map": fit(0.6), "constant": fit(0.5)}
        ),
        "b": CatchmentScore(
            100.0, 50.0, 150.0, 0, ["DWBM"], fit(0.4), {"map": fit(np.nan), "constant": fit(-0.2)}
        ),
    }
    notes = _worst_for_undefined(scores)
    assert scores["b"].fixed["map"].kge_val == pytest.approx(-0.2)
    assert set(notes) == {"b"} and "map" in notes["b"] and "worst" in notes["b"] and "-0.200" in notes["b"]
