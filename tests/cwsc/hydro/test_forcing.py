"""Forcing laid out like the real products, read right: each NetCDF fixture (CRU TS, GLEAM,
GRUN, ERA5-like kg m-2 s-1 on 0..360 longitudes, east-to-west longitudes, a noleap calendar,
different periods) holds the same water as plain mm/month GeoTIFFs, and is checked against
them cell by cell and month by month, and by the labels calibrate makes from it."""

from __future__ import annotations

import numpy as np
import pytest
from backend_testing import last_event, read_tif, run_backend, write_tif
from product_files import (
    LAT,
    LON,
    START,
    TRANSFORM,
    N,
    cf_time,
    cru,
    era5,
    gleam,
    grun,
    make_truth,
    reference,
    write_nc,
)

from cwsc.errors import PeriodError
from cwsc.io import months as M
from cwsc.io.forcing import ForcingOptions, open_forcing


@pytest.fixture(scope="module")
def truth():
    return make_truth()


def _read(p, e, q, **options):
    inputs, alignment = open_forcing(p, e, q, ForcingOptions(**options))
    try:
        return [r.read() for r in inputs], alignment, inputs[0].grid
    finally:
        for r in inputs:
            r.close()


COMMON = list(range(M.month(2001, 6), M.month(2004, 12) + 1))  # of CRU, GLEAM, GRUN


def test_cru_gleam_grun_over_different_periods_read_as_the_same_water(tmp_path, truth):
    (p, e, q), alignment, grid = _read(
        cru(tmp_path, truth),
        gleam(tmp_path, truth),
        grun(tmp_path, truth),
        variables={"PRECIPITATION": "pre"},
    )
    assert alignment.months == COMMON
    ref = reference(tmp_path, truth, COMMON)
    (rp, re_, rq), ref_alignment, ref_grid = _read(ref["P"], ref["E"], ref["Q"])
    assert ref_alignment.months == COMMON and grid.same_as(ref_grid)
    assert grid.crs_name() == "EPSG:4326" and grid.transform == TRANSFORM
    np.testing.assert_allclose(p, rp, rtol=1e-6)
    np.testing.assert_allclose(e, re_, rtol=1e-5)
    np.testing.assert_allclose(q, rq, rtol=1e-5)


def test_kg_m2_s1_on_0_360_longitudes_and_east_to_west_longitudes(tmp_path, truth):
    months = list(range(START, START + N))
    ref = reference(tmp_path, truth, months)
    era = era5(tmp_path, truth, "P")
    west = write_nc(
        tmp_path / "east_to_west.nc",
        {"pet": (truth["E"][:, :, ::-1], {"units": "mm month-1"})},
        months,
        lon=LON[::-1],
    )
    (p, e, _), _, grid = _read(era, west, ref["Q"])
    (rp, re_, _), _, ref_grid = _read(ref["P"], ref["E"], ref["Q"])
    assert grid.transform == TRANSFORM
    np.testing.assert_allclose(p, rp, rtol=1e-5)
    np.testing.assert_allclose(e, re_, rtol=1e-6)


def test_a_noleap_calendar_converts_with_its_owndays(tmp_path, truth):
    months = list(range(M.month(2001, 1), START + N))
    ref = reference(tmp_path, truth, months)
    (_, e, _), alignment, _ = _read(ref["P"], gleam(tmp_path, truth, "noleap"), ref["Q"])
    (_, re_, _), _, _ = _read(ref["P"], ref["E"], ref["Q"])
    feb_2004 = alignment.months.index(M.month(2004, 2))  # 29 days in the real 2004
    np.testing.assert_allclose(e, re_, rtol=1e-5)
    assert M.days_in(M.month(2004, 2), "noleap") == 28 and M.days_in(M.month(2004, 2)) == 29
    assert np.isfinite(e[feb_2004]).all()


def test_gdal_netcdf_band_metadata_dates_a_geotiff(tmp_path, truth):
    """A GeoTIFF made from NetCDF by gdal_translate keeps NETCDF_DIM_time per band."""
    import rasterio
    from affine import Affine

    months = list(range(START, START + N))
    stamps = cf_time(months, "days since 1900-01-01")
    path = tmp_path / "translated.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=len(LON),
        height=len(LAT),
        count=N,
        dtype="float32",
        crs="EPSG:4326",
        transform=Affine(*TRANSFORM),
    ) as dst:
        dst.write(truth["P"].astype(np.float32))
        dst.update_tags(**{"time#units": "days since 1900-01-01", "time#calendar": "standard"})
        for i, d in enumerate(stamps, start=1):
            dst.update_tags(i, NETCDF_DIM_time=str(d))
    ref = reference(tmp_path, truth, months[5:])
    (p, _, _), alignment, _ = _read(str(path), ref["E"], ref["Q"])
    assert alignment.months == months[5:]
    np.testing.assert_allclose(p, read_tif(ref["P"])[0], rtol=1e-6)


