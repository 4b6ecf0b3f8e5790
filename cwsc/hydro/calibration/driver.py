"""The calibration driver: every model of a configuration on any number of cells.

:func:`calibrate_stream` takes the land cells as they are read (chunks of cells: a strip of
raster rows, or whole arrays), cuts them into shards of a fixed size in reading order
(:mod:`cwsc.hydro.calibration.shards`), hands the shards to a runner (this process, worker
processes or a Dask cluster, :mod:`cwsc.hydro.calibration.runners`) as its workers free up,
and reports each shard's result as it arrives. :func:`calibrate` does the same on arrays and
puts the results back in order. The layout and seeds depend only on the cells, the shard
size and the seed, so every runner, and a run resumed from saved shards, gives the same bytes.
"""

from __future__ import annotations

import logging
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
import torch

from cwsc.hydro.calibration import shards as parallel
from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.calibration.runners import InProcess, open_workers
from cwsc.hydro.calibration.shard import concatenate_results
from cwsc.hydro.calibration.shards import ShardJob, derive_seed
from cwsc.hydro.engines.selection import Engine, Tuning, choose_engine
from cwsc.hydro.labels import CalibrationResult

log = logging.getLogger(__name__)

#: A chunk of land cells in reading order: (cell index, P, PET, Q), the forcing as
#: (cells, months) mm/month. The index says where each cell belongs (a flat grid index, or a
#: position in the caller's arrays).
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _shards(
    chunks: Iterable[Chunk], size: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(number, index, P, PET, Q) of consecutive shards of ``size`` cells (the last may be
    short), holding no more than one chunk and one shard of forcing at a time."""
    parts: list[Chunk] = []
    buffered, number = 0, 0

    def take(count: int):
        nonlocal parts, buffered
        got, rest, n = [], [], 0
        for part in parts:
            if n >= count:
                rest.append(part)
                continue
            k = min(count - n, part[0].size)
            got.append(tuple(a[:k] for a in part))
            if k < part[0].size:
                rest.append(tuple(a[k:] for a in part))
            n += k
        parts, buffered = rest, buffered - n
        return tuple(np.concatenate([g[i] for g in got]) for i in range(4))

    for chunk in chunks:
        if chunk[0].size:
            parts.append(chunk)
            buffered += chunk[0].size
        del chunk  # one chunk of forcing in memory at a time, not two
        while buffered >= size:
            yield (number, *take(size))
            number += 1
    if buffered:
        yield (number, *take(buffered))


def calibrate_stream(
    chunks: Iterable[Chunk],
    total_cells: int,
    config: CalibrationConfig,
    engine: Engine,
    on_result: Callable[[int, np.ndarray, CalibrationResult], None],
    progress: Callable[[float, int], None] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    shard_cells: int | None = None,
    fixed: Mapping[str, np.ndarray] | None = None,
    saved: Callable[[int], CalibrationResult | None] | None = None,
    skip: int = 0,
    announce: Callable[[object], None] | None = None,
) -> int:
    """Calibrate every model of ``config`` on the land cells of ``chunks`` (``total_cells`` in
    all) and call ``on_result(shard, index, result)`` for each shard as it finishes (in any
    order; ``index`` as given in the chunks). Returns the number of shards.

    progress(fraction of the cells, shards done). ``fixed``: parameter -> values held fixed,
    indexed by the chunks' cell index. ``saved(shard)``: a result saved earlier (a work folder)
    or None; ``skip``: how many shards it will answer, so the runner starts no more workers
    than there are shards to run. ``announce(runner)``: called once the runner is open (its
    ``describe()`` says where the shards run, its ``count`` how many workers). Worker processes that cannot start (a script without ``if __name__ ==
    "__main__"``) fall back to this process with the same result.
    """
    size = parallel.shard_cells(config.device, shard_cells)
    n_shards = -(-int(total_cells) // size)
    count = 1 if torch.device(config.device).type != "cpu" else parallel.workers(workers)
    where: dict[int, np.ndarray] = {}
    running: dict[int, float] = {}
    pending: dict[int, ShardJob] = {}
    state = {"cells": 0, "shards": 0}

    def report() -> None:
        if progress:
            busy = sum(frac * where[k].size for k, frac in running.items() if k in where)
            progress((state["cells"] + busy) / max(total_cells, 1), state["shards"])

    def place(number: int, result: CalibrationResult) -> None:
        index = where.pop(number)
        running.pop(number, None)
        pending.pop(number, None)
        on_result(number, index, result)
        state["cells"] += index.size
        state["shards"] += 1
        report()

    def on_progress(number: int, frac: float) -> None:
        running[number] = frac
        report()

    def jobs() -> Iterator[ShardJob]:
        for number, index, p, e, q in _shards(chunks, size):
            where[number] = index
            result = saved(number) if saved is not None else None
            if result is not None:
                place(number, result)
                continue
            job = ShardJob(
                number,
                p,
                e,
                q,
                replace(config, seed=derive_seed(config.seed, number)),
                engine,
                {k: np.asarray(v)[index] for k, v in (fixed or {}).items()},
            )
            pending[number] = job
            yield job

    source = jobs()
    runner = open_workers(count, max(n_shards - skip, 0), scheduler)
    try:
        with runner:
            if announce:
                announce(runner)
            runner.run(source, place, on_progress)
    except BrokenProcessPool as exc:
        # The same shards in this process give the same result.
        log.warning(f"worker processes failed ({exc}); calibrating in this process")
        with InProcess() as here:
            here.run([*pending.values(), *source], place, on_progress)
    return n_shards


def calibrate(
    precip,
    pet,
    runoff,
    config: CalibrationConfig | None = None,
    fixed: Mapping[str, object] | None = None,
    progress: Callable[[float], None] | None = None,
    engine: Engine | None = None,
    tuning: Tuning | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    shard_cells: int | None = None,
) -> CalibrationResult:
    """Calibrate every model of ``config.models`` on C cells and derive the joint labels.

    precip, pet, runoff: (C, months) mm/month (numpy or torch; NaN runoff = missing).
    fixed: parameter name -> (C,) values held fixed in every model that has the parameter
    (e.g. ``{"sc": cwsc}`` to calibrate the others with the storage capacity given).
    progress(fraction of the work). The cells are cut into shards
    (:mod:`cwsc.hydro.calibration.shards`) run by ``workers`` processes (default: every core) or on
    the Dask cluster at ``scheduler``; the result does not depend on either. ``engine`` /
    ``tuning``: as :func:`calibrate_model`, one engine for every shard.
    """
    config = config or CalibrationConfig()
    n, months = int(np.shape(precip)[0]), int(np.shape(precip)[1])
    engine = engine or choose_engine(config, n, months, tuning)
    p, e, q = (parallel.to_numpy(a) for a in (precip, pet, runoff))
    results: dict[int, CalibrationResult] = {}
    n_shards = calibrate_stream(
        [(np.arange(n), p, e, q)],
        n,
        config,
        engine,
        lambda number, _index, result: results.__setitem__(number, result),
        (lambda fraction, _shards: progress(fraction)) if progress else None,
        workers,
        scheduler,
        shard_cells,
        {k: parallel.to_numpy(v).reshape(n) for k, v in (fixed or {}).items()},
    )
    return concatenate_results([results[k] for k in range(n_shards)], config)
