"""The real catchments of ``real_catchments.py``: downloaded from PyPI on first use (skipped
when no package registry answers), then checked for what a water balance needs."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import real_catchments as rc

pytestmark = pytest.mark.network

#: Months each catchment has in the pinned package versions (complete months only).
MONTHS = {
    "leaf_river": 372,
    "au_saumon": 346,
    "baskatong": 456,
    "lahn_marburg": 374,
    "dill_asslar": 374,
    "lahn_leun": 374,
    "lahn_kalkofen": 374,
    "fulda": 120,
    "leaf_river_1952": 122,
}


@pytest.fixture(scope="module")
def catchments():
    try:
        return {c.name: c for c in rc.all_catchments()}
    except rc.DataUnavailable as exc:
        pytest.skip(f"real catchment data unavailable (no package registry reachable?): {exc}")


def _next(month: str) -> str:
    y, m = int(month[:4]), int(month[5:])
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


@pytest.mark.parametrize("name", rc.NAMES)
def test_loads_consecutive_complete_months(catchments, name):
    c = catchments[name]
    assert c.name == name and c.title and c.source
    assert len(c.months) == MONTHS[name]
    assert all(_next(a) == b for a, b in zip(c.months, c.months[1:]))
    for series in (c.precipitation, c.pet, c.runoff, c.temperature):
        if series is None:
            continue
        assert series.dtype == np.float64 and series.shape == (len(c.months),)
        assert np.isfinite(series).all()
    assert (c.precipitation >= 0).all() and (c.pet >= 0).all() and (c.runoff >= 0).all()
    assert -90 <= c.latitude <= 90
    assert c.area_km2 > 0 or (math.isnan(c.area_km2) and name in ("au_saumon", "baskatong"))
    assert (c.temperature is None) == (name in ("leaf_river", "leaf_river_1952"))


@pytest.mark.parametrize("name", rc.NAMES)
def test_water_balance_is_plausible(catchments, name):
    c = catchments[name]
    ratio = c.runoff.sum() / c.precipitation.sum()
    assert 0.05 < ratio < 1.0
    annual_pet = c.pet.mean() * 12
    assert 300 < annual_pet < 1500


@pytest.mark.parametrize("name", ["au_saumon", "baskatong"])
def test_quebec_winters_are_cold(catchments, name):
    c = catchments[name]
    month = np.array([int(m[5:]) for m in c.months])
    january = c.temperature[month == 1].mean()
    july = c.temperature[month == 7].mean()
    assert january < -5 < july


def test_nested_lahn_gauges_are_whole_areas(catchments):
    areas = rc.LAHN_OWN_AREAS
    assert catchments["lahn_marburg"].area_km2 == pytest.approx(areas["lahn_marb"])
    assert catchments["dill_asslar"].area_km2 == pytest.approx(areas["dill_assl"])
    assert catchments["lahn_leun"].area_km2 == pytest.approx(
        areas["lahn_leun"] + areas["lahn_marb"] + areas["dill_assl"]
    )
    assert catchments["lahn_kalkofen"].area_km2 == pytest.approx(sum(areas.values()))


def test_copies_are_the_callers(catchments):
    c = rc.catchment("fulda")
    c.runoff[:] = -1.0
    assert (rc.catchment("fulda").runoff >= 0).all()
    assert (catchments["fulda"].runoff >= 0).all()


def test_series_csv_round_trip(catchments, tmp_path):
    chosen = [catchments["leaf_river"], catchments["au_saumon"]]
    path = rc.write_series_csv(tmp_path / "series.csv", chosen)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "month", "runoff", "precipitation", "pet", "temperature"]
    assert len(rows) == sum(len(c.months) for c in chosen)
    for c in chosen:
        mine = [r for r in rows if r["id"] == c.name]
        assert [r["month"] for r in mine] == c.months
        for col in ("runoff", "precipitation", "pet"):
            np.testing.assert_array_equal(np.array([float(r[col]) for r in mine]), getattr(c, col))
        if c.temperature is None:
            assert all(r["temperature"] == "" for r in mine)
        else:
            np.testing.assert_array_equal(np.array([float(r["temperature"]) for r in mine]), c.temperature)
    only = rc.write_series_csv(tmp_path / "q.csv", chosen, columns=("runoff",))
    assert only.read_text().splitlines()[0] == "id,month,runoff"


def test_thornthwaite_against_a_hand_computed_month():
    # One year at 12 degrees every month: I = 12 * (12/5)**1.514, a from I; at the equator
    # (12-hour days) a 30-day month gives 16 * (10 * 12 / I) ** a.
    months = [f"2001-{m:02d}" for m in range(1, 13)]
    heat = 12 * (12 / 5) ** 1.514
    a = 6.75e-7 * heat**3 - 7.71e-5 * heat**2 + 1.792e-2 * heat + 0.49239
    pet = rc.thornthwaite(months, np.full(12, 12.0), 0.0)
    assert pet[3] == pytest.approx(16 * (120 / heat) ** a, rel=1e-3)  # April: 30 days
    assert pet[0] == pytest.approx(16 * (120 / heat) ** a * 31 / 30, rel=1e-3)
    assert (rc.thornthwaite(months, np.full(12, -3.0), 50.0) == 0).all()
    north = rc.thornthwaite(months, np.full(12, 12.0), 50.0)
    assert north[5] > pet[5] > north[11]  # long June days, short December ones


def test_monthly_drops_partial_and_gappy_months():
    import datetime as dt

    start = dt.date(2000, 1, 15)
    dates = [start + dt.timedelta(days=i) for i in range(120)]  # 15 Jan to 13 May
    p = np.ones(len(dates))
    p[dates.index(dt.date(2000, 3, 10))] = np.nan
    months, out = rc.monthly(dates, {"p": p}, {"t": np.zeros(len(dates))})
    # Jan and May are partial, March has a gap: Feb and April remain, not consecutive, so the
    # longest run is one month (the first of the two).
    assert months == ["2000-02"]
    assert out["p"].tolist() == [29.0] and out["t"].tolist() == [0.0]
