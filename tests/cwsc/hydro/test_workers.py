"""Shards run here, in worker processes or on a Dask cluster: the same labels, bit for bit."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest
from backend_testing import DaskCluster, dwbm_cells

from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.calibration.driver import calibrate
from cwsc.hydro.sceua import SceuaSettings

pytestmark = pytest.mark.slow  # subprocess runs of the backend, tens of seconds in all

CONFIG = CalibrationConfig(models=("DWBM", "SWBM"), sceua=SceuaSettings(max_evaluations=150), seed=5)


def _same(a, b) -> None:
    for name in ("cwsc", "cwsc_range", "flags", "kge"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for m in a.models:
        for k in a.models[m].params:
            np.testing.assert_array_equal(a.models[m].params[k], b.models[m].params[k])
        np.testing.assert_array_equal(a.models[m].kge_val, b.models[m].kge_val)
        np.testing.assert_array_equal(a.models[m].evaluations, b.models[m].evaluations)


@pytest.fixture(scope="module")
def cells():
    return dwbm_cells(40, 72, seed=3)


def test_any_number_of_workers_gives_the_same_labels(cells):
    p, e, q = cells
    seen: dict[int, list] = {}
    runs = {}
    for workers in (1, 2, 3):
        seen[workers] = []
        runs[workers] = calibrate(
            p, e, q, CONFIG, workers=workers, shard_cells=8, progress=seen[workers].append
        )
    for workers in (2, 3):
        _same(runs[1], runs[workers])
        assert seen[workers][-1] == 1.0 and all(0 <= f <= 1 for f in seen[workers])
        # Progress from the SCE-UA loops inside the shards, not only per finished shard.
        assert any(abs(f * 5 - round(f * 5)) > 0.01 for f in seen[workers]), seen[workers]
    assert np.isfinite(runs[1].kge).all()
    # Another shard size is another layout (like another seed): other searches.
    other = calibrate(p, e, q, CONFIG, workers=2, shard_cells=16)
    assert not np.array_equal(other.models["DWBM"].params["sc"], runs[1].models["DWBM"].params["sc"])


def test_a_dask_cluster_gives_the_same_labels_even_when_a_worker_dies(cells, tmp_path):
    p, e, q = cells
    local = calibrate(p, e, q, CONFIG, workers=2, shard_cells=4)
    with DaskCluster(tmp_path / "dask", workers=2) as cluster:
        _same(local, calibrate(p, e, q, CONFIG, scheduler=cluster.address, shard_cells=4))

        # Kill one worker (SIGKILL, as a lost node) once the run is under way.
        killed = threading.Event()

        def progress(frac: float) -> None:
            if frac > 0 and not killed.is_set():
                killed.set()
                os.kill(cluster.workers[0].pid, signal.SIGKILL)

        survived = calibrate(p, e, q, CONFIG, scheduler=cluster.address, shard_cells=4, progress=progress)
        assert killed.is_set() and cluster.workers[0].wait(10) == -signal.SIGKILL
        _same(local, survived)
