"""cwsc.ml.position: each cell's latitude and longitude as network channels, and a model
that takes them through the model file and predict."""

import numpy as np
import pytest
import torch  # noqa: E402 - after cwsc.ml, which sets the OpenMP wait policy
from backend_testing import read_tif, write_tif

from cwsc.errors import InputFileError
from cwsc.io import rasters as io
from cwsc.ml import patches as P
from cwsc.ml.modelfile import ModelBundle, grid_summary, load_model, save_model
from cwsc.ml.network import ResNetConfig, build_network
from cwsc.ml.options import POSITION_MIN_CELLS
from cwsc.ml.position import POSITION_CHANNELS, cell_lonlat, has_position, position_channels, use_position
from cwsc.ml.predict import predict_raster

WGS84 = io.Grid("EPSG:4326", (0.5, 0, 10.0, 0, -0.5, 50.0), 6, 4)  # WKT or EPSG text both parse


def _wkt(epsg):
    from rasterio.crs import CRS

    return CRS.from_epsg(epsg).to_wkt()


def test_the_channels_are_sine_and_cosine_of_each_cell_centres_latitude_and_longitude():
    grid = io.Grid(_wkt(4326), (0.5, 0, 10.0, 0, -0.5, 50.0), 6, 4)
    ch = position_channels(grid)
    assert ch.shape == (4, 4, 6) and ch.dtype == np.float32 and len(POSITION_CHANNELS) == 4
    lat, lon = np.deg2rad(49.75), np.deg2rad(10.25)  # the first cell's centre
    np.testing.assert_allclose(ch[:, 0, 0], [np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)], rtol=1e-6)
    lat, lon = np.deg2rad(48.25), np.deg2rad(12.75)  # the last
    np.testing.assert_allclose(ch[:, 3, 5], [np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)], rtol=1e-6)
    # Rows of a strip are those rows of the whole grid (predict reads strips).
    np.testing.assert_array_equal(position_channels(grid, slice(1, 3)), ch[:, 1:3])
    # 180 W and 180 E are neighbours: their channels agree.
    dateline = io.Grid(_wkt(4326), (1.0, 0, -180.0, 0, -1.0, 0.0), 360, 1)
    c = position_channels(dateline)
    np.testing.assert_allclose(c[:, 0, 0], c[:, 0, -1], atol=2e-2)


def test_a_projected_grid_is_placed_through_its_crs():
    # UTM zone 33 N: 500 km east on the equator is 15 E, 0 N.
    grid = io.Grid(_wkt(32633), (1000.0, 0, 499500.0, 0, -1000.0, 500.0), 1, 1)
    lon, lat = cell_lonlat(grid)
    assert lon[0, 0] == pytest.approx(15.0, abs=1e-6) and lat[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert has_position(grid) and not has_position(io.Grid("", grid.transform, 1, 1))


def _position_bundle(channels=2, patch=3, seed=0):
    torch.manual_seed(seed)
    n = channels + len(POSITION_CHANNELS)
    cfg = ResNetConfig(n + 1, 1, (4, 8, 8))
    net = build_network(cfg)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    sc = P.Scaling("standard", np.zeros(n, np.float32), np.full(n, 0.5, np.float32), 300.0, 100.0)
    return ModelBundle(
        [net.state_dict()],
        cfg,
        sc,
        [f"c{i}" for i in range(channels)],
        patch,
        grid_summary(WGS84),
        {"name": "default"},
        position=True,
    )


def test_a_model_with_position_round_trips_and_predicts_from_each_cells_place(tmp_path):
    b = _position_bundle()
    back = load_model(save_model(tmp_path / "m.pt", b))
    assert back.position and back.network_channels == 6
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1, (2, 9, 7)).astype(np.float32)
    data[:, 0, 0] = np.nan
    t = (0.5, 0, 10.0, 0, -0.5, 50.0)
    path = write_tif(tmp_path / "p.tif", data, transform=t, descriptions=["c0", "c1"])
    whole = predict_raster(back, [str(path)], tmp_path / "whole.tif", device="cpu")
    predict_raster(back, [str(path)], tmp_path / "strips.tif", device="cpu", budget_bytes=1, batch_size=5)
    a, _, _ = read_tif(tmp_path / "whole.tif")
    s, _, _ = read_tif(tmp_path / "strips.tif")
    np.testing.assert_allclose(a, s, rtol=1e-5, atol=1e-3)  # one-row strips: the same map
    assert whole["cells_predicted"] == 62
    # Cell by cell, the network on the predictors and the position of the cell's grid.
    grid = io.Grid(_wkt(4326), t, 7, 9)
    stack = np.concatenate([data, position_channels(grid)])
    padded = P.pad_block(stack.copy(), back.scaling, 1)
    rows, cols = np.nonzero(np.isfinite(data).all(0))
    x = torch.from_numpy(P.extract_patches(padded, rows, cols, 3, "standard"))
    net = back.networks("cpu", fuse=False)[0]
    with torch.no_grad():
        y = net(x).numpy() * 100.0 + 300.0
    lo, hi = 0.0, np.inf
    np.testing.assert_allclose(a[0][rows, cols], np.clip(y, lo, hi), rtol=1e-4, atol=1e-2)
    # The same predictors placed elsewhere give another map: the position is read.
    moved = write_tif(
        tmp_path / "q.tif", data, transform=(0.5, 0, -70.0, 0, -0.5, -10.0), descriptions=["c0", "c1"]
    )
    predict_raster(back, [str(moved)], tmp_path / "moved.tif", device="cpu")
    m, _, _ = read_tif(tmp_path / "moved.tif")
    assert np.nanmax(np.abs(m[0] - a[0])) > 1e-3


def test_a_model_with_position_refuses_predictors_without_a_crs(tmp_path):
    b = _position_bundle()
    data = np.ones((2, 5, 5), np.float32)
    path = write_tif(tmp_path / "p.tif", data, crs=None, descriptions=["c0", "c1"])
    with pytest.raises(InputFileError, match="has no CRS, but the model takes each cell's latitude"):
        predict_raster(b, [str(path)], tmp_path / "o.tif", device="cpu")
    assert not (tmp_path / "o.tif").exists()


def test_left_to_the_data_the_position_comes_with_many_labelled_cells_on_a_grid_with_a_crs():
    grid = io.Grid(_wkt(4326), (0.5, 0, -180.0, 0, -0.5, 90.0), 720, 360)
    bare = io.Grid("", grid.transform, 720, 360)
    assert use_position(None, POSITION_MIN_CELLS, grid)[0]
    on, why = use_position(None, POSITION_MIN_CELLS - 1, grid)
    assert not on and why.startswith("off: 9,999 labelled cells, fewer than 10,000")
    assert use_position(True, 10, grid) == (True, "on (--position)")
    assert use_position(False, 10**6, grid) == (False, "off (--no-position)")
    assert not use_position(None, 10**6, bare)[0] and not use_position(True, 10**6, bare)[0]
