"""Calibrate with and without air temperature on a snowy twin (runoff made from the snow
store's rain and melt): with TEMPERATURE the fit is good and bit 32 stays off; without, the
fit is poor and bit 32 says why. Temperature in K, on another grid or implausible."""

from __future__ import annotations

import numpy as np
import pytest
from backend_testing import calibrate_args, read_tif, refused, run_backend, write_tif

from cwsc.hydro.labels import FLAG_SNOW
from cwsc.hydro.snow import liquid_water
from cwsc.synthetic.forcing import random_params, snowy_forcing, synthetic_runoff

ROWS, COLS, MONTHS = 3, 4, 96


@pytest.fixture(scope="module")
def snowy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snowy")
    cells = ROWS * COLS
    p, e, t = snowy_forcing(cells, MONTHS, seed=3)
    q = synthetic_runoff("DWBM", liquid_water(p, t), e, random_params("DWBM", cells, seed=3), seed=3)
    cube = lambda a: a.T.reshape(MONTHS, ROWS, COLS).copy()  # noqa: E731
    paths = {k: write_tif(folder / f"{k}.tif", cube(v)) for k, v in dict(p=p, e=e, q=q, t=t).items()}
    paths["t_kelvin"] = write_tif(folder / "t_kelvin.tif", cube(t) + 273.15)
    return paths, folder


def _calibrate(paths, out, *extra):
    out.mkdir(exist_ok=True)
    args = ["calibrate", "--precip", paths["p"], "--pet", paths["e"], "--runoff", paths["q"]]
    args += ["--out-cwsc", out / "cwsc.tif", "--out-kge", out / "kge.tif", "--models", "DWBM"]
    args += ["--max-evaluations", "300", *extra]
    rc, events, err = run_backend(*args)
    assert rc == 0, err[-3000:]
    cwsc, profile, descriptions = read_tif(out / "cwsc.tif")
    kge = read_tif(out / "kge.tif")[0][0]
    return events, cwsc, kge, profile


@pytest.mark.slow
def test_temperature_lifts_the_fit_and_bit_32_flags_the_cells_without_it(snowy, tmp_path):
    paths, _ = snowy
    events, cwsc, kge, _ = _calibrate(paths, tmp_path / "without")
    flags = cwsc[2].astype(int)
    assert (flags & FLAG_SNOW).all()
    assert any("TEMPERATURE" in e.get("message", "") for e in events if e.get("level") == "warning")

    events, cwsc_t, kge_t, _ = _calibrate(paths, tmp_path / "with", "--temperature", paths["t"])
    assert not (cwsc_t[2].astype(int) & FLAG_SNOW).any()
    assert np.median(kge_t) > 0.9 and np.median(kge_t) > np.median(kge) + 0.3
    assert any("snow store" in e.get("message", "") for e in events if e["event"] == "log")

    # The same temperature in K (declared by TEMPERATURE_UNITS) gives the same fit (float32
    # rounding of the kelvins can move a cell's optimum, not the fit).
    _, _, kge_k, _ = _calibrate(
        paths, tmp_path / "kelvin", "--temperature", paths["t_kelvin"], "--temperature-units", "K"
    )
    assert abs(np.median(kge_k) - np.median(kge_t)) < 0.01


@pytest.mark.slow
def test_a_temperature_in_kelvin_read_as_celsius_is_refused_naming_the_file(snowy, tmp_path):
    paths, _ = snowy
    message = refused(
        [*calibrate_args(paths, tmp_path), "--temperature", paths["t_kelvin"]],
        "TEMPERATURE",
        "t_kelvin.tif",
        "TEMPERATURE_UNITS=K",
    )
    assert "band" in message
    assert not list(tmp_path.iterdir())


def test_temperature_on_another_grid_is_refused(snowy, tmp_path):
    paths, folder = snowy
    t = read_tif(paths["t"])[0]
    other = write_tif(folder / "t_shifted.tif", t, transform=(0.5, 0, -9.0, 0, -0.5, 60.0))
    refused(
        [*calibrate_args(paths, tmp_path), "--temperature", other],
        "t_shifted.tif",
    )


@pytest.mark.slow
def test_unknown_temperature_units_name_the_option(snowy, tmp_path):
    paths, _ = snowy
    refused(
        [*calibrate_args(paths, tmp_path), "--temperature", paths["t"], "--temperature-units", "F"],
        "TEMPERATURE_UNITS",
        "'F'",
    )
