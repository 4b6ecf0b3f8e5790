"""Calibration across processes: shards, workers and the seeds that keep results fixed.

The words for batching, used the same way everywhere in the backend:

- a **strip** is a band of raster rows read or written at once (:func:`backend.io.row_strips`);
  it bounds the memory of reading.
- a **chunk** is a group of land cells the calibrate command hands to
  :func:`backend.hydro.calibrate.calibrate` at once (``--chunk-cells``); it bounds the
  memory of a command. Chunks are numbered in reading order from 1.
- a **shard** is a fixed part of a chunk calibrated by one worker process
  (:func:`calibrate_sharded`); the layout depends only on the cell count, never on the
  number of workers.
- **columns** are the model runs (cells x restarts x SCE-UA points) one kernel call
  evaluates together (:attr:`backend.hydro.engine.Engine.max_columns`).

Seeds come from :func:`derive_seed` alone: chunk ``k`` of a run with seed ``s`` searches
with ``derive_seed(s, k)``, shard ``i`` of a batch with seed ``b`` with
``derive_seed(b, shard=i)``, so the same seed gives the same labels with any number of
workers and any memory bound that keeps the chunks.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Callable, Mapping

import numpy as np
import torch

from backend import environment
from backend.hydro.config import CalibrationConfig
from backend.hydro.engine import Engine
from backend.hydro.labels import ModelLabels

#: CPU batches of at least ``CWSC_PARALLEL_MIN_CELLS`` cells are cut into this many shards,
#: each calibrated in its own single-threaded process (per-op overhead and intra-op
#: threading dominate the lockstep loop on CPU; processes use the cores far better).
CPU_SHARDS = 2
#: Chunk seeds step by this prime (the first release's derivation, kept so that seeds
#: reproduce their labels).
_CHUNK_STRIDE = 7919


def derive_seed(seed: int, chunk: int | None = None, shard: int | None = None) -> int:
    """The seed of chunk ``chunk`` (1, 2, ...) of a run seeded ``seed``, or of shard
    ``shard`` of a batch seeded ``seed``."""
    seed = int(seed)
    if chunk is not None:
        seed += _CHUNK_STRIDE * int(chunk)
    if shard is not None:
        seed = int(np.random.SeedSequence([seed & 0xFFFFFFFF, int(shard)]).generate_state(1)[0])
    return seed


def workers() -> int:
    """Worker processes: ``CWSC_WORKERS``, else every core."""
    return environment.workers() or max(1, os.cpu_count() or 1)


def wants_shards(cells: int, device) -> bool:
    """Whether a batch of ``cells`` cells on ``device`` is cut into shards."""
    return (torch.device(device).type == "cpu"
            and cells >= max(environment.parallel_min_cells(), CPU_SHARDS))


def _to_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


_QUEUE = None


def _worker_init(queue) -> None:
    global _QUEUE
    from backend.devices import single_thread

    _QUEUE = queue
    single_thread()


def _shard_job(shard: int, model, precip, pet, runoff, config, engine, fixed) -> ModelLabels:
    from backend.hydro.calibrate import calibrate_batch

    def report(frac: float) -> None:
        if _QUEUE is not None:
            _QUEUE.put((shard, frac))

    return calibrate_batch(model, precip, pet, runoff, config, engine, fixed=fixed,
                           progress=report)


def calibrate_sharded(model: str, precip, pet, runoff, config: CalibrationConfig, engine: Engine,
                      fixed: Mapping[str, object] | None = None,
                      progress: Callable[[float], None] | None = None) -> ModelLabels:
    """Calibrate in :data:`CPU_SHARDS` shards of cells, in worker processes (in this
    process when workers cannot start); arrays as
    :func:`backend.hydro.calibrate.calibrate_batch`."""
    from backend.hydro.calibrate import calibrate_batch

    p, e0, q = (_to_numpy(a) for a in (precip, pet, runoff))
    n = p.shape[0]
    fixed_np = {k: _to_numpy(v).reshape(n) for k, v in (fixed or {}).items()}
    bounds = np.linspace(0, n, CPU_SHARDS + 1).astype(int)
    jobs = []
    for i in range(CPU_SHARDS):
        sl = slice(bounds[i], bounds[i + 1])
        cfg = replace(config, seed=derive_seed(config.seed, shard=i))
        jobs.append((i, model, p[sl], e0[sl], q[sl], cfg, engine,
                     {k: v[sl] for k, v in fixed_np.items()}))
    sizes = np.diff(bounds).astype(float)
    done = np.zeros(CPU_SHARDS)

    def report(shard: int, frac: float) -> None:
        done[shard] = frac
        if progress:
            progress(float((done * sizes).sum() / max(sizes.sum(), 1.0)))

    count = min(workers(), CPU_SHARDS)
    results: list | None = None
    if count > 1:
        try:
            results = _run_pool(jobs, count, report)
        except BrokenProcessPool as exc:
            # E.g. a caller's script without ``if __name__ == "__main__"``: spawn cannot
            # start workers. The same shards in this process give the same result.
            print(f"cwsc: worker processes failed ({exc}); calibrating in this process",
                  file=sys.stderr)
    if results is None:
        results = [calibrate_batch(*job[1:7], fixed=job[7],
                                   progress=lambda f, _i=job[0]: report(_i, f)) for job in jobs]
    if progress:
        progress(1.0)
    merged = ModelLabels.concatenate(results)
    assert merged.kge_cal.shape[0] == n
    return merged


def _run_pool(jobs, count, report) -> list:
    import multiprocessing as mp
    import queue as queue_mod

    results = [None] * len(jobs)
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    pool = ProcessPoolExecutor(count, mp_context=ctx, initializer=_worker_init,
                               initargs=(events,))
    try:
        futures = [pool.submit(_shard_job, *job) for job in jobs]
        while not all(f.done() for f in futures):
            try:
                shard, frac = events.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            report(shard, frac)
        for i, f in enumerate(futures):
            results[i] = f.result()
    except BaseException:
        # Stopped (SIGTERM) or failed: the workers go with us.
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        events.close()
        events.cancel_join_thread()
    return results
