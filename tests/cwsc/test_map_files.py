"""The CWSC map as a Cloud-Optimised GeoTIFF and as CF NetCDF, read back by GDAL and xarray."""

from __future__ import annotations

import numpy as np
import pytest
from backend_testing import last_event, read_tif, run_backend, train_args, write_tif

from cwsc.io.map_files import to_cog, write_cf_netcdf


def _field(rows, cols, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.uniform(50, 900, (rows, cols)).astype(np.float32)
    data[: rows // 5, : cols // 3] = np.nan  # a sea
    return data


def test_a_large_map_becomes_a_cog_with_overviews_and_the_same_values(tmp_path):
    import rasterio

    data = _field(1100, 1300)
    src = write_tif(tmp_path / "plain.tif", data, descriptions=["CWSC (mm)"])
    to_cog(src, tmp_path / "cog.tif")
    with rasterio.open(tmp_path / "cog.tif") as cog:
        assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert cog.profile["tiled"] and cog.block_shapes[0] == (512, 512)
        assert cog.overviews(1) == [2, 4]
        assert cog.descriptions == ("CWSC (mm)",) and cog.nodata == -9999.0
    back, _, _ = read_tif(tmp_path / "cog.tif")
    np.testing.assert_array_equal(back[0], data)


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3035"])
def test_cf_netcdf_reads_back_in_xarray_with_its_coordinates_and_grid_mapping(tmp_path, crs):
    import xarray as xr

    data = _field(12, 20, seed=1)
    spread = np.abs(_field(12, 20, seed=2)) / 10
    transform = (
        (0.5, 0, -10.0, 0, -0.5, 60.0)
        if crs == "EPSG:4326"
        else (1000.0, 0, 4_000_000.0, 0, -1000.0, 3_000_000.0)
    )
    tif = write_tif(tmp_path / "map.tif", np.stack([data, spread]), transform=transform, crs=crs)
    write_cf_netcdf(
        tmp_path / "map.nc",
        [
            (tif, 1, "cwsc", "catchment water storage capacity", "mm"),
            (tif, 2, "cwsc_uncertainty", "spread", "mm"),
        ],
        "test",
    )
    ds = xr.open_dataset(tmp_path / "map.nc")
    assert ds.attrs["Conventions"] == "CF-1.8"
    assert ds.cwsc.attrs["units"] == "mm" and ds.cwsc.attrs["grid_mapping"] == "crs"
    assert "crs_wkt" in ds.crs.attrs
    np.testing.assert_array_equal(ds.cwsc.values, data)
    np.testing.assert_array_equal(ds.cwsc_uncertainty.values, spread)
    if crs == "EPSG:4326":
        assert ds.crs.attrs["grid_mapping_name"] == "latitude_longitude"
        assert ds.lat.attrs["units"] == "degrees_north" and ds.lon.attrs["units"] == "degrees_east"
        np.testing.assert_allclose(ds.lat.values[[0, -1]], [59.75, 54.25])
        np.testing.assert_allclose(ds.lon.values[[0, -1]], [-9.75, -0.25])
        # A point read by coordinates is the raster's cell there.
        assert float(ds.cwsc.sel(lat=57.25, lon=-3.25)) == data[5, 13]
    else:
        assert "ETRS89" in ds.crs.attrs["crs_wkt"] and ds.x.attrs["units"] == "m"
        np.testing.assert_allclose(ds.x.values[0], 4_000_500.0)
    enc = xr.open_dataset(tmp_path / "map.nc").cwsc.encoding
    assert enc.get("zlib") or enc.get("compression") == "zlib"


@pytest.mark.slow
def test_predict_writes_a_cog_and_a_netcdf_with_the_ensemble_spread(twin_files, tmp_path):
    import rasterio
    import xarray as xr

    files, _ = twin_files
    model = tmp_path / "m.pt"
    assert run_backend(*train_args(files, model, "--epochs", "1", "--ensemble", "2"))[0] == 0
    rc, events, err = run_backend(
        "predict",
        "--model",
        model,
        "--predictors",
        *files["predictors"],
        "--out",
        tmp_path / "cwsc.tif",
        "--out-netcdf",
        tmp_path / "cwsc.nc",
    )
    assert rc == 0, err
    assert last_event(events, "result")["outputs"]["OUTPUT_NETCDF"] == str(tmp_path / "cwsc.nc")
    with rasterio.open(tmp_path / "cwsc.tif") as cog:
        assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and cog.units == ("mm", "mm")
        assert cog.tags()["ensemble"] == "2"
    tif, _, _ = read_tif(tmp_path / "cwsc.tif")
    ds = xr.open_dataset(tmp_path / "cwsc.nc")
    np.testing.assert_array_equal(ds.cwsc.values, tif[0])
    np.testing.assert_array_equal(ds.cwsc_uncertainty.values, tif[1])
    assert sorted(p.name for p in tmp_path.iterdir() if "cwsc" in p.name) == ["cwsc.nc", "cwsc.tif"]
    # A NetCDF output must end in .nc.
    rc, events, _ = run_backend(
        "predict",
        "--model",
        model,
        "--predictors",
        *files["predictors"],
        "--out",
        tmp_path / "o.tif",
        "--out-netcdf",
        tmp_path / "o.tif.nc4",
    )
    assert rc == 2 and "OUTPUT_NETCDF" in last_event(events, "error")["message"]
