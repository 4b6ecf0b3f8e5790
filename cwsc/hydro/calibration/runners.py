"""Who calibrates the shards: this process, a pool of worker processes, or a Dask cluster.

Every runner takes an iterator of :class:`~cwsc.hydro.calibration.shards.ShardJob` and pulls from it
only as workers free up (at most two shards per worker in flight), so the forcing is read
shard by shard and the memory of the command stays bounded whatever the grid. Results come
back through ``on_result(number, CalibrationResult)`` in the order shards finish; the shard
layout and seeds make them the same whoever ran them.

- :class:`InProcess`: here, with ``threads`` torch/OpenMP threads.
- :class:`ProcessPool`: ``count`` single-threaded processes (forked from a clean server
  process, or spawned, so a CUDA or OpenMP state of the parent is never inherited), progress
  per SCE-UA loop from every worker.
- :class:`DaskCluster`: the workers of a running ``dask.distributed`` scheduler. Each shard's
  forcing is sent to the cluster with the task (the workers need no access to the input
  files, only the backend environment); a worker lost mid-run has its shards run again on
  another worker by Dask, with the same seeds, so the same labels.

:func:`open_workers` picks one.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from cwsc.errors import ClusterError

if TYPE_CHECKING:
    from cwsc.hydro.calibration.shards import ShardJob

OnResult = Callable[[int, object], None]
OnProgress = Callable[[int, float], None]
#: How long a Dask scheduler may take to answer.
log = logging.getLogger(__name__)

CONNECT_SECONDS = 10
#: How long a run waits for a Dask scheduler that has no workers yet.
WORKER_WAIT_SECONDS = 120


def run_job(job: ShardJob, progress: Callable[[float], None] | None = None):
    """Calibrate one shard here (every model, then the joint labels)."""
    from cwsc.hydro.calibration.shard import calibrate_in_process

    return calibrate_in_process(
        job.precip, job.pet, job.runoff, job.config, job.engine, fixed=job.fixed or None, progress=progress
    )


class InProcess:
    """Shards one after another in this process."""

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self.count = 1

    def describe(self) -> str:
        return (
            f"in this process ({self.threads} thread{'s' if self.threads != 1 else ''})"
            if self.threads
            else "in this process"
        )

    def __enter__(self):
        if self.threads:
            import torch

            torch.set_num_threads(int(self.threads))
        return self

    def __exit__(self, *exc) -> None:
        return None

    def run(self, jobs: Iterable[ShardJob], on_result: OnResult, on_progress: OnProgress) -> None:
        for job in jobs:
            on_result(job.number, run_job(job, lambda f, _n=job.number: on_progress(_n, f)))


# --------------------------------------------------------------------------------------
# Worker processes on this machine
# --------------------------------------------------------------------------------------

_EVENTS = None


def _worker_init(events) -> None:
    global _EVENTS
    import signal

    from cwsc.machine.devices import prepare_process, single_thread

    # Ctrl-C at a terminal reaches every process of the group: the command stops the run and
    # its workers go with it (_exit_with_parent), so a worker prints no traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    prepare_process()
    _EVENTS = events
    single_thread()
    _exit_with_parent()


def _exit_with_parent() -> None:
    """End this worker when the command that started it is gone (killed with SIGKILL, or
    its session ended): an orphaned worker would calibrate for nobody, and the pool's pipes,
    which every worker shares, would never tell it."""
    import multiprocessing as mp
    import os
    import threading
    from multiprocessing.connection import wait

    parent = mp.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])  # readable once the command has exited
        os._exit(1)

    threading.Thread(target=watch, name="cwsc-parent-watch", daemon=True).start()


def _worker_ready() -> bool:
    import cwsc.hydro.calibration.shard  # noqa: F401 - imported while the parent reads the forcing

    return True


def _worker_job(job: ShardJob):
    def report(frac: float) -> None:
        if _EVENTS is not None:
            _EVENTS.put((job.number, frac))

    return run_job(job, report)


def _context(mp):
    """forkserver where the platform has it: one clean server process imports the backend
    once and every worker is forked from it (no thread or CUDA state of this process is
    inherited, and a worker starts in milliseconds instead of importing torch again);
    spawn elsewhere (Windows)."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["cwsc.hydro.calibration.shard", "cwsc.hydro.calibration.runners"])
        return ctx
    return mp.get_context("spawn")


