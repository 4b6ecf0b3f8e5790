"""Fixtures for the backend tests (helpers live in ``backend_testing.py``)."""

from __future__ import annotations

import pytest
from backend_testing import COLS, MONTHS, ROWS, write_tif


@pytest.fixture
def tif(tmp_path):
    def make(name, data, **kw):
        return write_tif(tmp_path / name, data, **kw)

    return make


@pytest.fixture(scope="module")
def twin_files(tmp_path_factory):
    """The learning twin written as GeoTIFFs (30 x 30 cells, 5 channels) and its folder."""
    from cwsc.synthetic.twin import make_twin, write_twin

    folder = tmp_path_factory.mktemp("twin")
    return write_twin(folder, make_twin((30, 30), channels=5, seed=4)), folder


@pytest.fixture
def forcing(tmp_path):
    """Small P, PET and Q GeoTIFFs (3 x 4 cells, 48 months) of a DWBM twin, and their arrays."""
    from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

    cells = ROWS * COLS
    p, e = synthetic_forcing(cells, MONTHS, seed=5)
    q = synthetic_runoff("DWBM", p, e, random_params("DWBM", cells, seed=5), seed=5)
    cube = lambda a: a.T.reshape(MONTHS, ROWS, COLS).copy()  # noqa: E731
    arrays = {"p": cube(p), "e": cube(e), "q": cube(q)}
    paths = {k: write_tif(tmp_path / f"{k}.tif", v) for k, v in arrays.items()}
    return paths, arrays


@pytest.fixture
def previous_outputs(tmp_path):
    """Outputs of an earlier run, whose bytes must survive every failed run."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("cwsc.tif", "kge.tif", "details.tif", "cwsc.tif.aux.xml"):
        (out / name).write_bytes(f"last year's {name}".encode())
    return out
