"""Fixtures for the hydro tests."""

import pytest

from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff


@pytest.fixture(scope="module")
def twin():
    """Six SWBM twin cells, 96 months: (precip, pet, runoff, true parameters)."""
    cells, months = 6, 96
    p, e = synthetic_forcing(cells, months, seed=11)
    prm = random_params("SWBM", cells, seed=11)
    q = synthetic_runoff("SWBM", p, e, prm, noise=0.05, seed=11)
    return p, e, q, prm