def prestart() -> None:
    """Start the forkserver now (it imports the backend while this process does its own
    reading), so that a pool opened later forks its workers at once."""
    import multiprocessing as mp

    ctx = _context(mp)
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


class ProcessPool:
    """``count`` single-threaded worker processes on this machine."""

    def __init__(self, count: int):
        self.count = int(count)
        self._pool = None
        self._events = None

    def describe(self) -> str:
        return f"in {self.count} worker processes"

    def __enter__(self):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = _context(mp)
        self._events = ctx.Queue()
        self._pool = ProcessPoolExecutor(
            self.count, mp_context=ctx, initializer=_worker_init, initargs=(self._events,)
        )
        # Start every worker now: they import torch while this process reads the forcing.
        self._warm = [self._pool.submit(_worker_ready) for _ in range(self.count)]
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            # Stopped (SIGTERM) or failed: the workers go with us, at once.
            for proc in list((getattr(self._pool, "_processes", None) or {}).values()):
                proc.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
        else:
            self._pool.shutdown(wait=True)
        self._events.close()
        self._events.cancel_join_thread()

    def run(self, jobs: Iterable[ShardJob], on_result: OnResult, on_progress: OnProgress) -> None:
        import queue as queue_mod
        from concurrent.futures import FIRST_COMPLETED, wait

        source: Iterator[ShardJob] = iter(jobs)
        pending: dict = {}

        def fill() -> None:
            while len(pending) < 2 * self.count:
                job = next(source, None)
                if job is None:
                    return
                pending[self._pool.submit(_worker_job, job)] = job.number

        fill()
        while pending:
            while True:
                try:
                    number, frac = self._events.get_nowait()
                except queue_mod.Empty:
                    break
                on_progress(number, frac)
            done, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                number = pending.pop(future)
                on_result(number, future.result())
            fill()


# --------------------------------------------------------------------------------------
# A Dask cluster
# --------------------------------------------------------------------------------------


def _dask_job(job: ShardJob):
    from cwsc.machine.devices import single_thread

    single_thread()
    return run_job(job)


#: What the scheduler and each worker evaluate to say which version of this package they
#: import. A builtin (``eval``) travels by reference, so a process that lacks the package can
#: still run it and answer with the import error.
_VERSION_PROBE = "__import__('importlib').import_module('cwsc').__version__"


def check_cluster(client, address: str) -> None:
    """Refuse a cluster whose scheduler or workers cannot import this package at this version
    (the scheduler unpickles the task graph too): one :class:`~cwsc.errors.ClusterError`
    naming each address and what it lacks, before any work is sent."""
    from cwsc import __version__

    problems = []
    try:
        found = {f"scheduler {address}": client.run_on_scheduler(eval, _VERSION_PROBE)}
    except Exception as exc:  # noqa: BLE001 - the scheduler's own error, reported by name
        found = {f"scheduler {address}": exc}
    found.update({f"worker {w}": v for w, v in client.run(eval, _VERSION_PROBE, on_error="return").items()})
    for where, version in found.items():
        if isinstance(version, BaseException):
            problems.append(f"{where} cannot import the cwsc package ({type(version).__name__}: {version})")
        elif version != __version__:
            problems.append(f"{where} has cwsc {version}")
    if problems:
        raise ClusterError(
            f"DASK_SCHEDULER: {'; '.join(problems)}; this run uses cwsc {__version__}. Install this "
            f"same package in the scheduler's and every worker's environment: 'pip install .' in "
            f"the same checkout (cwsc {__version__}), or 'pip install cwsc-{__version__}-py3-none-any.whl' "
            f"(a wheel made with 'pip wheel --no-deps .'), or 'pip install' the plugin's lib folder"
        )


