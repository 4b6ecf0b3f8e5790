"""``python -m cwsc prepare``: products on different grids, units and periods in; the three
forcings on one grid in mm/month over the common months, and climate predictors, out."""

from __future__ import annotations

import numpy as np
import pytest
from backend_testing import last_event, read_tif, run_backend, write_tif
from product_files import START, TRANSFORM, cru, era5, gleam, grun, make_truth, reference

from cwsc.io import months as M

COMMON = list(range(M.month(2001, 6), M.month(2004, 12) + 1))


@pytest.fixture(scope="module")
def truth():
    return make_truth()


def _prepare(tmp_path, p, e, q, *extra):
    out = {
        "--out-precip": tmp_path / "P.tif",
        "--out-pet": tmp_path / "PET.tif",
        "--out-runoff": tmp_path / "Q.tif",
        "--out-predictors": tmp_path / "predictors",
    }
    rc, events, err = run_backend(
        "prepare",
        "--precip",
        p,
        "--pet",
        e,
        "--runoff",
        q,
        *extra,
        *[str(x) for kv in out.items() for x in kv],
    )
    return rc, events, err, out


@pytest.mark.slow
def test_products_come_out_on_one_grid_in_mm_per_month_over_the_common_months(tmp_path, truth):
    rc, events, err, out = _prepare(
        tmp_path, cru(tmp_path, truth), gleam(tmp_path, truth), grun(tmp_path, truth), "--precip-var", "pre"
    )
    assert rc == 0, err
    ref = reference(tmp_path, truth, COMMON)
    for key, name in (("P", "--out-precip"), ("E", "--out-pet"), ("Q", "--out-runoff")):
        data, profile, descriptions = read_tif(out[name])
        np.testing.assert_allclose(data, read_tif(ref[key])[0], rtol=1e-5)
        assert descriptions[0].endswith("2001-06") and descriptions[-1].endswith("2004-12")
        assert profile["transform"][:6] == TRANSFORM and profile["crs"] == "EPSG:4326"
    folder = out["--out-predictors"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [".cwsc-folder.json"]  # the record of what prepare wrote there
        + [
            f"{k}.tif"
            for k in (
                "precipitation",
                "pet",
                "runoff",
                "aridity",
                "runoff_coefficient",
                "precipitation_seasonality",
            )
        ]
    )
    p_year, _, desc = read_tif(folder / "precipitation.tif")
    assert desc == ["mean annual precipitation (mm/yr)"]
    i0 = M.month(2002, 1) - START  # whole years: 2002 .. 2004
    np.testing.assert_allclose(p_year[0], truth["P"][i0 : i0 + 36].mean(0) * 12, rtol=1e-5)
    aridity = read_tif(folder / "aridity.tif")[0][0]
    np.testing.assert_allclose(
        aridity, truth["E"][i0 : i0 + 36].mean(0) / truth["P"][i0 : i0 + 36].mean(0), rtol=1e-4
    )
    result = last_event(events, "result")
    assert result["metrics"]["first_month"] == "2001-06" and result["metrics"]["months"] == 43
    # The prepared files calibrate like the GeoTIFF reference (they are dated, in mm/month).
    rc, events, err = run_backend(
        "calibrate",
        "--precip",
        out["--out-precip"],
        "--pet",
        out["--out-pet"],
        "--runoff",
        out["--out-runoff"],
        "--max-evaluations",
        "30",
        "--out-cwsc",
        tmp_path / "c.tif",
        "--out-kge",
        tmp_path / "k.tif",
    )
    assert rc == 0, err
    logs = [x["message"] for x in events if x["event"] == "log"]
    assert any("period used: 2001-06 to 2004-12" in m for m in logs)


def test_a_finer_input_is_averaged_onto_the_target_grid_and_an_extent_cuts_it(tmp_path, truth):
    months = list(range(START, START + 24))
    ref = reference(tmp_path, truth, months)
    fine = np.repeat(np.repeat(truth["P"][:24], 2, axis=1), 2, axis=2)  # 15-degree cells
    fine_p = write_tif(
        tmp_path / "p_fine.tif",
        fine,
        transform=(15.0, 0, -180.0, 0, -15.0, 90.0),
        descriptions=[M.label(m) for m in months],
    )
    rc, events, err, out = _prepare(tmp_path, fine_p, ref["E"], ref["Q"], "--extent=-90,90,-30,60")
    assert rc == 0, err
    data, profile, _ = read_tif(out["--out-precip"])
    assert data.shape == (24, 3, 6)
    assert tuple(profile["transform"])[:6] == (30.0, 0.0, -90.0, 0.0, -30.0, 60.0)
    np.testing.assert_allclose(data, truth["P"][:24, 1:4, 3:9], rtol=1e-5)


