"""cwsc.io.rasters: grids, GeoTIFF and NetCDF reading, aligned reads, GeoTIFF writing."""

import numpy as np
import pytest
from backend_testing import read_tif, write_tif

from cwsc.errors import GridMismatch, InputFileError
from cwsc.io import rasters as io


def test_write_raster_is_tiled_compressed_and_described(tmp_path):
    data = np.arange(2 * 40 * 48, dtype=np.float32).reshape(2, 40, 48)
    data[0, 0, 0] = np.nan
    grid = io.Grid("", (0.5, 0, 0, 0, -0.5, 20), 48, 40)
    out = io.write_raster(tmp_path / "x.tif", data, grid, ["a (mm)", "b (mm)"])
    back, profile, desc = read_tif(out)
    assert profile["nodata"] == -9999 and profile["tiled"] and profile["compress"] == "deflate"
    assert desc == ["a (mm)", "b (mm)"]
    assert np.isnan(back[0, 0, 0]) and back[1, 5, 5] == data[1, 5, 5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.tif"]


def test_netcdf_variable_and_time_dimension_are_found(tmp_path):
    import xarray as xr

    data = np.random.default_rng(0).random((5, 4, 6)).astype(np.float32)
    lat = np.array([1.25, 1.75, 2.25, 2.75])  # ascending: rows must come out north first
    ds = xr.Dataset(
        {"pr": (("time", "lat", "lon"), data)},
        coords={"time": np.arange(5), "lat": lat, "lon": np.arange(6) * 0.5 + 0.25},
    )
    ds.to_netcdf(tmp_path / "p.nc")
    r = io.open_raster(tmp_path / "p.nc", "PRECIPITATION")
    assert r.count == 5 and r.grid.shape == (4, 6)
    assert r.grid.transform[2] == 0.0 and r.grid.transform[5] == 3.0
    np.testing.assert_allclose(r.read()[:, 0, :], data[:, -1, :])
    np.testing.assert_allclose(r.read(rows=slice(1, 3))[:, 0, :], data[:, 2, :])

    ds["pet"] = ds["pr"] * 2
    ds.to_netcdf(tmp_path / "two.nc")
    with pytest.raises(InputFileError, match="several variables"):
        io.open_raster(tmp_path / "two.nc", "PET")
    assert io.open_raster(tmp_path / "two.nc", "PET", variable="pet").count == 5


def test_not_a_raster_is_bad_input(tmp_path):
    (tmp_path / "notes.tif").write_text("hello")
    with pytest.raises(InputFileError, match="notes.tif"):
        io.open_raster(tmp_path / "notes.tif", "RUNOFF")


def test_read_aligned_warps_a_shifted_grid_and_refuses_without_crs(tmp_path):
    base = write_tif(tmp_path / "a.tif", np.ones((4, 4)))
    shifted = write_tif(tmp_path / "b.tif", np.full((6, 6), 3.0), transform=(0.5, 0, -10.5, 0, -0.5, 60.5))
    target = io.open_raster(base, "LABELS").grid
    out = io.read_aligned(io.open_raster(shifted, "PREDICTORS"), target)
    assert out.shape == (1, 4, 4) and np.allclose(out, 3.0)
    nocrs = write_tif(tmp_path / "c.tif", np.ones((5, 5)), crs=None)
    with pytest.raises(GridMismatch, match="c.tif"):
        io.read_aligned(io.open_raster(nocrs, "PREDICTORS"), target)
