"""The shard layout, the seeds and the worker count: what no runner may change."""

from __future__ import annotations

import numpy as np
import pytest

from cwsc.errors import ParameterError
from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.calibration.shards import (
    SHARD_CELLS,
    available_cores,
    derive_seed,
    shard_cells,
    shard_slices,
    workers,
)
from cwsc.hydro.engines.selection import Engine


def test_the_layout_and_seeds_depend_on_the_cells_only():
    assert shard_slices(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert shard_slices(0, 4) == []
    seeds = {derive_seed(42, k) for k in range(100)}
    assert len(seeds) == 100 and derive_seed(42, 3) == derive_seed(42, 3) != derive_seed(43, 3)
    assert shard_cells("cpu") == SHARD_CELLS["cpu"] and shard_cells("cuda:0") == SHARD_CELLS["cuda"]
    assert shard_cells("cpu", 7) == 7


class _Recorder:
    """A runner that runs nothing: it records the jobs it is given."""

    def __init__(self):
        self.jobs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def describe(self):
        return "recording"

    def run(self, jobs, on_result, on_progress):
        for job in jobs:
            self.jobs.append(job)
            on_progress(job.number, 0.5)
            on_result(job.number, f"result {job.number}")


def test_chunks_are_cut_into_shards_in_order_with_their_seeds(monkeypatch):
    """Chunks of any size (strips of a raster) make the same shards as whole arrays; a
    saved shard is not run again."""
    from cwsc.hydro.calibration import driver

    recorder = _Recorder()
    monkeypatch.setattr(driver, "open_workers", lambda *args: recorder)
    p = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    index = np.arange(10) * 2  # where each cell belongs (a flat grid index)
    chunks = [(index[a:b], p[a:b], p[a:b] + 1, p[a:b] + 2) for a, b in ((0, 3), (3, 3), (3, 10))]
    placed, fractions = {}, []
    shards = driver.calibrate_stream(
        chunks,
        10,
        CalibrationConfig(seed=9),
        Engine("torch", 64),
        lambda k, idx, result: placed.__setitem__(k, (idx.tolist(), result)),
        lambda fraction, done: fractions.append((fraction, done)),
        shard_cells=4,
        fixed={"sc": np.arange(20.0)},
        saved=lambda k: "saved 1" if k == 1 else None,
        skip=1,
    )
    jobs = recorder.jobs
    assert shards == 3 and [j.number for j in jobs] == [0, 2] and [j.cells for j in jobs] == [4, 2]
    np.testing.assert_array_equal(jobs[0].precip, p[:4])
    np.testing.assert_array_equal(jobs[1].runoff, p[8:] + 2)
    np.testing.assert_array_equal(jobs[1].fixed["sc"], [16.0, 18.0])
    assert [j.config.seed for j in jobs] == [derive_seed(9, 0), derive_seed(9, 2)]
    assert placed == {
        0: ([0, 2, 4, 6], "result 0"),
        1: ([8, 10, 12, 14], "saved 1"),
        2: ([16, 18], "result 2"),
    }
    assert fractions[-1] == (1.0, 3) and all(a[0] <= b[0] for a, b in zip(fractions, fractions[1:]))


def test_worker_count_from_the_option_the_environment_or_the_cores(monkeypatch):
    monkeypatch.delenv("CWSC_WORKERS", raising=False)
    assert workers() == available_cores() >= 1
    monkeypatch.setenv("CWSC_WORKERS", "3")
    assert workers() == 3 and workers(5) == 5
    for bad in ("0", "-2", "many"):
        monkeypatch.setenv("CWSC_WORKERS", bad)
        with pytest.raises(ParameterError, match="CWSC_WORKERS must be a whole number of 1 or more"):
            workers()
