"""``python -m cwsc demo-data``: deterministic, documented, a manifest."""

import hashlib
import json

import numpy as np
import pytest
from backend_testing import last_event, read_tif, run_backend

from cwsc.synthetic.demo_region import DemoRegion, write_demo

SMALL = DemoRegion(west=-10.0, east=0.0, south=36.0, north=44.0, years=3)  # Iberia, 3 years


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.tif")):
        data, _, _ = read_tif(p)
        h.update(p.name.encode() + np.nan_to_num(data, nan=-1).tobytes())
    return h.hexdigest()


@pytest.mark.slow
def test_demo_data_is_deterministic_and_documented(tmp_path):
    a = write_demo(tmp_path / "a", seed=7, region=SMALL)
    write_demo(tmp_path / "b", seed=7, region=SMALL)
    write_demo(tmp_path / "c", seed=8, region=SMALL)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert a["land_cells"] > 100 and 0 < a["failed_cells"] < a["land_cells"]
    readme = (tmp_path / "a" / "README.md").read_text()
    assert "SYNTHETIC" in readme and "runoff.tif" in readme
    assert 13 <= len(a["predictors"]) <= 15

    precip, profile, desc = read_tif(tmp_path / "a" / "precipitation.tif")
    runoff, _, _ = read_tif(tmp_path / "a" / "runoff.tif")
    truth, _, _ = read_tif(tmp_path / "a" / "true_cwsc.tif")
    assert precip.shape[0] == 36 and desc[0].endswith("1981-01")
    land = np.isfinite(truth[0])
    assert 0 < land.mean() < 1  # a real coastline: sea cells are nodata
    assert np.isfinite(runoff[:, land]).all() and (runoff[:, land] >= 0).all()
    assert 10 <= np.nanmin(truth) and np.nanmax(truth) <= 990
    # Runoff is a fraction of precipitation where the calibration is meant to work.
    assert np.nanmedian(runoff.sum(0) / precip.sum(0)) < 0.8
    for path in a["predictors"]:
        data, _, desc = read_tif(path)
        assert np.isfinite(data[0][land]).all() and "(" in desc[0]  # units in the name


@pytest.mark.slow
def test_demo_data_command_writes_manifest(tmp_path):
    code, events, _ = run_backend("demo-data", "--out", tmp_path / "d", "--seed", "3", timeout=120)
    assert code == 0
    res = last_event(events, "result")
    assert res["metrics"]["land_cells"] > 1000 and res["metrics"]["months"] == 360
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["predictors"] == res["outputs"]["predictors"]


@pytest.mark.slow
def test_demo_data_with_the_bounded_formulation(tmp_path):
    from cwsc.cli import build_parser

    args = build_parser().parse_args(["demo-data", "--out", "x", "--formulation", "bounded"])
    assert args.formulation == "bounded"
    bounded = write_demo(tmp_path / "b", seed=7, region=SMALL, formulation="bounded")
    conserving = write_demo(tmp_path / "c", seed=7, region=SMALL)
    assert (bounded["formulation"], conserving["formulation"]) == ("bounded", "conserving")
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["formulation"] == "bounded"
    a, _, _ = read_tif(tmp_path / "b" / "runoff.tif")
    b, _, _ = read_tif(tmp_path / "c" / "runoff.tif")
    land = np.isfinite(b)
    assert not np.array_equal(a[land], b[land])  # the same water, another physics


def test_demo_data_refuses_a_folder_of_the_users_and_replaces_an_earlier_demo_whole(tmp_path):
    """Into a folder holding the user's files (``--out ~``): refused with the files named,
    nothing replaced. Into an earlier demo's folder: the new set replaces it whole, so the
    snowy variant's temperature.tif does not stay beside a demo without snow."""
    from backend_testing import snapshot

    from cwsc.errors import OutputRefused

    home = tmp_path / "home"
    home.mkdir()
    (home / "README.md").write_text("my readme")
    (home / "manifest.json").write_text('{"mine": true}')
    before = snapshot(home)
    with pytest.raises(
        OutputRefused, match=r"OUTPUT: the folder '.*home' holds files .*'README.md', 'manifest.json'"
    ):
        write_demo(home, seed=7, region=SMALL)
    assert snapshot(home) == before
    demo = tmp_path / "demo"
    write_demo(demo, seed=7, region=SMALL, snow=True)
    assert (demo / "temperature.tif").exists()
    write_demo(demo, seed=7, region=SMALL)
    assert not (demo / "temperature.tif").exists()
    assert "temperature.tif" not in (demo / "README.md").read_text()
