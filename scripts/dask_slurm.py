"""Start a Dask scheduler and CWSC workers on a SLURM cluster, and keep them up.

    python scripts/dask_slurm.py --jobs 4 --cores 32 --memory 64GB --walltime 04:00:00 \
        [--queue normal] [--account proj] [--address-file cwsc-dask.txt]

Run it with the Python of an environment where the package is installed with its cluster
extra (``pip install "cwsc[cluster]"``, or ``pip install ".[cluster]"`` in a clone), on a login
node or in a small job of its own. It submits ``--jobs`` SLURM jobs, each running ``--cores``
single-threaded Dask workers (one per core, as the calibration wants), and prints the
scheduler's address, also written to ``--address-file``. Give that address to the calibrate
command (``--dask-scheduler``, the ``DASK_SCHEDULER`` parameter or the provider setting).
Stop it with Ctrl-C: the jobs end.

The scheduler (in this process) and the workers need only that environment: no
``PYTHONPATH``. The workers receive each shard's forcing with its task, so they need no access
to the input files; on the compute nodes they run the Python given by ``--python`` (default
this one). A run checks that the scheduler and every worker import the same version of the
package before it sends any work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="SLURM jobs (nodes) to start")
    parser.add_argument("--cores", type=int, required=True, help="cores per job: one worker each")
    parser.add_argument("--memory", required=True, help="memory per job, e.g. 64GB")
    parser.add_argument("--walltime", default="04:00:00")
    parser.add_argument("--queue", default=None)
    parser.add_argument("--account", default=None)
    parser.add_argument(
        "--python", default=sys.executable, help="the backend environment's Python on the compute nodes"
    )
    parser.add_argument("--address-file", default="cwsc-dask-scheduler.txt")
    args = parser.parse_args(argv)

    try:
        import cwsc
    except ImportError:
        parser.error("the cwsc package is not installed in this environment (pip install 'cwsc[cluster]')")
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        parser.error("dask-jobqueue is not installed in this environment (pip install dask-jobqueue)")
    from distributed import Client

    cluster = SLURMCluster(
        cores=args.cores,
        processes=args.cores,
        memory=args.memory,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        python=args.python,
        job_script_prologue=["export OMP_NUM_THREADS=1"],
    )
    cluster.scale(jobs=args.jobs)
    Path(args.address_file).write_text(cluster.scheduler_address + "\n")
    print(f"scheduler: {cluster.scheduler_address} (also in {args.address_file}); cwsc {cwsc.__version__}")
    print(cluster.job_script())
    client = Client(cluster)
    try:
        while True:
            workers = len(client.scheduler_info().get("workers", {}))
            print(f"{time.strftime('%H:%M:%S')} {workers} workers connected", flush=True)
            time.sleep(60)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
