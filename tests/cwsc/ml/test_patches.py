"""cwsc.ml.patches: reading predictors, samples, split, scaling and patch extraction."""

import numpy as np
import pytest
from backend_testing import write_tif

from cwsc.errors import GridMismatch, InputFileError, ParameterError
from cwsc.io import rasters as io
from cwsc.ml import patches as P


def _naive_patch(data, r, c, p, fill):
    """Reference: one cell at a time, off-grid and nodata neighbours filled."""
    ch, h, w = data.shape
    half = p // 2
    out = np.empty((ch + 1, p, p), np.float32)
    for i in range(p):
        for j in range(p):
            rr, cc = r + i - half, c + j - half
            inside = 0 <= rr < h and 0 <= cc < w
            ok = inside and np.isfinite(data[:, rr, cc]).all()
            out[:ch, i, j] = data[:, rr, cc] if ok else fill
            out[ch, i, j] = 1.0 if ok else 0.0
    return out


def test_extract_patches_matches_a_per_cell_reference():
    rng = np.random.default_rng(0)
    data = rng.normal(5, 2, (3, 9, 12)).astype(np.float32)
    data[1, 4, 4] = np.nan  # one nodata neighbour in one channel masks the whole cell
    scaling = P.Scaling("standard", np.zeros(3, np.float32), np.ones(3, np.float32), 0.0, 1.0)
    padded = P.pad_block(data.copy(), scaling, 2)
    rows, cols = np.array([0, 4, 8, 3]), np.array([0, 5, 11, 4])
    got = P.extract_patches(padded, rows, cols, 5)
    assert got.shape == (4, 4, 5, 5) and got.flags["C_CONTIGUOUS"]
    for k, (r, c) in enumerate(zip(rows, cols)):
        np.testing.assert_array_equal(got[k], _naive_patch(data, r, c, 5, 0.0))
    # The cell itself sits at the centre.
    np.testing.assert_array_equal(got[1, :3, 2, 2], data[:, 4, 5])


def test_standard_scaling_fills_with_training_mean_and_strips_match_whole_grid():
    rng = np.random.default_rng(1)
    data = rng.normal(100, 20, (2, 20, 7)).astype(np.float32)
    data[:, 0, :3] = np.nan
    rows, cols = np.nonzero(np.isfinite(data).all(0))
    sc = P.fit_scaling(data, rows, cols, np.ones(len(rows), np.float32))
    whole = P.extract_patches(P.pad_block(data.copy(), sc, 1), rows, cols, 3)
    # Scaled channels have training mean 0 / sd 1 at the centre cells.
    assert abs(whole[:, 0, 1, 1].mean()) < 1e-4 and abs(whole[:, 0, 1, 1].std() - 1) < 1e-3
    # A strip with real halo rows gives the same patches as the whole grid.
    r0, r1, half = 8, 14, 1
    a, b = r0 - half, r1 + half
    padded = P.pad_block(data[:, a:b].copy(), sc, half, top=0, bottom=0)
    sel = (rows >= r0) & (rows < r1)
    strip = P.extract_patches(padded, rows[sel] - r0, cols[sel], 3)
    np.testing.assert_array_equal(strip, whole[sel])


def test_seed_scaling_is_per_patch_minmax_over_all_channels():
    data = np.stack([np.full((5, 5), 10.0), np.arange(25.0).reshape(5, 5) * 100]).astype(np.float32)
    sc = P.fit_scaling(
        data, np.array([2]), np.array([2]), np.array([1.0, 3.0], np.float32), kind="patch_minmax"
    )
    out = P.extract_patches(P.pad_block(data.copy(), sc, 1), np.array([2]), np.array([2]), 3, "patch_minmax")
    x = out[0, :2]
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(out[0, 2], np.ones((3, 3)))  # mask channel untouched
    assert sc.label_offset == 1.0 and sc.label_scale == 2.0


def test_select_samples_counts_masked_and_skipped_cells():
    pred = np.ones((2, 4, 4), np.float32)
    pred[1, 0, 0] = np.nan  # labelled, good KGE, but own predictors nodata: skipped
    labels = np.full((4, 4), 100.0, np.float32)
    labels[3, 3] = np.nan
    kge = np.full((4, 4), 0.5, np.float32)
    kge[1, :] = -0.2  # four cells masked
    kge[2, 0] = np.nan  # unknown KGE: masked too
    s = P.select_samples(pred, labels, kge, 0.0)
    assert s.skipped == 1 and s.masked == 5
    assert len(s.labels) == 16 - 1 - 1 - 5
    assert not ((s.rows == 0) & (s.cols == 0)).any()


@pytest.mark.parametrize("size", [4, 10, 0])
def test_even_or_zero_patch_size_is_refused_with_the_reason(size):
    with pytest.raises(ParameterError, match="odd"):
        P.check_patch_size(size, (50, 50))


def test_patch_larger_than_grid_is_refused():
    with pytest.raises(ParameterError, match="larger than the grid"):
        P.check_patch_size(11, (8, 30))