@pytest.mark.slow
def test_labels_from_the_products_equal_the_geotiffreference(tmp_path, truth):
    common = COMMON
    ref = reference(tmp_path, truth, common)
    fast = ["--max-evaluations", "200", "--models", "SWBM", "--seed", "3"]
    out = {}
    for name, (p, e, q, extra) in {
        "products": (
            cru(tmp_path, truth),
            gleam(tmp_path, truth),
            grun(tmp_path, truth),
            ["--precip-var", "pre"],
        ),
        "geotiff": (ref["P"], ref["E"], ref["Q"], []),
    }.items():
        rc, events, err = run_backend(
            "calibrate",
            "--precip",
            p,
            "--pet",
            e,
            "--runoff",
            q,
            *extra,
            *fast,
            "--out-cwsc",
            tmp_path / f"{name}_cwsc.tif",
            "--out-kge",
            tmp_path / f"{name}_kge.tif",
        )
        assert rc == 0, err
        logs = [x["message"] for x in events if x["event"] == "log"]
        assert any("period used: 2001-06 to 2004-12 (43 months)" in m for m in logs), logs
        out[name] = read_tif(tmp_path / f"{name}_cwsc.tif")
    a, profile, _ = out["products"]
    b, ref_profile, _ = out["geotiff"]
    assert profile["crs"] == ref_profile["crs"] and profile["transform"] == ref_profile["transform"]
    same = np.isfinite(a[0]) == np.isfinite(b[0])
    assert same.all()
    ok = np.isfinite(a[0])
    assert np.median(np.abs(a[0][ok] - b[0][ok]) / np.maximum(b[0][ok], 1e-6)) < 0.01
    import rasterio

    with rasterio.open(tmp_path / "products_kge.tif") as src:
        assert "(2003-06 to" in src.descriptions[0] or "to 2004" in src.descriptions[0]
        tags = src.tags()
    assert tags["first_month"] == "2001-06" and tags["last_month"] == "2004-12"
    assert tags["calibration"].startswith("2001-11 to")  # after 5 warm-up months


# -- bad input: each a message naming the file and the problem, nothing written -------------


def _bad(tmp_path, p, e, q, *words, extra=()):
    rc, events, _ = run_backend(
        "calibrate",
        "--precip",
        p,
        "--pet",
        e,
        "--runoff",
        q,
        *extra,
        "--out-cwsc",
        tmp_path / "c.tif",
        "--out-kge",
        tmp_path / "k.tif",
    )
    error = last_event(events, "error")
    assert rc == 2 and error["kind"] == "bad_input", (rc, error)
    for w in words:
        assert w in error["message"], error["message"]
    assert not (tmp_path / "c.tif").exists() and not (tmp_path / "k.tif").exists()
    return error["message"]


@pytest.mark.slow
def test_no_common_months_is_refused_naming_the_periods(tmp_path, truth):
    early = reference(tmp_path, truth, list(range(START, START + 12)))
    late = list(range(START + 24, START + 36))
    q = write_tif(
        tmp_path / "late_q.tif",
        truth["Q"][24:36],
        transform=TRANSFORM,
        descriptions=[M.label(m) for m in late],
    )
    _bad(
        tmp_path, early["P"], early["E"], q, "no month in common", "2000-07 to 2001-06", "2002-07 to 2003-06"
    )


@pytest.mark.slow
def test_a_gap_in_precipitation_and_duplicate_steps_are_refused(tmp_path, truth):
    months = list(range(START, START + 24))
    ref = reference(tmp_path, truth, months)
    gap = [m for m in months if m != START + 5]
    p = write_tif(
        tmp_path / "p_gap.tif",
        truth["P"][[months.index(m) for m in gap]],
        transform=TRANSFORM,
        descriptions=[M.label(m) for m in gap],
    )
    _bad(
        tmp_path,
        p,
        ref["E"],
        ref["Q"],
        "PRECIPITATION",
        "p_gap.tif",
        "months are missing",
        "2000-11 and 2001-01",
    )
    dup = months[:10] + [months[9]] + months[11:]
    e = write_tif(
        tmp_path / "e_dup.tif", truth["E"][:24], transform=TRANSFORM, descriptions=[M.label(m) for m in dup]
    )
    _bad(tmp_path, ref["P"], e, ref["Q"], "PET", "e_dup.tif", "duplicate time steps", "band 11")


def test_a_runoff_gap_is_a_missing_month(tmp_path, truth):
    months = list(range(START, START + 24))
    ref = reference(tmp_path, truth, months)
    gap = [m for m in months if m != START + 7]
    q = write_tif(
        tmp_path / "q_gap.tif",
        truth["Q"][[months.index(m) for m in gap]],
        transform=TRANSFORM,
        descriptions=[M.label(m) for m in gap],
    )
    (_, _, qq), alignment, _ = _read(ref["P"], ref["E"], q)
    assert alignment.months == months and np.isnan(qq[7]).all() and np.isfinite(qq[8]).all()


