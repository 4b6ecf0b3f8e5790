"""cwsc.evaluation.maps: agreement of a map with a reference."""

import numpy as np
import pytest

from cwsc.evaluation.maps import agreement


def test_agreement_metrics():
    ref = np.array([[100.0, 200.0], [300.0, np.nan]])
    stats = agreement(ref + 10, ref)
    assert stats["cells"] == 3 and stats["bias"] == pytest.approx(10)
    assert stats["rmse"] == pytest.approx(10) and stats["pearson_r"] == pytest.approx(1)