#: The address schemes of dask.distributed's communications.
SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def probe_scheduler(address: str, seconds: float = CONNECT_SECONDS) -> None:
    """Refuse at once an address that cannot be a Dask scheduler: an unknown scheme, nothing
    listening, or a server that does not greet as a Dask scheduler does the moment a client
    connects (an HTTP server, a database); Dask's own client would wait for it for ever."""
    import socket
    from urllib.parse import urlsplit

    scheme, _, rest = address.partition("://") if "://" in address else ("tcp", "", address)
    if scheme not in SCHEMES:
        raise ClusterError(
            f"DASK_SCHEDULER: '{address}' has the scheme '{scheme}', which Dask does not speak "
            f"(use {', '.join(s + '://' for s in SCHEMES[:2])} ...; e.g. tcp://host:8786)"
        )
    if scheme != "tcp":
        return
    parts = urlsplit("tcp://" + rest)
    try:
        host, port = parts.hostname, parts.port or 8786
    except ValueError:
        host, port = None, None
    if not host:
        raise ClusterError(f"DASK_SCHEDULER: '{address}' is not an address such as tcp://host:8786")
    try:
        with socket.create_connection((host, port), timeout=seconds) as sock:
            sock.settimeout(seconds)
            greeting = sock.recv(8)
    except TimeoutError:
        raise ClusterError(
            f"DASK_SCHEDULER: something answers at {address!r} but it is not a Dask scheduler (no Dask "
            f"greeting within {seconds:g} s)"
        ) from None
    except OSError as exc:
        raise ClusterError(
            f"DASK_SCHEDULER: no Dask scheduler answers at {address!r} ({exc.strerror or exc})"
        ) from None
    if not greeting:
        raise ClusterError(
            f"DASK_SCHEDULER: the server at {address!r} closed the connection: not a Dask scheduler"
        )


class DaskCluster:
    """The workers of the ``dask.distributed`` scheduler at ``address``."""

    def __init__(self, address: str):
        self.address = address
        self.client = None
        self.count = 0

    def describe(self) -> str:
        return f"on the Dask cluster at {self.address} ({self.count} workers)"

    def __enter__(self):
        try:
            from distributed import Client
        except ImportError:
            raise ClusterError(
                "DASK_SCHEDULER: the backend environment lacks the 'distributed' "
                "package (pip install dask distributed)"
            ) from None
        t0 = time.monotonic()
        probe_scheduler(self.address)
        try:
            self.client = Client(self.address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"DASK_SCHEDULER: no Dask scheduler answers at {self.address!r} "
                f"within {CONNECT_SECONDS} s ({type(exc).__name__}: {exc})"
            ) from None
        self.count = len(self.client.scheduler_info().get("workers", {}))
        if not self.count:
            log.info(
                f"the Dask scheduler at {self.address} has no workers yet; waiting "
                f"up to {WORKER_WAIT_SECONDS} s"
            )
            try:
                self.client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
            except (TimeoutError, OSError):
                self.client.close()
                raise ClusterError(
                    f"DASK_SCHEDULER: the scheduler at {self.address} has no workers "
                    f"(waited {WORKER_WAIT_SECONDS + time.monotonic() - t0:.0f} s)"
                ) from None
            self.count = len(self.client.scheduler_info().get("workers", {}))
        try:
            check_cluster(self.client, self.address)
        except BaseException:
            self.client.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.client is not None:
            self.client.close()

    def run(self, jobs: Iterable[ShardJob], on_result: OnResult, on_progress: OnProgress) -> None:  # noqa: ARG002
        from distributed import as_completed

        source: Iterator[ShardJob] = iter(jobs)
        in_flight = max(2, 2 * len(self.client.scheduler_info().get("workers", {})))
        numbers: dict[str, int] = {}
        done = as_completed(loop=self.client.loop)

        def submit() -> bool:
            job = next(source, None)
            if job is None:
                return False
            # The shard travels inside its task (not scattered): the scheduler holds it, so a
            # lost worker's tasks can run again elsewhere; retries cover a failing worker.
            future = self.client.submit(
                _dask_job, job, retries=2, pure=False, key=f"cwsc-shard-{job.number}-{id(job):x}"
            )
            numbers[future.key] = job.number
            done.add(future)
            return True

        try:
            for _ in range(in_flight):
                if not submit():
                    break
            for future in done:
                number = numbers.pop(future.key)
                on_result(number, future.result())
                future.release()
                submit()
        except BaseException:
            # Stopped or failed: the cluster stops working for us.
            self.client.cancel(list(done.futures), force=True)
            raise


def open_workers(count: int, shards: int, scheduler: str | None = None):
    """The runner for ``shards`` shards: the Dask cluster at ``scheduler`` when given, else
    ``count`` worker processes (here in this process when one worker or one shard)."""
    if scheduler:
        return DaskCluster(scheduler)
    if count <= 1:
        return InProcess(threads=1)
    if shards <= 1:
        return InProcess(threads=count)
    return ProcessPool(min(count, shards))
