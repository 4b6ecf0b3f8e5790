"""``python -m benchmarks [name ...]``: run every ``bench_*`` module (or the ones named).

``python -m benchmarks real_map --case DIR ...``: a benchmark that takes its own options
(:data:`WITH_OPTIONS`; never run by the plain form, it needs data the repository does not hold).

Figures are printed as ratios against a baseline measured in the same run, because the
machine is shared and noisy. ``CWSC_BENCH_QUICK=1`` shrinks every benchmark.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

#: Benchmarks with their own command line: ``python -m benchmarks NAME OPTIONS``.
WITH_OPTIONS = {"real_map": "benchmarks.real_map"}


def main(argv: list[str]) -> int:
    if argv and argv[0] in WITH_OPTIONS:
        return importlib.import_module(WITH_OPTIONS[argv[0]]).main(argv[1:])
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
            failed.append(name)
            print(f"{name} failed: {type(exc).__name__}: {exc}", flush=True)
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
