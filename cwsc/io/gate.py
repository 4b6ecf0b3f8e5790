"""The one input gate: every command reads its rasters, NetCDF variables, CWSC maps and the
series table through this module (``tests/cwsc/commands/test_gate_only.py`` fails when a
command opens a file any other way), so no command can skip a check.

What the gate checks, from any source (raster band, NetCDF variable, table column), each
failure an :class:`~cwsc.errors.InputFileError` of one sentence naming the file, band (or
line and column) and what is wrong:

- **undeclared nodata**: -9999, -999, -99999, -32768, 1e20, 9.96921e36, +-3.4e38
  (:mod:`cwsc.io.values`; every read of a :class:`~cwsc.io.rasters.Raster` checks them, and
  the series table checks every cell);
- **band count against the role** (:data:`cwsc.io.values.ROLES`): a forcing has one band per
  month; a map (CWSC, reference, labels, KGE) at most eight bands and no bands of different months (the 360-band
  precipitation file given as the CWSC map is refused);
- **plausible values per variable and unit**, after conversion (mm/month, degrees C, mm):
  Kelvin read as Celsius by value, negative water, a runoff of 1e39, a KGE above 1, an air
  temperature below freezing in every month;
- **one file for two roles** (the same file, or the same NetCDF variable, given as
  precipitation and runoff) refused naming both options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from cwsc.io import rasters as io
from cwsc.io.catchments import SeriesTable
from cwsc.io.catchments import read_series as _read_series
from cwsc.io.forcing import (
    ForcingInput,
    ForcingOptions,
    dated_input,
    forcing_strips,
    open_forcing,
    read_forcing,
)
from cwsc.io.inputs import MapValues, check_bands, check_values, distinct, open_input, read_map

__all__ = [
    "DatedValues",
    "ForcingInput",
    "ForcingOptions",
    "MapValues",
    "check_bands",
    "check_values",
    "distinct",
    "forcing_strips",
    "open_forcing",
    "open_input",
    "read_dated",
    "read_forcing",
    "read_map",
    "read_series",
]


@dataclass
class DatedValues:
    """Every band of a dated raster in its role's unit (mm/month, degrees C): ``data``
    (months, rows, cols) float32, NaN = nodata; ``months`` the month of each band
    (:mod:`cwsc.io.months` numbers)."""

    data: np.ndarray
    months: list[int]
    grid: io.Grid
    notes: list[str] = field(default_factory=list)


def read_dated(
    path: str | os.PathLike, label: str, variable: str | None = None, units: str | None = "auto"
) -> DatedValues:
    """The raster ``path`` of the input ``label`` (``PRECIPITATION``, ``PET``,
    ``TEMPERATURE``), whose bands must say their months, converted (``units``: "auto", the
    file's, or an override) and checked by the gate."""
    from cwsc.errors import InputFileError

    with open_input(path, label, variable) as r:
        if r.months is None:
            raise InputFileError(
                f"{label}: '{os.fspath(path)}' does not say which months its bands are, so they cannot be "
                "paired with other months: give a file with dates (NetCDF time, or YYYY-MM in the band "
                "descriptions)"
            )
        notes: list[str] = []
        inp = dated_input(r, units, notes)
        data = inp.read()
        check_values(data, label, f"{label}: '{os.fspath(path)}'", inp.unit.text)
        return DatedValues(data, list(r.months), r.grid, notes)


def read_series(path: str | os.PathLike, min_months: int | None = None) -> SeriesTable:
    """The series table (:func:`cwsc.io.catchments.read_series`: every cell checked for
    undeclared nodata and plausible values as it is parsed)."""
    if min_months is None:
        return _read_series(path)
    return _read_series(path, min_months)
