"""Refusals that refuse (issue #33 sections 2 and 4), through the command line as the plugin
runs it: options that no run can honour are named in one sentence, before any work; a run
with nothing to write refuses (exit 2) and leaves last year's files byte-identical."""

from __future__ import annotations

import numpy as np
import pytest
from backend_testing import calibrate_args, refused, run_backend, write_tif

MONTHS = [f"{2001 + i // 12}-{i % 12 + 1:02d}" for i in range(36)]


@pytest.fixture
def forcing(tmp_path):
    rng = np.random.default_rng(3)
    p = rng.uniform(20, 150, (36, 3, 4))
    paths = {}
    for name, data in (("p", p), ("e", np.full((36, 3, 4), 70.0)), ("q", 0.3 * p)):
        paths[name] = write_tif(tmp_path / f"{name}.tif", data, descriptions=MONTHS)
    return paths


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--kge-margin", "nan"], ["MODEL_KGE_MARGIN", "finite"]),
        (["--kge-margin", "inf"], ["MODEL_KGE_MARGIN", "finite"]),
        (["--seed", str(2**70)], ["SEED", "63 bits"]),
        (
            ["--period-start", "2003-06", "--period-end", "2001-06"],
            ["PERIOD_START", "PERIOD_END", "reversed"],
        ),
    ],
)
def test_options_no_run_can_honour_are_refused_by_name(forcing, tmp_path, extra, words):
    refused([*calibrate_args(forcing, tmp_path), *extra], *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.tif", "p.tif", "q.tif"]  # the inputs alone


def test_a_block_size_with_the_random_split_is_refused_by_name(tmp_path):
    labels = write_tif(tmp_path / "labels.tif", np.full((8, 8), 100.0))
    args = ["train", "--predictors", labels, "--labels", labels, "--out-model", tmp_path / "m.pt"]
    refused([*args, "--split", "random", "--block-size", "5"], "BLOCK_SIZE", "SPLIT=random")


@pytest.mark.slow
def test_an_extent_with_its_crs_as_the_help_shows_it_is_read(forcing, tmp_path):
    """``--extent=xmin,xmax,ymin,ymax [CRS]`` unquoted: the shell makes the CRS its own word."""
    rc, events, err = run_backend(
        *calibrate_args(forcing, tmp_path), "--extent=-9.9,-9.1,59.1,59.9", "[EPSG:4326]"
    )
    assert rc == 0, (events[-1:], err[-2000:])
    import rasterio

    with rasterio.open(tmp_path / "cwsc.tif") as src:
        assert (src.width, src.height) == (2, 2)


def test_one_file_given_as_precipitation_and_runoff_is_refused(forcing, tmp_path):
    paths = dict(forcing, q=forcing["p"])
    refused(calibrate_args(paths, tmp_path), "RUNOFF", "also given as PRECIPITATION")


@pytest.mark.slow
def test_a_temperature_always_below_freezing_is_refused_by_name(forcing, tmp_path):
    t = write_tif(tmp_path / "t.tif", np.full((36, 3, 4), -8.0), descriptions=MONTHS)
    refused([*calibrate_args(forcing, tmp_path), "--temperature", t], "TEMPERATURE", "below freezing")


@pytest.mark.parametrize("threshold, words", [("1.5", ["THRESHOLD", "1.5"]), ("0.9", ["THRESHOLD", "0.9"])])
def test_a_mask_that_would_mask_everything_is_refused_and_last_years_output_kept(tmp_path, threshold, words):
    labels = write_tif(tmp_path / "labels.tif", np.array([[100, 200], [300, 400.0]]))
    kge = write_tif(tmp_path / "kge.tif", np.array([[0.6, 0.5], [0.1, 0.3]]))
    (tmp_path / "m.tif").write_bytes(b"last year's masked labels")
    refused(
        ["mask", "--labels", labels, "--kge", kge, "--threshold", threshold, "--out", tmp_path / "m.tif"],
        *words,
    )
    assert (tmp_path / "m.tif").read_bytes() == b"last year's masked labels"
