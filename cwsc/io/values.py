"""Values that products use for "no data": found where a file (or a table column) does not
declare them, they would be read as water, temperature or storage capacity.

The lowest piece of the input gate (:mod:`cwsc.io.gate`): every band :class:`cwsc.io.rasters.Raster`
reads passes :func:`refuse_sentinels`, so no reader in the package can skip it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace  # noqa: F401 - for callers deriving a role
from typing import Callable

import numpy as np

from cwsc.errors import InputFileError

#: The fill values of GDAL, NetCDF (9.96921e36 is netCDF's default float fill), CRU, GLEAM,
#: ERA5 exports and spreadsheets; float32's extremes (3.4e38) stand for "no data" too.
SENTINELS = (
    -999.0,
    -9999.0,
    -99999.0,
    -32768.0,
    -3.4028234663852886e38,
    1e20,
    9.969209968386869e36,
    3.4028234663852886e38,
)
#: Every sentinel has at least this magnitude: a cheap first pass finds the candidates.
_SMALLEST = 999.0 * (1 - 1e-6)


def sentinel_mask(data: np.ndarray) -> np.ndarray:
    """True where ``data`` (any shape) holds one of :data:`SENTINELS` (relative tolerance 1e-6,
    so float32 copies of the float64 values match)."""
    data = np.asarray(data)
    with np.errstate(invalid="ignore"):
        candidates = np.abs(data) >= _SMALLEST
    out = np.zeros(data.shape, dtype=bool)
    if not candidates.any():
        return out
    picked = data[candidates].astype(np.float64)
    hit = np.zeros(picked.shape, dtype=bool)
    for value in SENTINELS:
        hit |= np.abs(picked - value) <= 1e-6 * abs(value)
    out[candidates] = hit
    return out


def refuse_sentinels(
    data: np.ndarray,
    where: str,
    option: str,
    row0: int = 0,
    band_of: Callable[[int], int] = lambda i: i + 1,
) -> None:
    """An :class:`~cwsc.errors.InputFileError` when ``data`` ``(bands, rows, cols)`` holds an
    undeclared sentinel: ``where`` names the input ("PRECIPITATION: 'p.tif'"), the message the
    first band (``band_of``: 0-based index to the file's 1-based band), row (after ``row0``)
    and column, the count and how to declare it (``option``: the nodata option, or "")."""
    mask = sentinel_mask(data)
    if not mask.any():
        return
    if mask.ndim == 2:
        mask, data = mask[None], np.asarray(data)[None]
    band, row, col = (int(v[0]) for v in np.nonzero(mask))
    value = float(data[band, row, col])
    cells = int(mask.any(axis=0).sum())
    how = f" or give {option}={value:g}" if option else ""
    raise InputFileError(
        f"{where} holds {value:g} in {cells} cell{'s' if cells != 1 else ''} (first in band "
        f"{band_of(band)}, row {row0 + row + 1}, column {col + 1}), a value products use for no "
        f"data, but the file does not declare it as nodata. Declare it (gdal_translate -a_nodata "
        f"{value:g} in.tif out.tif){how}"
    )


# --------------------------------------------------------------------------------------
# Roles: what each input of a command is, how many bands it has, what values it may hold


SERIES = "series"  # one band (or table row) per month, at least two
MAP = "map"  # a few bands, not dated


@dataclass(frozen=True)
class Role:
    """One kind of input. ``name`` is the parameter that gives it (and the label in every
    message); ``bands``: :data:`SERIES` or :data:`MAP` (at most ``max_bands`` bands, none of
    them dated); ``low``/``high``: the plausible range of one value in ``unit`` after
    conversion (None: not checked), outside which the input is refused; ``nodata_option``: the
    option that declares its nodata."""

    name: str
    what: str
    bands: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    max_bands: int = 0
    nodata_option: str = ""


#: Evidence for the ranges: the wettest month on record is about 9300 mm (Cherrapunji, July
#: 1861); monthly PET stays below about 700 mm (Death Valley); runoff cannot exceed the
#: wettest precipitation; monthly mean air temperatures lie within -75 to 55 degrees C
#: (:data:`cwsc.io.units.PLAUSIBLE_TEMPERATURE_C`); a storage capacity is tens to hundreds of
#: mm (the models bound sc at 1000 mm; other products reach a few thousand); KGE is at most 1.
ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role(
            "PRECIPITATION",
            "precipitation",
            SERIES,
            "mm/month",
            0.0,
            10000.0,
            nodata_option="PRECIPITATION_NODATA",
        ),
        Role(
            "PET", "potential evapotranspiration", SERIES, "mm/month", 0.0, 2000.0, nodata_option="PET_NODATA"
        ),
        Role("RUNOFF", "runoff", SERIES, "mm/month", 0.0, 10000.0, nodata_option="RUNOFF_NODATA"),
        Role(
            "TEMPERATURE",
            "air temperature",
            SERIES,
            "degrees C",
            -75.0,
            55.0,
            nodata_option="TEMPERATURE_NODATA",
        ),
        Role("CWSC", "a CWSC map", MAP, "mm", 0.0, 20000.0, max_bands=8),
        Role("REFERENCE", "a reference CWSC map", MAP, "mm", 0.0, 20000.0, max_bands=8),
        Role("LABELS", "CWSC labels", MAP, "mm", 0.0, 20000.0, max_bands=8),
        Role("KGE", "a KGE raster", MAP, "", None, 1.0 + 1e-6, max_bands=8),
        Role("DETAILS", "calibrate's details raster", MAP, max_bands=1000),
        Role("PREDICTOR", "a predictor", MAP, max_bands=1000),
        Role("TARGET_GRID", "a grid to work on", MAP, max_bands=100000),
    )
}


def role(name: str) -> Role:
    """The :class:`Role` of ``name`` (``REFERENCE_MAPS (x)`` is ``REFERENCE``, ``PREDICTORS (x)``
    ``PREDICTOR``)."""
    key = name.split(" ")[0]
    key = {"REFERENCE_MAPS": "REFERENCE", "PREDICTORS": "PREDICTOR", "SERIES": "RUNOFF"}.get(key, key)
    # An input of no listed role (a command's own raster) gets the checks every input gets.
    return ROLES.get(key) or Role(key, "an input", MAP, max_bands=10**6)


def refuse_implausible(
    data: np.ndarray,
    role: Role,
    where: str,
    unit_text: str = "",
    frozen: bool = True,
    row0: int = 0,
    band_of: Callable[[int], int] = lambda i: i + 1,
) -> None:
    """An :class:`~cwsc.errors.InputFileError` when a value of ``data`` (any shape, in the
    role's unit after conversion; NaN ignored) lies outside the role's plausible range, naming
    ``where``, the value, how many, where the first is (for ``(bands, rows, cols)``: its band
    by ``band_of``, its row after ``row0``, its column) and the likely mistake (Kelvin read as
    Celsius, another unit); for temperature also when every value is below freezing (no rain,
    no melt: the models would see no water; ``frozen=False``: a part of the input, the caller
    checks the whole with :func:`refuse_frozen`)."""
    data = np.asarray(data)
    finite = data[np.isfinite(data)]
    if not finite.size:
        return
    unit = f" {role.unit}" if role.unit else ""
    read_as = (
        f", {unit_text} read as {role.unit}" if unit_text and role.unit and unit_text != role.unit else ""
    )
    for limit, side in ((role.low, "below"), (role.high, "above")):
        if limit is None:
            continue
        with np.errstate(invalid="ignore"):
            bad = data < limit if side == "below" else data > limit
        if not bad.any():
            continue
        value = float(finite.min() if side == "below" else finite.max())
        first = ""
        if data.ndim == 3:
            band, row, col = (int(v[0]) for v in np.nonzero(bad))
            first = f", the first in band {band_of(band)}, row {row0 + row + 1}, column {col + 1}"
        count = int(bad.sum())
        raise InputFileError(
            f"{where} holds {value:.6g} ({count} value{'s' if count != 1 else ''} {side} {limit:g}{unit}"
            f"{read_as}{first}), implausible for {role.what}{_likely(role, finite, side)}"
        )
    if frozen and role.name == "TEMPERATURE" and finite.size >= 12:
        refuse_frozen(float(finite.max()), where)


def refuse_frozen(highest: float, where: str) -> None:
    """Refuse an air temperature whose ``highest`` value (degrees C) is below freezing: every
    month snow, no rain and no melt, so the models would see no water for the whole period."""
    if highest < 0.0:
        raise InputFileError(
            f"{where} is below freezing in every month and cell (at most {highest:.3g} degrees C): no rain "
            "and no melt would reach the models. Is it the right variable, or in another unit? Give "
            "TEMPERATURE_UNITS if the file does not say"
        )


def _likely(role: Role, finite: np.ndarray, side: str) -> str:
    """The likely mistake behind values outside ``role``'s range, as the end of a sentence."""
    median = float(np.median(finite))
    if role.name == "TEMPERATURE" and side == "above" and 150.0 < median < 350.0:
        return f"; its median is {median:.4g}: is it in K? Give TEMPERATURE_UNITS=K if the file does not say"
    if role.name == "TEMPERATURE":
        return "; is it in tenths of a degree, or another variable? Give TEMPERATURE_UNITS if the file does not say"
    if side == "below":
        return "; negative values are not water: declare the file's nodata or give the right file"
    if role.name in ("CWSC", "REFERENCE", "LABELS"):
        return "; is it in another unit, or another kind of map?"
    return f"; is it in another unit (m3/s, 0.1 mm)? Give {role.name}_UNITS if the file does not say"
