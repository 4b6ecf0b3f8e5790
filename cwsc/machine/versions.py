"""The versions of the backend and the packages it runs on (the info command, model files)."""

from __future__ import annotations

import platform
from importlib import metadata

#: The distributions whose versions are reported, in this order.
DISTRIBUTIONS = (
    "torch",
    "numpy",
    "rasterio",
    "xarray",
    "netCDF4",
    "cftime",
    "matplotlib",
    "dask",
    "distributed",
)


def software_versions() -> dict[str, str | None]:
    """``{"backend": ..., "python": ..., "torch": ..., ...}``; None for a package that is
    not installed. Reads package metadata only: imports none of them."""
    from cwsc import __version__

    versions: dict[str, str | None] = {"backend": __version__, "python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions
