"""Reading the three forcings of a calibration: precipitation, PET and runoff.

Used by the calibrate and evaluate commands, with the same checks for both, each failure a
``BadInput`` naming the file:

- **time**: each input's months from the file (:mod:`cwsc.io.months`), aligned on their
  common months (or paired by position when none says, or from ``*_START``), restricted to
  ``PERIOD_START`` / ``PERIOD_END``; a missing runoff month reads as nodata;
- **units**: from the file (or ``*_UNITS``), converted to mm/month with the days of each
  month in the file's calendar (:mod:`cwsc.io.units`), with a plausibility warning;
- **space**: one grid for the three (longitudes, axis order and CRS already read by
  :mod:`cwsc.io.rasters`);
- **values**: no negative value, no undeclared nodata sentinel such as -9999, some runoff.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np

from cwsc.errors import InputFileError
from cwsc.io import months as M
from cwsc.io import rasters as io
from cwsc.io import units as U
from cwsc.io import values as _values
from cwsc.io.inputs import distinct, open_input

log = logging.getLogger(__name__)


LABELS = ("PRECIPITATION", "PET", "RUNOFF")
#: The optional fourth input: monthly mean air temperature (degrees C after conversion).
TEMPERATURE = "TEMPERATURE"

#: Memory for one strip of the three forcings (bytes). Reading costs several times a strip
#: (GDAL's decompressed tiles, the arrays, their masks): 48 MiB kept the global 0.5 degree
#: case under 1 GB where 128 MiB did not (benchmarks/bench_global.py).
STRIP_BUDGET = 48 * 2**20


def forcing_strips(grid: io.Grid, months: int) -> list[slice]:
    """The strips (rows) in which the three forcings of ``months`` months are read."""
    return list(io.row_strips(grid.height, grid.width, 3 * months, budget_bytes=STRIP_BUDGET))


#: Values that products use for "no data" (kept here for older imports; the gate's list).
SENTINELS = _values.SENTINELS
#: Override parameters, by input.
NODATA_PARAMETERS = {
    "PRECIPITATION": "PRECIPITATION_NODATA",
    "PET": "PET_NODATA",
    "RUNOFF": "RUNOFF_NODATA",
    "TEMPERATURE": "TEMPERATURE_NODATA",
}


@dataclass
class ForcingOptions:
    """How to read the three forcings; every field by input label (``PRECIPITATION``,
    ``PET``, ``RUNOFF``) where it is per input."""

    variables: dict[str, str | None] = field(default_factory=dict)  # NetCDF variable
    time_dim: str | None = None
    nodata: dict[str, float | None] = field(default_factory=dict)  # read as nodata
    units: dict[str, str | None] = field(default_factory=dict)  # "auto" or a unit
    starts: dict[str, int | None] = field(default_factory=dict)  # first month of undated
    period_start: int | None = None
    period_end: int | None = None
    extent: str | None = None  # "xmin,xmax,ymin,ymax [CRS]": a window of the grid


@dataclass
class ForcingInput:
    """One forcing on the common months, in mm/month (temperature: degrees C): ``read``
    returns (months, rows, cols) float32, NaN for nodata and for months the file lacks."""

    raster: io.Raster
    bands: list[int | None]  # the file band of each common month
    factors: np.ndarray  # (months,) to mm/month
    unit: U.Unit | U.TemperatureUnit
    offset: float = 0.0  # added after the factor (K to degrees C)

    @property
    def label(self) -> str:
        return self.raster.label

    @property
    def path(self) -> str:
        return self.raster.path

    @property
    def grid(self) -> io.Grid:
        return self.raster.grid

    @property
    def count(self) -> int:
        return len(self.bands)

    def _identity(self) -> bool:
        return (
            self.bands == list(range(self.raster.count))
            and bool(np.all(self.factors == 1.0))
            and self.offset == 0.0
        )

    def read(self, rows: slice | None = None, raw: bool = False) -> np.ndarray:
        """The strip ``rows`` in mm/month (``raw``: the file's values, unconverted)."""
        if self._identity():
            return self.raster.read(rows)
        rows = rows or slice(0, self.grid.height)
        height = min(rows.stop, self.grid.height) - (rows.start or 0)
        present = [b for b in self.bands if b is not None]
        data = self.raster.read(rows, bands=present) if present else None
        out = np.full((len(self.bands), height, self.grid.width), np.nan, np.float32)
        k = 0
        for i, b in enumerate(self.bands):
            if b is not None:
                out[i] = data[k] if raw else data[k] * np.float32(self.factors[i])
                if self.offset and not raw:
                    out[i] += np.float32(self.offset)
                k += 1
        return out

    def file_band(self, index: int) -> int:
        """The 1-based file band of common month ``index``."""
        b = self.bands[index]
        return (b if b is not None else index) + 1

    def close(self) -> None:
        self.raster.close()


def _unit_words(r: ForcingInput) -> str:
    """The unit ``r`` was converted from, in words for a message ("no unit": assumed)."""
    return "no unit" if r.unit is U.CELSIUS or r.unit is U.MM_PER_MONTH else r.unit.text


def _first(mask: np.ndarray, row0: int) -> tuple[int, int, int]:
    """(index, row, column) of the first True of a (bands, rows, cols) mask; index 0-based,
    row and column 1-based."""
    band, row, col = (int(v[0]) for v in np.nonzero(mask))
    return band, row0 + row + 1, col + 1


def _check_values(inputs: list[ForcingInput], strips: list[slice], runoff: bool = True) -> list[str]:
    """Refused before any work, naming the file, the count and the first cell and month:
    undeclared nodata sentinels, negative values, an all-nodata runoff. Returns the
    plausibility warnings of the converted values. ``runoff``: the inputs are the three
    forcings on one grid (runoff is required and compared with precipitation)."""
    runoff_seen = runoff_flows = False
    negative = {r.label: 0 for r in inputs}
    first_negative: dict[str, tuple] = {}
    means = {r.label: [] for r in inputs}
    q_above_p, both = 0, 0
    for rows in strips:
        converted = {}
        for r in inputs:
            raw = r.read(rows, raw=True)
            with np.errstate(invalid="ignore"):
                below = raw < 0
            if below.any():
                negative[r.label] += int(below.sum())
                if r.label not in first_negative:
                    index, row, col = _first(below, rows.start)
                    first_negative[r.label] = (
                        r.file_band(index),
                        row,
                        col,
                        float(raw[index, row - rows.start - 1, col - 1]),
                    )
            data = raw if r._identity() else raw * r.factors.astype(np.float32)[:, None, None]
            converted[r.label] = data
            with np.errstate(invalid="ignore"):
                # negative values are counted and named below, with their count
                _values.refuse_implausible(
                    np.where(data < 0, np.nan, data),
                    _values.ROLES[r.label],
                    f"{r.label}: '{r.path}'",
                    _unit_words(r),
                    row0=rows.start or 0,
                    band_of=r.file_band,
                )
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells
                cell_mean = np.nanmean(data, axis=0)
            means[r.label].append(cell_mean[np.isfinite(cell_mean)])
            if r.label == "RUNOFF" and np.isfinite(data).any():
                runoff_seen = True
                with np.errstate(invalid="ignore"):
                    runoff_flows = runoff_flows or bool((data > 0).any())
        if "PRECIPITATION" in converted and "RUNOFF" in converted:
            p, q = converted["PRECIPITATION"], converted["RUNOFF"]
            ok = np.isfinite(p) & np.isfinite(q)
            has = ok.any(axis=0)
            sp, sq = np.where(ok, p, 0).sum(0), np.where(ok, q, 0).sum(0)
            both += int(has.sum())
            q_above_p += int((has & (sq > sp)).sum())
    for r in inputs:
        if r.label in first_negative:
            band, row, col, value = first_negative[r.label]
            raise InputFileError(
                f"{r.label}: '{r.path}' has {negative[r.label]} negative values (first "
                f"in band {band}, row {row}, column {col}: {value:g}); expected "
                "mm/month >= 0"
            )
    if runoff and not runoff_seen:
        raise InputFileError(f"RUNOFF: '{inputs[2].path}' is all nodata: nothing to calibrate on")
    if runoff and not runoff_flows:
        raise InputFileError(
            f"RUNOFF: '{inputs[2].path}' is 0 in every cell and month: nothing to calibrate on "
            "(is it the right file, variable or units?)"
        )
    found = []
    for r in inputs:
        values = np.concatenate(means[r.label]) if means[r.label] else np.empty(0)
        if values.size:
            found += U.plausibility_warnings(r.label, r.path, float(np.median(values)))
    line = runoff_above_precipitation(q_above_p, both)
    return found + ([line] if line else [])


def _check_temperature(r: ForcingInput, strips: list[slice]) -> None:
    """Refused naming the file, band and cell: an undeclared nodata sentinel, or a value that
    is no monthly mean air temperature in degrees C after conversion (a file in K read as C
    or the reverse, tenths of a degree)."""
    highest = -np.inf
    for rows in strips:
        data = r.read(rows)
        _values.refuse_implausible(
            data,
            _values.ROLES[r.label],
            f"{r.label}: '{r.path}'",
            _unit_words(r),
            frozen=False,
            row0=rows.start or 0,
            band_of=r.file_band,
        )
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            highest = max(highest, float(np.nanmax(data)) if np.isfinite(data).any() else -np.inf)
    if np.isfinite(highest):
        _values.refuse_frozen(highest, f"{r.label}: '{r.path}'")


def temperature_unit(raster: io.Raster, override: str | None, notes: list[str]) -> U.TemperatureUnit:
    option = f"{raster.label}_UNITS"
    if override and override.strip().lower() != "auto":
        return U.parse_temperature(override, option)
    if not raster.units:
        notes.append(f"{raster.label}: '{raster.path}' declares no units: read as degrees C")
        return U.CELSIUS
    return U.parse_temperature(raster.units, f"{raster.label}: '{raster.path}'", option)


def dated_input(raster: io.Raster, override: str | None, notes: list[str]) -> ForcingInput:
    """Every band of a dated raster as a :class:`ForcingInput` in mm/month (degrees C when its
    label is ``TEMPERATURE``), its units from the file or ``override`` ("auto": the file's);
    for readers that pair months themselves (evaluate-catchments)."""
    bands = list(range(raster.count))
    if raster.label == TEMPERATURE:
        unit = temperature_unit(raster, override, notes)
        return ForcingInput(raster, bands, np.ones(raster.count), unit, unit.offset)
    unit = water_unit(raster, override, notes)
    return ForcingInput(raster, bands, unit.factors(raster.months, raster.calendar), unit)


def runoff_above_precipitation(above: int, cells: int) -> str | None:
    """The warning when in more than a plausible share of ``cells`` the runoff of the whole
    period (``above`` of them) exceeds the precipitation; None otherwise."""
    if not cells or above / cells <= U.PLAUSIBLE.runoff_above_precip_fraction:
        return None
    return (
        f"RUNOFF: in {100 * above / cells:.0f} % of the cells the runoff of "
        f"the whole period exceeds its precipitation: is RUNOFF (or "
        "PRECIPITATION) in another unit? Give RUNOFF_UNITS / PRECIPITATION_UNITS "
        "if the files do not say"
    )


def water_unit(raster: io.Raster, override: str | None, notes: list[str]) -> U.Unit:
    option = f"{raster.label}_UNITS"
    if override and override.strip().lower() != "auto":
        return U.parse(override, f"{option}", "")
    if not raster.units:
        notes.append(f"{raster.label}: '{raster.path}' declares no units: read as mm/month")
        return U.MM_PER_MONTH
    return U.parse(raster.units, f"{raster.label}: '{raster.path}'", option)


def open_forcing(
    precip: str,
    pet: str,
    runoff: str,
    options: ForcingOptions | None = None,
    same_grid: bool = True,
    temperature: str | None = None,
) -> tuple[list[ForcingInput], M.Alignment]:
    """Open P, PET and Q (and air temperature when given), align them on their common months
    in mm/month (temperature in degrees C) and check them (one grid unless not
    ``same_grid``, no negative water, plausible temperatures, no undeclared nodata sentinel,
    some runoff): a ``BadInput`` naming the file otherwise. Logs what was read and assumed.
    Returns the inputs in the order P, PET, Q[, T]; the caller closes them."""

    options = options or ForcingOptions()
    rasters: list[io.Raster] = []
    labels = LABELS + ((TEMPERATURE,) if temperature else ())
    try:
        distinct(
            {
                label: (path, options.variables.get(label))
                for label, path in zip(labels, (precip, pet, runoff, temperature))
            }
        )
        for label, path in zip(labels, (precip, pet, runoff, temperature)):
            rasters.append(
                open_input(
                    path, label, options.variables.get(label), options.time_dim, options.nodata.get(label)
                )
            )
        if same_grid:
            grid = io.check_same_grid(rasters)
            if options.extent:
                window = io.cut_grid(grid, io.parse_extent(options.extent, grid))
                for r in rasters:
                    r.window(window)
        notes = [n for r in rasters for n in r.notes]
        axes, counts, paths = {}, {}, {}
        for r in rasters:
            start = options.starts.get(r.label)
            months = r.months
            source = "the file"
            if start is not None:
                months, source = [start + i for i in range(r.count)], f"{r.label}_START"
            axes[r.label] = M.Axis(months, r.calendar, source)
            counts[r.label], paths[r.label] = r.count, r.path
        alignment = M.align(axes, counts, paths, options.period_start, options.period_end)
        inputs = []
        for r in rasters:
            if r.label == TEMPERATURE:
                t_unit = temperature_unit(r, options.units.get(r.label), notes)
                if not t_unit.is_celsius:
                    notes.append(f"{r.label}: '{r.path}' in {t_unit.text}, converted to degrees C")
                ones = np.ones(len(alignment.bands[r.label]))
                inputs.append(ForcingInput(r, alignment.bands[r.label], ones, t_unit, t_unit.offset))
                continue
            unit = water_unit(r, options.units.get(r.label), notes)
            common = alignment.months if alignment.months is not None else []
            factors = (
                unit.factors(common, r.calendar)
                if alignment.months is not None
                else np.full(len(alignment.bands[r.label]), unit.scale * (30.4375 if unit.per_day else 1.0))
            )
            if alignment.months is None and unit.per_day:
                notes.append(
                    f"{r.label}: '{r.path}' is in {unit.text} but its months are not "
                    "known: converted with 30.44 days a month"
                )
            if not unit.is_mm_per_month:
                notes.append(f"{r.label}: '{r.path}' in {unit.text}, converted to mm/month")
            inputs.append(ForcingInput(r, alignment.bands[r.label], factors, unit))
        water = [r for r in inputs if r.label != TEMPERATURE]
        if same_grid:
            found = _check_values(water, forcing_strips(inputs[0].grid, inputs[0].count))
        else:
            found = [
                w for r in water for w in _check_values([r], forcing_strips(r.grid, r.count), runoff=False)
            ]
        for r in inputs:
            if r.label == TEMPERATURE:
                _check_temperature(r, forcing_strips(r.grid, r.count))
    except BaseException:
        for r in rasters:
            r.close()
        raise
    if alignment.months is not None:
        log.info(f"period used: {M.period(alignment.months)}")
    for line in alignment.notes + notes:
        log.info(line)
    for line in found:
        log.warning(line)
    return inputs, alignment


def read_forcing(
    precip: str, pet: str, runoff: str, options: ForcingOptions | None = None, temperature: str | None = None
):
    """(precip, pet, runoff, grid, alignment, temperature): the checked forcing as (months,
    rows, cols) float32 arrays in mm/month (NaN = nodata; temperature in degrees C, None when
    not given), for commands that need it whole (evaluate)."""
    inputs, alignment = open_forcing(precip, pet, runoff, options, temperature=temperature)
    try:
        p, e, q = (r.read() for r in inputs[:3])
        t = inputs[3].read() if temperature else None
        return p, e, q, inputs[0].grid, alignment, t
    finally:
        for r in inputs:
            r.close()
