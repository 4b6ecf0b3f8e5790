"""The long-term water balance of the forcing (issue 35): runoff above precipitation, or
P - Q above PET, beyond the tolerance, is bad; months with a gap are left out."""

from __future__ import annotations

import numpy as np
import pytest

from cwsc.hydro.balance import TOLERANCE, describe, water_balance


def test_each_bound_and_the_tolerance():
    months = 24
    p = np.full((4, months), 100.0)
    q = np.array([[40.0], [40.0], [100.0 * (1 + TOLERANCE) + 1], [100.0 * (1 + TOLERANCE) - 1]]) * np.ones(
        months
    )
    e = np.array([[80.0], [60.0 / (1 + TOLERANCE) - 1], [200.0], [200.0]]) * np.ones(months)
    b = water_balance(p, e, q)
    assert b.bad.tolist() == [False, True, True, False]
    assert b.evaporation_excess[1] == pytest.approx(60.0 / e[1, 0])
    assert b.runoff_excess[2] == pytest.approx(q[2, 0] / 100.0)
    words = describe(b)
    assert "1 with long-term runoff above precipitation" in words and "1 whose P - Q exceeds PET" in words


def test_gaps_are_left_out_and_a_cell_without_months_is_not_bad():
    p = np.array([[100.0, 100.0, 5.0], [np.nan] * 3])
    e = np.array([[80.0, 80.0, 80.0], [1.0] * 3])
    q = np.array([[40.0, 40.0, np.nan], [1.0] * 3])
    b = water_balance(p, e, q)
    assert b.precipitation[0] == 100.0 and b.runoff[0] == 40.0
    assert np.isnan(b.precipitation[1]) and not b.bad[1]


def test_the_warning_counts_the_cells_and_gives_the_ratio(caplog):
    """What learn and evaluate log (the runtime turns it into a warning event)."""
    import logging

    from cwsc.hydro.balance import warn_if_unbalanced

    months = 36
    p = np.full((months, 2, 3), 100.0)  # (months, rows, cols), as learn and evaluate hold it
    q = np.full_like(p, 40.0)
    e = np.full_like(p, 80.0)
    e[:, 1, 2] = 30.0  # one cell: P - Q = 60 over a PET of 30
    with caplog.at_level(logging.WARNING, logger="cwsc.hydro.balance"):
        b = warn_if_unbalanced(p, e, q, axis=0)
    assert b.bad.shape == (2, 3) and b.bad.sum() == 1 and b.bad[1, 2]
    assert len(caplog.records) == 1 and "1 cells" in caplog.text and "2.00 x PET" in caplog.text
    caplog.clear()
    warn_if_unbalanced(p, np.full_like(p, 80.0), q, axis=0)
    assert not caplog.records