@pytest.mark.slow
def test_unknown_units_and_implausible_units(tmp_path, truth):
    months = list(range(START, START + 24))
    ref = reference(tmp_path, truth, months)
    odd = write_nc(tmp_path / "odd.nc", {"pet": (truth["E"][:24], {"units": "furlongs"})}, months)
    _bad(tmp_path, ref["P"], odd, ref["Q"], "PET", "odd.nc", "unknown units 'furlongs'", "PET_UNITS")
    per_day = write_nc(tmp_path / "pet_per_day_no_units.nc", {"pet": (truth["E"][:24] / 30.0, {})}, months)
    rc, events, err = run_backend(
        "calibrate",
        "--precip",
        ref["P"],
        "--pet",
        per_day,
        "--runoff",
        ref["Q"],
        "--max-evaluations",
        "30",
        "--out-cwsc",
        tmp_path / "c.tif",
        "--out-kge",
        tmp_path / "k.tif",
    )
    assert rc == 0, err
    messages = [x["message"] for x in events if x["event"] == "log"]
    assert any("declares no units: read as mm/month" in m for m in messages)
    warnings = [x["message"] for x in events if x.get("level") == "warning"]
    assert any("pet_per_day_no_units.nc" in w and "is it in mm/day?" in w for w in warnings), warnings
    rc, events, err = run_backend(
        "calibrate",
        "--precip",
        ref["P"],
        "--pet",
        per_day,
        "--runoff",
        ref["Q"],
        "--pet-units",
        "mm/day",
        "--max-evaluations",
        "30",
        "--out-cwsc",
        tmp_path / "c2.tif",
        "--out-kge",
        tmp_path / "k2.tif",
    )
    assert rc == 0 and not any("mm/day?" in x.get("message", "") for x in events)


@pytest.mark.slow
def test_runoff_above_precipitation_is_warned(tmp_path, truth):
    months = list(range(START, START + 24))
    ref = reference(tmp_path, truth, months)
    q = write_tif(
        tmp_path / "q_x3.tif",
        truth["Q"][:24] * 3,
        transform=TRANSFORM,
        descriptions=[M.label(m) for m in months],
    )
    rc, events, _ = run_backend(
        "calibrate",
        "--precip",
        ref["P"],
        "--pet",
        ref["E"],
        "--runoff",
        q,
        "--max-evaluations",
        "30",
        "--out-cwsc",
        tmp_path / "c.tif",
        "--out-kge",
        tmp_path / "k.tif",
    )
    warnings = [x["message"] for x in events if x.get("level") == "warning"]
    assert any("runoff of the whole period exceeds its precipitation" in w for w in warnings)


@pytest.mark.slow
def test_undated_beside_dated_needs_its_start(tmp_path, truth):
    months = list(range(START, START + 24))
    ref = reference(tmp_path, truth, months)
    undated = write_tif(tmp_path / "q_undated.tif", truth["Q"][2:26], transform=TRANSFORM)
    _bad(
        tmp_path,
        ref["P"],
        ref["E"],
        undated,
        "RUNOFF",
        "q_undated.tif",
        "does not say which months",
        "RUNOFF_START",
    )
    (_, _, q), alignment, _ = _read(ref["P"], ref["E"], undated, starts={"RUNOFF": START + 2})
    assert alignment.months == months[2:]
    np.testing.assert_allclose(q, truth["Q"][2:24], rtol=1e-6)


@pytest.mark.slow
def test_a_netcdf_without_coordinates_is_refused(tmp_path, truth):
    months = list(range(START, START + 24))
    ref = reference(tmp_path, truth, months)
    bare = write_nc(
        tmp_path / "bare.nc", {"pet": (truth["E"][:24], {"units": "mm/month"})}, months, coords=False
    )
    _bad(tmp_path, ref["P"], bare, ref["Q"], "PET", "bare.nc", "no coordinate values")


@pytest.mark.slow
def test_a_variable_that_is_not_in_the_file_and_an_undecodable_time(tmp_path, truth):
    months = list(range(START, START + 24))
    ref = reference(tmp_path, truth, months)
    cru_file = cru(tmp_path, truth)
    _bad(tmp_path, cru_file, ref["E"], ref["Q"], "PRECIPITATION", "several variables (pre, stn)")
    _bad(
        tmp_path,
        cru_file,
        ref["E"],
        ref["Q"],
        "PRECIPITATION",
        "has no variable 'tmp'",
        extra=["--precip-var", "tmp"],
    )
    broken = write_nc(
        tmp_path / "broken_time.nc",
        {"pet": (truth["E"][:24], {"units": "mm/month"})},
        months,
        time_attrs={"units": "days since 1900-01-01", "calendar": "standard"},
    )
    import netCDF4

    with netCDF4.Dataset(broken, "a") as ds:
        ds["time"].units = "fortnights since the flood"
    _bad(tmp_path, ref["P"], broken, ref["Q"], "PET", "broken_time.nc", "time coordinate cannot be decoded")


def test_period_start_and_end_restrict_the_run(tmp_path, truth):
    months = list(range(START, START + 36))
    ref = reference(tmp_path, truth, months)
    _, alignment, _ = _read(ref["P"], ref["E"], ref["Q"], period_start=START + 6, period_end=START + 29)
    assert alignment.months == months[6:30]
    with pytest.raises(PeriodError, match="PERIOD_START: '2001-13' is not a month"):
        M.parse("2001-13", "PERIOD_START")