def test_era5_on_0_360_and_an_extent_in_another_crs(tmp_path, truth):
    months = list(range(START, START + 60))
    ref = reference(tmp_path, truth, months)
    rc, events, err, out = _prepare(
        tmp_path,
        era5(tmp_path, truth, "P"),
        ref["E"],
        ref["Q"],
        "--extent=-10018754,10018754,-3503549,7558415 [EPSG:3857]",
    )
    assert rc == 0, err
    data, profile, _ = read_tif(out["--out-precip"])
    assert tuple(profile["transform"])[:6] == (30.0, 0.0, -90.0, 0.0, -30.0, 60.0)
    np.testing.assert_allclose(data, truth["P"][:, 1:4, 3:9], rtol=1e-5)


def test_prepare_refuses_what_calibrate_refuses_and_writes_nothing(tmp_path, truth):
    months = list(range(START, START + 24))
    ref = reference(tmp_path, truth, months)
    odd = write_tif(
        tmp_path / "q_sentinel.tif",
        np.where(truth["Q"][:24] > 5, -999.0, truth["Q"][:24]),
        transform=TRANSFORM,
        nodata=None,
        descriptions=[M.label(m) for m in months],
    )
    rc, events, _, out = _prepare(tmp_path, ref["P"], ref["E"], odd)
    error = last_event(events, "error")
    assert rc == 2 and "q_sentinel.tif" in error["message"] and "RUNOFF_NODATA" in error["message"]
    assert not any(p.exists() for k, p in out.items())  # not even the predictors' folder it made


def test_a_predictors_folder_holding_other_files_is_refused_naming_them(tmp_path, truth):
    ref = reference(tmp_path, truth, list(range(START, START + 24)))
    folder = tmp_path / "predictors"
    folder.mkdir()
    (folder / "aridity.tif").write_bytes(b"the user's own aridity map")
    (folder / "soil_depth.tif").write_bytes(b"the user's soil depth")
    rc, events, _, out = _prepare(tmp_path, ref["P"], ref["E"], ref["Q"])
    error = last_event(events, "error")
    assert rc == 2 and "OUTPUT_PREDICTORS" in error["message"], error
    assert "'aridity.tif', 'soil_depth.tif'" in error["message"]
    assert (folder / "aridity.tif").read_bytes() == b"the user's own aridity map"
    assert sorted(p.name for p in folder.iterdir()) == ["aridity.tif", "soil_depth.tif"]


@pytest.mark.parametrize("product", ["cru", "era5"])
def test_temperature_from_cru_ts_and_era5_comes_out_in_celsius_value_by_value(tmp_path, truth, product):
    from product_files import cru_tmp, era5_t2m, make_temperature

    t = make_temperature()
    source = cru_tmp(tmp_path, t) if product == "cru" else era5_t2m(tmp_path, t)
    extra = ["--temperature", source, "--out-temperature", tmp_path / "T.tif", "--precip-var", "pre"]
    if product == "cru":
        extra += ["--temperature-var", "tmp"]
    rc, events, err, out = _prepare(
        tmp_path, cru(tmp_path, truth), gleam(tmp_path, truth), grun(tmp_path, truth), *extra
    )
    assert rc == 0, err
    data, profile, descriptions = read_tif(tmp_path / "T.tif")
    i0 = COMMON[0] - START
    expected = t[i0 : i0 + len(COMMON)]
    np.testing.assert_allclose(data, expected, atol=1e-4)
    assert descriptions[0] == "air temperature (C) 2001-06" and profile["transform"][:6] == TRANSFORM
    logs = " ".join(x["message"] for x in events if x["event"] == "log")
    assert ("converted to degrees C" in logs) == (product == "era5")
