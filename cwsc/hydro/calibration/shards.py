"""Calibration in shards: a layout of cells and seeds that no number of workers changes.

The words for batching, used the same way everywhere in the backend:

- a **strip** is a band of raster rows read or written at once (:func:`cwsc.io.rasters.row_strips`);
  it bounds the memory of reading.
- a **shard** is a run of consecutive land cells (in reading order) calibrated together,
  every model, by one worker: :data:`SHARD_CELLS` cells on the CPU (fewer make the lockstep
  search pay its per-step overhead on too few cells), one large batch on CUDA. Shard ``k``
  of a run seeded ``s`` searches with ``derive_seed(s, k)``. The layout and the seeds depend
  only on the cells, the shard size and the seed, so the same seed gives the same labels, bit
  for bit, with any number of workers, on a Dask cluster, or resumed from a work folder.
- **columns** are the model runs (cells x restarts x SCE-UA points) one kernel call
  evaluates together (:attr:`cwsc.hydro.engines.selection.Engine.max_columns`).

Who runs the shards (this process, a pool of processes, a Dask cluster) is
:mod:`cwsc.hydro.calibration.runners`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cwsc.machine import environment

if TYPE_CHECKING:  # torch-free at import: the command starts its workers before torch loads
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.engines.selection import Engine

#: Cells per shard by device type.
SHARD_CELLS = {"cpu": 1024, "cuda": 65536}


def shard_cells(device, requested: int | None = None) -> int:
    """Cells per shard on ``device`` (``requested`` when given)."""
    if requested:
        return int(requested)
    kind = getattr(device, "type", str(device)).split(":")[0]
    return SHARD_CELLS.get(kind, SHARD_CELLS["cuda"])


def shard_slices(cells: int, size: int) -> list[slice]:
    """Consecutive slices of ``size`` cells covering ``cells`` cells (the last may be short)."""
    return [slice(i, min(i + size, cells)) for i in range(0, cells, max(1, int(size)))]


def derive_seed(seed: int, shard: int) -> int:
    """The search seed of shard ``shard`` (0, 1, ...) of a run seeded ``seed``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(shard)]).generate_state(1)[0])


def available_cores() -> int:
    """The cores this process may use (its CPU affinity, which a batch scheduler sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def workers(requested: int | None = None) -> int:
    """Worker processes: ``requested``, else ``CWSC_WORKERS``, else every available core."""
    return int(requested or environment.workers() or available_cores())


@dataclass
class ShardJob:
    """One shard's work: forcing (cells, months) in mm/month, the configuration with the
    shard's seed, and the engine chosen for the whole run. ``fixed``: parameter -> (cells,)
    values held fixed (see :func:`cwsc.hydro.calibration.driver.calibrate`)."""

    number: int
    precip: np.ndarray
    pet: np.ndarray
    runoff: np.ndarray
    config: CalibrationConfig
    engine: Engine
    fixed: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def cells(self) -> int:
        return int(self.precip.shape[0])


def to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)