def test_random_split_is_seeded_and_disjoint():
    rows, cols = np.divmod(np.arange(1000), 40)
    tr, te = P.split_samples(rows, cols, 0.3, "random", seed=3)
    tr2, te2 = P.split_samples(rows, cols, 0.3, "random", seed=3)
    assert len(te) == 300 and len(tr) == 700
    np.testing.assert_array_equal(te, te2)
    assert not set(tr) & set(te)
    assert not np.array_equal(te, P.split_samples(rows, cols, 0.3, "random", seed=4)[1])


def test_block_split_keeps_blocks_whole():
    rows, cols = np.divmod(np.arange(60 * 60), 60)
    tr, te = P.split_samples(rows, cols, 0.3, "blocks", block_size=10, seed=0)
    assert 0.25 < len(te) / 3600 < 0.4
    block = lambda i: (rows[i] // 10, cols[i] // 10)  # noqa: E731
    assert not {block(i) for i in tr} & {block(i) for i in te}


def test_read_predictors_names_bands_warns_on_warp_and_refuses_inf(tmp_path, caplog):
    t = (0.5, 0, 10.0, 0, -0.5, 50.0)
    a = write_tif(tmp_path / "soil.tif", np.ones((2, 10, 10)), transform=t, descriptions=["clay", ""])
    b = write_tif(tmp_path / "elev.tif", np.ones((10, 10)), transform=t)
    grid = io.Grid("", t, 10, 10)
    with io.open_raster(a, "x") as r:
        grid = r.grid
    stack = P.read_predictors([str(a), str(b)], grid)
    assert stack.names == ["clay", "soil_2", "elev"] and stack.data.shape == (3, 10, 10)
    # A finer grid over the same area is resampled onto the labels' grid, with a warning.
    fine = write_tif(tmp_path / "fine.tif", np.ones((20, 20)), transform=(0.25, 0, 10.0, 0, -0.25, 50.0))
    stack = P.read_predictors([str(fine)], grid)
    assert stack.data.shape == (1, 10, 10)
    assert any(r.levelname == "WARNING" and "resampled" in r.getMessage() for r in caplog.records)
    bad = np.ones((2, 10, 10), np.float32)
    bad[1, 3, 3] = np.inf
    c = write_tif(tmp_path / "broken.tif", bad, t, as_is=True)  # inf kept, not made nodata
    with pytest.raises(InputFileError, match=r"broken.tif' band 2 holds 1 infinite"):
        P.read_predictors([str(c)], grid)
    empty = write_tif(
        tmp_path / "empty.tif", np.stack([np.ones((10, 10)), np.full((10, 10), np.nan)]), transform=t
    )
    with pytest.raises(InputFileError, match=r"empty.tif' band 2 holds no valid value"):
        P.read_predictors([str(empty)], grid)


def test_predictor_grid_that_cannot_be_aligned_is_bad_input(tmp_path):
    t = (0.5, 0, 10.0, 0, -0.5, 50.0)
    lab = write_tif(tmp_path / "labels.tif", np.ones((10, 10)), transform=t)
    other = write_tif(tmp_path / "nocrs.tif", np.ones((12, 12)), transform=(1, 0, 0, 0, -1, 0), crs=None)
    with io.open_raster(lab, "LABELS") as r:
        grid = r.grid
    with pytest.raises(GridMismatch, match="nocrs.tif"):
        P.read_predictors([str(other)], grid)
    far = write_tif(tmp_path / "far.tif", np.ones((10, 10)), transform=(0.5, 0, -120.0, 0, -0.5, -30.0))
    with pytest.raises(GridMismatch, match="far.tif"):
        P.read_predictors([str(far)], grid)


def test_duplicate_band_names_get_their_file_name():
    assert P.unique_names(["a", "b", "a"], ["f1", "f1", "f2"]) == ["f1:a", "b", "f2:a"]


@pytest.mark.parametrize("kind", ["standard", "patch_minmax"])
def test_torch_patch_gather_matches_numpy(kind):
    import torch

    rng = np.random.default_rng(2)
    data = rng.normal(3, 1, (4, 10, 13)).astype(np.float32)
    data[2, 5, 5] = np.nan
    sc = P.Scaling(kind, np.full(4, 3, np.float32), np.ones(4, np.float32), 0.0, 1.0)
    padded = P.pad_block(data, sc, 3)
    rows, cols = np.array([0, 5, 9, 2]), np.array([12, 5, 0, 7])
    a = P.extract_patches(padded, rows, cols, 7, kind)
    b = P.extract_patches_torch(
        torch.from_numpy(padded), torch.from_numpy(rows), torch.from_numpy(cols), 7, kind
    )
    np.testing.assert_allclose(b.numpy(), a, rtol=1e-6)


def test_the_band_warning_comes_only_when_bands_are_really_dropped(tmp_path, caplog):
    data = np.ones((2, 6, 6), np.float32)
    own = write_tif(
        tmp_path / "labels.tif", data, descriptions=["CWSC (mm)", "CWSC identifiable range width (mm)"]
    )
    P.read_single_band(str(own), "LABELS")
    assert "only band 1" not in caplog.text
    caplog.clear()
    other = write_tif(tmp_path / "two.tif", data, descriptions=["CWSC (mm)", "soil depth (cm)"])
    P.read_single_band(str(other), "LABELS")
    assert "only band 1 is used (not soil depth (cm))" in caplog.text
