"""``python -m cwsc calibrate`` as the plugin runs it: real rasters, a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from backend_testing import ROOT, last_event, lock_folder, read_tif, run_backend, unlock_folder, write_tif

from cwsc.io import rasters as io
from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

ROWS, COLS, MONTHS = 3, 4, 48
FAST = ["--max-evaluations", "30", "--restarts", "1"]


def _forcing(months=MONTHS):
    cells = ROWS * COLS
    p, e = synthetic_forcing(cells, months, seed=5)
    q = synthetic_runoff("DWBM", p, e, random_params("DWBM", cells, seed=5), seed=5)
    cube = lambda a: a.T.reshape(months, ROWS, COLS).copy()  # noqa: E731
    p, e, q = cube(p), cube(e), cube(q)
    p[:, 0, 0] = np.nan  # an ocean cell
    e[:, 0, 0] = np.nan
    q[:, 0, 0] = np.nan
    q[3:9, 1, 1] = np.nan  # missing runoff months
    return p, e, q


@pytest.fixture
def inputs(tmp_path):
    p, e, q = _forcing()
    return {
        "--precip": write_tif(tmp_path / "p.tif", p),
        "--pet": write_tif(tmp_path / "e.tif", e),
        "--runoff": write_tif(tmp_path / "q.tif", q),
    }


def _args(inputs, out, *extra, **over):
    merged = {
        **{k: str(v) for k, v in inputs.items()},
        "--out-cwsc": str(out / "cwsc.tif"),
        "--out-kge": str(out / "kge.tif"),
        **over,
    }
    return [x for kv in merged.items() for x in kv] + list(extra)


def _no_outputs(folder):
    names = os.listdir(folder)
    assert not any(n in names for n in ("cwsc.tif", "kge.tif", "details.tif")), names
    assert not any(".part" in n for n in names), names


def _bad_input(code, events, *words):
    assert code == 2
    err = last_event(events, "error")
    assert err["kind"] == "bad_input"
    for w in words:
        assert w in err["message"], err["message"]
    assert last_event(events, "result") is None


@pytest.mark.slow
def test_calibrate_writes_labels_kge_and_details(inputs, tmp_path):
    code, events, stderr = run_backend(
        "calibrate",
        *_args(inputs, tmp_path),
        "--models",
        "DWBM,SWBM",
        "--out-details",
        tmp_path / "details.tif",
        *FAST,
    )
    assert code == 0, stderr
    stages = {e["stage"] for e in events if e["event"] == "progress"}
    cells = ROWS * COLS - 1
    assert f"calibrating: {cells} of {cells} cells" in stages  # cells, the user's word, not shards
    res = last_event(events, "result")
    m = res["metrics"]
    assert m["cells_calibrated"] == ROWS * COLS - 1 and m["cells_skipped_nodata"] == 1
    assert 0 <= m["cells_kge_positive"] <= m["cells_calibrated"]
    assert set(m["median_kge"]) == {"DWBM", "SWBM"} and m["restarts"] == 1
    assert res["outputs"]["OUTPUT_CWSC"] == str(tmp_path / "cwsc.tif")

    cwsc, prof, desc = read_tif(tmp_path / "cwsc.tif")
    assert cwsc.shape == (3, ROWS, COLS) and prof["nodata"] == io.NODATA
    assert desc[0].startswith("CWSC (mm)")
    assert desc[1].startswith("CWSC identifiable range width (mm)")
    assert desc[2].startswith("quality flags (bit mask: 1 = sc within 1 % of a bound")
    assert np.isnan(cwsc[:, 0, 0]).all()
    ok = np.isfinite(cwsc[0])
    assert ok.sum() >= 1 and (cwsc[0][ok] >= 0).all() and (cwsc[0][ok] <= 1000).all()
    kge, _, kdesc = read_tif(tmp_path / "kge.tif")
    assert kge.shape == (1, ROWS, COLS) and "best model" in kdesc[0]
    assert np.isfinite(kge[0]).sum() == ROWS * COLS - 1
    det, _, ddesc = read_tif(tmp_path / "details.tif")
    assert "DWBM sc (mm)" in ddesc and "SWBM KGE calibration" in ddesc and "DWBM NSE validation" in ddesc
    assert "DWBM sc identifiable low (mm)" in ddesc and "SWBM sc identifiable high (mm)" in ddesc
    assert det.shape[0] == len(ddesc) == (4 + 6) + (3 + 6)
    low, high = (
        det[ddesc.index("DWBM sc identifiable low (mm)")],
        det[ddesc.index("DWBM sc identifiable high (mm)")],
    )
    sc = det[ddesc.index("DWBM sc (mm)")]
    fine = np.isfinite(sc)
    assert np.all((low[fine] <= sc[fine] + 1e-3) & (sc[fine] <= high[fine] + 1e-3))
    assert np.all(np.isfinite(cwsc[2][ok])) and np.all(cwsc[1][ok] >= 0)
    best = np.fmax(det[ddesc.index("DWBM KGE calibration")], det[ddesc.index("SWBM KGE calibration")])
    np.testing.assert_allclose(kge[0], best, rtol=1e-6)
    # The default label rule: models within 0.02 of the cell's best KGE, weighted by KGE.
    assert "within 0.02 of the best model's" in desc[0]
    kd, ks = det[ddesc.index("DWBM KGE calibration")], det[ddesc.index("SWBM KGE calibration")]
    sd, ss = det[ddesc.index("DWBM sc (mm)")], det[ddesc.index("SWBM sc (mm)")]
    # Where no model is above the threshold, the label still follows the margin (the mask
    # removes such cells).
    above = ((kd > 0) & (kd >= best - 0.02)) | ((ks > 0) & (ks >= best - 0.02))
    wd = np.where((kd >= best - 0.02) & ((kd > 0) | ~above), np.clip(kd, 0, None), 0.0)
    ws = np.where((ks >= best - 0.02) & ((ks > 0) | ~above), np.clip(ks, 0, None), 0.0)
    both_zero = (wd + ws) == 0
    wd = np.where(both_zero & (kd >= best - 0.02), 1.0, wd)
    ws = np.where(both_zero & (ks >= best - 0.02), 1.0, ws)
    with np.errstate(invalid="ignore"):
        expected = (wd * sd + ws * ss) / (wd + ws)
    np.testing.assert_allclose(cwsc[0][ok], expected[ok], rtol=1e-5)
    _no_outputs_part = [n for n in os.listdir(tmp_path) if ".part" in n]
    assert not _no_outputs_part


@pytest.mark.slow
def test_netcdf_forcing_is_read(inputs, tmp_path):
    import xarray as xr

    p, _, _ = _forcing()
    # The cell centres of the GeoTIFF grid (transform 0.5 deg from (-10, 60)), lat descending.
    lat = 60.0 - 0.25 - 0.5 * np.arange(ROWS)
    lon = -10.0 + 0.25 + 0.5 * np.arange(COLS)
    xr.Dataset(
        {"pr": (("time", "lat", "lon"), p)}, coords={"time": np.arange(MONTHS), "lat": lat, "lon": lon}
    ).to_netcdf(tmp_path / "p.nc")
    code, events, stderr = run_backend(
        "calibrate", *_args({**inputs, "--precip": tmp_path / "p.nc"}, tmp_path), "--models", "SWBM", *FAST
    )
    assert code == 0, stderr
    assert last_event(events, "result")["metrics"]["cells_calibrated"] == ROWS * COLS - 1


@pytest.mark.slow
def test_different_grids_are_refused(inputs, tmp_path):
    p, _, _ = _forcing()
    other = write_tif(tmp_path / "p_shifted.tif", p, transform=(0.5, 0, -9.0, 0, -0.5, 60.0))
    code, events, _ = run_backend("calibrate", *_args({**inputs, "--precip": other}, tmp_path))
    _bad_input(code, events, "different grid")
    _no_outputs(tmp_path)


def test_kge_margin_option_default_none_and_value():
    from cwsc.cli import build_parser
    from cwsc.commands.options import kge_margin

    def margin(*extra):
        return kge_margin(
            build_parser().parse_args(
                [
                    "calibrate",
                    "--precip",
                    "p",
                    "--pet",
                    "e",
                    "--runoff",
                    "q",
                    "--out-cwsc",
                    "c",
                    "--out-kge",
                    "k",
                    *extra,
                ]
            )
        )

    assert margin() == 0.02
    assert margin("--kge-margin", "none") is None  # every model above the threshold
    assert margin("--kge-margin", "0.05") == 0.05


def test_negative_kge_margin_is_refused(inputs, tmp_path):
    code, events, _ = run_backend("calibrate", *_args(inputs, tmp_path, **{"--kge-margin": "-0.1"}))
    _bad_input(code, events, "MODEL_KGE_MARGIN", "-0.1")
    _no_outputs(tmp_path)


def test_different_month_counts_are_refused(inputs, tmp_path):
    _, e, _ = _forcing()
    short = write_tif(tmp_path / "e_short.tif", e[:40])
    code, events, _ = run_backend("calibrate", *_args({**inputs, "--pet": short}, tmp_path))
    _bad_input(code, events, "PET", "e_short.tif", "40 months")
    _no_outputs(tmp_path)


@pytest.mark.parametrize("flag, label", [("--precip", "PRECIPITATION"), ("--pet", "PET")])
@pytest.mark.slow
def test_negative_forcing_is_refused(inputs, tmp_path, flag, label):
    p, e, _ = _forcing()
    data = (p if flag == "--precip" else e).copy()
    data[7, 2, 2] = -1.0
    bad = write_tif(tmp_path / "negative.tif", data)
    code, events, _ = run_backend("calibrate", *_args({**inputs, flag: bad}, tmp_path))
    _bad_input(code, events, label, "negative.tif", "negative", "band 8")
    _no_outputs(tmp_path)


@pytest.mark.slow
def test_negative_runoff_is_refused_with_the_count_and_first_cell(inputs, tmp_path):
    _, _, q = _forcing()
    q[5, 2, 3] = -2.5
    q[9, 1, 2] = -0.5
    bad = write_tif(tmp_path / "q_negative.tif", q)
    code, events, _ = run_backend("calibrate", *_args({**inputs, "--runoff": bad}, tmp_path))
    _bad_input(code, events, "RUNOFF", "q_negative.tif", "2 negative values", "band 6, row 3, column 4: -2.5")
    _no_outputs(tmp_path)


@pytest.mark.parametrize(
    "flag, label, value",
    [("--runoff", "RUNOFF", -999.0), ("--precip", "PRECIPITATION", -9999.0), ("--pet", "PET", 9.96921e36)],
)
@pytest.mark.slow
def test_an_undeclared_nodata_sentinel_is_refused_and_can_be_declared(inputs, tmp_path, flag, label, value):
    p, e, q = _forcing()
    data = {"--precip": p, "--pet": e, "--runoff": q}[flag].copy()
    data[:, 2, 1] = value  # a cell without data, written as a number
    data[4:7, 1, 3] = value
    bad = write_tif(tmp_path / "sentinel.tif", data, nodata=None)
    code, events, _ = run_backend("calibrate", *_args({**inputs, flag: bad}, tmp_path, *FAST))
    _bad_input(
        code,
        events,
        label,
        "sentinel.tif",
        f"holds {value:g} in 2 cells",
        f"gdal_translate -a_nodata {value:g}",
        f"{label}_NODATA={value:g}",
    )
    _no_outputs(tmp_path)
    option = {"RUNOFF": "--runoff-nodata", "PRECIPITATION": "--precip-nodata", "PET": "--pet-nodata"}[label]
    code, events, err = run_backend(
        "calibrate", *_args({**inputs, flag: bad}, tmp_path, **{option: repr(value)}), *FAST
    )
    assert code == 0, err


@pytest.mark.slow
def test_all_nodata_runoff_is_refused(inputs, tmp_path):
    empty = write_tif(tmp_path / "q_empty.tif", np.full((MONTHS, ROWS, COLS), np.nan))
    code, events, _ = run_backend("calibrate", *_args({**inputs, "--runoff": empty}, tmp_path))
    _bad_input(code, events, "RUNOFF", "q_empty.tif", "all nodata")
    _no_outputs(tmp_path)


@pytest.mark.slow
def test_netcdf_without_time_dimension_is_refused(inputs, tmp_path):
    import xarray as xr

    lat = 60.0 - 0.25 - 0.5 * np.arange(ROWS)
    lon = -10.0 + 0.25 + 0.5 * np.arange(COLS)
    xr.Dataset({"pr": (("lat", "lon"), np.ones((ROWS, COLS)))}, coords={"lat": lat, "lon": lon}).to_netcdf(
        tmp_path / "flat.nc"
    )
    code, events, _ = run_backend("calibrate", *_args({**inputs, "--precip": tmp_path / "flat.nc"}, tmp_path))
    _bad_input(code, events, "PRECIPITATION", "flat.nc", "no time dimension")
    _no_outputs(tmp_path)


@pytest.mark.slow
def test_netcdf_with_several_variables_is_refused(inputs, tmp_path):
    import xarray as xr

    p, _, _ = _forcing()
    lat = 60.0 - 0.25 - 0.5 * np.arange(ROWS)
    lon = -10.0 + 0.25 + 0.5 * np.arange(COLS)
    dims = ("time", "lat", "lon")
    xr.Dataset(
        {"pr": (dims, p), "tas": (dims, p)}, coords={"time": np.arange(MONTHS), "lat": lat, "lon": lon}
    ).to_netcdf(tmp_path / "two.nc")
    code, events, _ = run_backend("calibrate", *_args({**inputs, "--precip": tmp_path / "two.nc"}, tmp_path))
    _bad_input(code, events, "two.nc", "several variables")
    _no_outputs(tmp_path)


@pytest.mark.slow
def test_a_file_that_is_not_a_raster_is_refused(inputs, tmp_path):
    junk = tmp_path / "notes.tif"
    junk.write_text("this is not a raster")
    code, events, _ = run_backend("calibrate", *_args({**inputs, "--runoff": junk}, tmp_path))
    _bad_input(code, events, "RUNOFF", "notes.tif")
    _no_outputs(tmp_path)


@pytest.mark.slow
def test_missing_output_folder_is_refused_before_work(inputs, tmp_path):
    code, events, _ = run_backend(
        "calibrate", *_args(inputs, tmp_path, **{"--out-kge": str(tmp_path / "nope" / "k.tif")})
    )
    _bad_input(code, events, "OUTPUT_KGE", "does not exist")
    # No calibration started (the CLI's own first "calibrate" progress event aside).
    assert not any(e["event"] == "progress" and e["stage"].startswith("calibrating") for e in events)
    _no_outputs(tmp_path)


@pytest.mark.slow
def test_unwritable_output_folder_is_refused(inputs, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() != 0:
        locked.chmod(0o555)
    elif not lock_folder(locked):
        pytest.skip("root writes anywhere and chattr +i is not available")
    try:
        code, events, _ = run_backend(
            "calibrate", *_args(inputs, tmp_path, **{"--out-cwsc": str(locked / "c.tif")})
        )
        _bad_input(code, events, "OUTPUT_CWSC", "cannot be written")
    finally:
        unlock_folder(locked)
        locked.chmod(0o755)


@pytest.mark.parametrize("sharded", [False, True], ids=["one-process", "worker-processes"])
def test_sigterm_mid_run_exits_3_and_leaves_nothing(tmp_path, sharded):
    # Enough work to be interrupted: more cells and evaluations than the other tests.
    rows, cols, months = 4, 8, 96
    cells = rows * cols
    p, e = synthetic_forcing(cells, months, seed=9)
    q = synthetic_runoff("DWBM", p, e, random_params("DWBM", cells, seed=9))
    cube = lambda a: a.T.reshape(months, rows, cols).copy()  # noqa: E731
    inputs = {
        "--precip": write_tif(tmp_path / "p.tif", cube(p)),
        "--pet": write_tif(tmp_path / "e.tif", cube(e)),
        "--runoff": write_tif(tmp_path / "q.tif", cube(q)),
    }
    out = tmp_path / "out"
    out.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "cwsc",
        "--json",
        "calibrate",
        *_args(inputs, out),
        "--out-details",
        str(out / "details.tif"),
        "--max-evaluations",
        "5000",
        "--restarts",
        "2",
        "--shard-cells",
        "8" if sharded else "1000",
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    events = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # wait until the calibration is under way
        events.append(json.loads(line))
        if events[-1]["event"] == "progress" or time.monotonic() > deadline:
            break
    assert events[-1]["event"] == "progress"
    proc.send_signal(signal.SIGTERM)
    rest, stderr = proc.communicate(timeout=120)
    events += [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert proc.returncode == 3, stderr
    assert last_event(events, "error")["kind"] == "cancelled"
    assert last_event(events, "result") is None
    _no_outputs(out)


@pytest.mark.slow
def test_extent_calibrates_a_window_of_the_grid(inputs, tmp_path):
    # The grid: 4 x 3 cells of 0.5 degree from (-10, 60); the extent covers columns 1-2, rows 0-1.
    code, events, err = run_backend(
        "calibrate", *_args(inputs, tmp_path, *FAST, "--extent=-9.4,-8.6,59.1,59.9")
    )
    assert code == 0, err
    cwsc, profile, _ = read_tif(tmp_path / "cwsc.tif")
    assert cwsc.shape[1:] == (2, 2)
    assert tuple(profile["transform"])[:6] == (0.5, 0.0, -9.5, 0.0, -0.5, 60.0)
    assert np.isfinite(cwsc[0]).sum() >= 3  # (1, 1) has missing months only
    code, events, _ = run_backend("calibrate", *_args(inputs, tmp_path, *FAST, "--extent=100,110,0,10"))
    _bad_input(code, events, "EXTENT", "does not overlap")
