"""``python -m cwsc info``: what the backend runs on, so a user can check the set-up."""

from __future__ import annotations

import platform
import sys

from cwsc.errors import BadInput
from cwsc.machine.versions import software_versions
from cwsc.runtime import protocol


def collect_info() -> dict:
    """Interpreter, platform, package versions, CUDA and devices, and the C kernels."""
    versions = software_versions()
    devices = [{"name": "cpu", "kind": "cpu", "threads": None}]
    cuda = {"available": False}
    try:
        import torch

        devices[0]["threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            cuda = {"available": True, "version": torch.version.cuda}
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                devices.append(
                    {
                        "name": f"cuda:{i}",
                        "kind": "cuda",
                        "model": p.name,
                        "memory_gib": round(p.total_memory / 2**30, 1),
                    }
                )
    except ImportError:
        pass
    kernels = {"available": False, "why_not": "torch is missing"}
    try:
        from cwsc.hydro.engines import cpu as cpu_kernels

        kernels = {"available": cpu_kernels.available(), "why_not": cpu_kernels.why_not()}
    except ImportError:
        pass
    return {
        "interpreter": sys.executable,
        "platform": platform.platform(),
        "versions": versions,
        "cuda": cuda,
        "devices": devices,
        "cpu_kernels": kernels,
    }


def info_command(args) -> None:  # noqa: ARG001
    info = collect_info()
    missing = [k for k in ("torch", "numpy", "rasterio", "xarray") if not info["versions"].get(k)]
    if missing:
        raise BadInput(
            f"the backend interpreter {sys.executable} lacks {', '.join(missing)}: "
            "run 'make setup' or point the CWSC provider setting to an "
            "environment that has them"
        )
    protocol.log(f"backend {info['versions']['backend']} on {info['interpreter']}")
    for d in info["devices"]:
        protocol.log(
            f"device {d['name']}: {d.get('model', d['kind'])}"
            + (f", {d['memory_gib']} GiB" if "memory_gib" in d else "")
        )
    k = info["cpu_kernels"]
    protocol.log("calibration on the CPU: " + ("C kernels" if k["available"] else f"torch ({k['why_not']})"))
    protocol.result(outputs={}, metrics=info)
