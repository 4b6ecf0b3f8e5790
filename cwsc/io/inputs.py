"""Opening one input in its role (:data:`cwsc.io.values.ROLES`): the band count, the
nodata option, a map's values; one file for two roles. Part of the input gate
(:mod:`cwsc.io.gate`), below the forcing reader so that it uses the same checks."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cwsc.errors import InputFileError
from cwsc.io import rasters as io
from cwsc.io.values import MAP, SERIES, Role, refuse_implausible, role


def open_input(
    path: str | os.PathLike,
    label: str,
    variable: str | None = None,
    time_dim: str | None = None,
    nodata: float | None = None,
) -> io.Raster:
    """Open ``path`` as the input ``label`` (a parameter name: ``PRECIPITATION``, ``CWSC``,
    ``REFERENCE_MAPS (name)`` ...; its role is :func:`cwsc.io.values.role`) and check its
    band count against the role. Every later read refuses undeclared nodata sentinels."""
    spec = role(label)
    raster = io.open_raster(path, label, variable, time_dim, nodata)
    raster.nodata_option = spec.nodata_option
    try:
        check_bands(raster, spec)
    except BaseException:
        raster.close()
        raise
    return raster


def check_bands(raster: io.Raster, spec: Role) -> None:
    """A series has two or more bands; a map at most ``spec.max_bands`` and no dated bands."""
    where = f"{raster.label}: '{raster.path}'"
    if spec.bands == SERIES and raster.count < 2:
        raise InputFileError(
            f"{where} holds a single month (no time dimension or one band): one band per month is needed"
        )
    # A map's band descriptions may name its period ("KGE (2001-01 to 2010-12)"): only bands
    # of different months make a time series.
    series = bool(raster.months) and len(set(raster.months)) > 1
    if spec.bands == MAP and spec.max_bands <= 8 and (raster.count > spec.max_bands or series):
        dated = ""
        if series:
            from cwsc.io import months as M

            dated = f", dated {M.label(raster.months[0])} to {M.label(raster.months[-1])}"
        raise InputFileError(
            f"{where} has {raster.count} band{'s' if raster.count != 1 else ''}{dated}: {spec.what} has one "
            f"band (at most {spec.max_bands}, not one per month); is it a forcing file given as {raster.label}?"
        )


@dataclass
class MapValues:
    """One band of a map in its role's unit (``values`` (rows, cols) float32, NaN = nodata)
    and what was said while reading it (``notes`` for the log, ``warnings``)."""

    values: np.ndarray
    grid: io.Grid
    units: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_map(path: str | os.PathLike, label: str, band: int = 0) -> MapValues:
    """Band ``band`` (0-based) of the map ``path`` (``label``: ``CWSC``, ``REFERENCE_MAPS (x)``,
    ``LABELS``), a depth of water converted to mm (:func:`cwsc.io.units.depth_in_mm`), checked:
    band count, sentinels, no negative depth and no implausible one."""
    from cwsc.io.units import depth_in_mm

    where = f"{label}: '{os.fspath(path)}'"
    with open_input(path, label) as r:
        data = r.read(bands=[band])[0]
        values, notes, warns = depth_in_mm(data, r.units, where)
        grid, units = r.grid, r.units
    refuse_implausible(values, role(label), where, units)
    return MapValues(values, grid, units, notes, warns)


def check_values(data: np.ndarray, label: str, where: str, unit_text: str = "") -> None:
    """``data`` (any shape, already in the role's unit: mm/month, degrees C, mm) within the
    plausible range of the input ``label``'s role; ``where`` names the file (or table and
    column), ``unit_text`` the unit it was converted from."""
    refuse_implausible(data, role(label), where, unit_text)


def distinct(inputs: Mapping[str, str | os.PathLike | Sequence | None]) -> None:
    """Refuse one file given for two roles. ``inputs``: option name -> a path, a list of paths,
    or ``(path, variable)`` for a NetCDF variable (two variables of one NetCDF file are two
    inputs). Paths are compared as files (symbolic and hard links, ``./`` and ``..`` see
    through)."""
    seen: dict[tuple[int, int], list[tuple[str | None, str]]] = {}
    for name, value in inputs.items():
        for item in value if isinstance(value, list) else [value]:
            path, variable = item if isinstance(item, tuple) else (item, None)
            if path in (None, ""):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # a missing file is named by its reader
            key = (st.st_dev, st.st_ino)
            for other_variable, other in seen.get(key, []):
                if other != name and (
                    variable is None or other_variable is None or variable == other_variable
                ):
                    raise InputFileError(
                        f"{name}: '{os.fspath(path)}' is also given as {other}: one file cannot be both "
                        "(give each input its own file, or another NetCDF variable)"
                    )
            seen.setdefault(key, []).append((variable, name))
