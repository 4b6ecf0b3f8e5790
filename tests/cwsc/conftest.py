"""Fixtures for the backend tests (helpers live in ``backend_testing.py``)."""

from __future__ import annotations

import pytest
from backend_testing import write_tif


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
