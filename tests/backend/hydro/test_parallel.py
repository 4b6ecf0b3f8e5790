"""The shard layout, the seeds and the worker count: what no runner may change."""

from __future__ import annotations

import numpy as np
import pytest

from backend.hydro.config import CalibrationConfig
from backend.hydro.engine import Engine
from backend.hydro.parallel import (SHARD_CELLS, available_cores, derive_seed, shard_cells,
                                    shard_jobs, shard_slices, workers)
from backend.protocol import BadInput


def test_the_layout_and_seeds_depend_on_the_cells_only():
    assert shard_slices(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert shard_slices(0, 4) == []
    seeds = {derive_seed(42, k) for k in range(100)}
    assert len(seeds) == 100 and derive_seed(42, 3) == derive_seed(42, 3) != derive_seed(43, 3)
    assert shard_cells("cpu") == SHARD_CELLS["cpu"] and shard_cells("cuda:0") == SHARD_CELLS["cuda"]
    assert shard_cells("cpu", 7) == 7


def test_shard_jobs_cut_arrays_in_order_with_their_seeds():
    p = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    jobs = list(shard_jobs(p, p + 1, p + 2, CalibrationConfig(seed=9), Engine("torch", 64),
                           fixed={"sc": np.arange(10.0)}, size=4))
    assert [j.number for j in jobs] == [0, 1, 2] and [j.cells for j in jobs] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([j.precip for j in jobs]), p)
    np.testing.assert_array_equal(jobs[2].fixed["sc"], [8.0, 9.0])
    assert [j.config.seed for j in jobs] == [derive_seed(9, k) for k in range(3)]


def test_worker_count_from_the_option_the_environment_or_the_cores(monkeypatch):
    monkeypatch.delenv("CWSC_WORKERS", raising=False)
    assert workers() == available_cores() >= 1
    monkeypatch.setenv("CWSC_WORKERS", "3")
    assert workers() == 3 and workers(5) == 5
    for bad in ("0", "-2", "many"):
        monkeypatch.setenv("CWSC_WORKERS", bad)
        with pytest.raises(BadInput, match="CWSC_WORKERS must be a whole number of 1 or more"):
            workers()
