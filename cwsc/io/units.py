"""Units of the forcing: read from the files, converted to mm/month with the days of each
month in the file's calendar, and a plausibility check of what comes out.

A unit is parsed into an amount of water per time step: ``mm/month``, ``mm month-1``,
``mm`` or ``kg m-2`` per monthly step (1 kg m-2 of water is 1 mm), ``mm/day``, ``mm d-1``,
``kg m-2 s-1``, ``m`` (per step), ``m/day``, ``cm/month`` and the like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from cwsc.errors import UnitsError

_LENGTH = {
    "mm": 1.0,
    "millimeter": 1.0,
    "millimetre": 1.0,
    "millimeters": 1.0,
    "millimetres": 1.0,
    "cm": 10.0,
    "m": 1000.0,
    "meter": 1000.0,
    "metre": 1000.0,
    "meters": 1000.0,
    "metres": 1000.0,
    "kg m-2": 1.0,
    "kg/m2": 1.0,
    "kg/m^2": 1.0,
    "kg m^-2": 1.0,
    "kgm-2": 1.0,
}
#: seconds in one time unit, or "month"
_TIME = {
    "month": "month",
    "months": "month",
    "mon": "month",
    "mo": "month",
    "day": 86400.0,
    "days": 86400.0,
    "d": 86400.0,
    "hour": 3600.0,
    "h": 3600.0,
    "hr": 3600.0,
    "second": 1.0,
    "seconds": 1.0,
    "s": 1.0,
    "sec": 1.0,
}
#: What the plugin and the command line offer besides "auto".
CHOICES = ("auto", "mm/month", "mm/day", "kg m-2 s-1", "kg m-2", "m/month", "m/day", "m")


@dataclass(frozen=True)
class Unit:
    """``text`` as read; mm per step = ``scale`` x value, x days in the month when
    ``per_day`` (a rate per second is a rate per day times 86400)."""

    text: str
    scale: float
    per_day: bool

    def factors(self, months, calendar: str = "standard") -> np.ndarray:
        """(len(months),) float64 factors to mm/month, one per month."""
        from cwsc.io import months as M

        if not self.per_day:
            return np.full(len(months), self.scale)
        return np.array([self.scale * M.days_in(m, calendar) for m in months], dtype=np.float64)

    @property
    def is_mm_per_month(self) -> bool:
        return self.scale == 1.0 and not self.per_day


MM_PER_MONTH = Unit("mm/month", 1.0, False)


def _normalise(text: str) -> str:
    t = text.strip().lower().replace("**", "").replace("^", "").replace("·", " ")
    t = re.sub(r"\s+", " ", t)
    t = t.replace(" per ", "/")
    t = re.sub(r"(?<=[a-z0-9])\.(?=[a-z])", " ", t)  # "kg.m-2.s-1"
    return t


def parse(text: str, where: str, override: str = "") -> Unit:
    """The unit ``text``; an unknown one is a ``BadInput`` naming it, ``where`` and the
    override parameter."""
    t = _normalise(text)
    for length, scale in sorted(_LENGTH.items(), key=lambda kv: -len(kv[0])):
        if t == length:
            return Unit(text, scale, False)  # an amount per (monthly) step
        for sep in ("/", " "):
            if t.startswith(length + sep):
                rest = t[len(length) + len(sep) :].strip()
                rest = re.sub(r"-1$", "", rest).strip()  # "month-1", "s-1", "d-1"
                if rest in _TIME:
                    per = _TIME[rest]
                    if per == "month":
                        return Unit(text, scale, False)
                    return Unit(text, scale * 86400.0 / per, True)
    hint = f" or give {override} (one of {', '.join(CHOICES[1:])})" if override else ""
    raise UnitsError(
        f"{where}: unknown units '{text}': expected an amount of water per month "
        f"(mm/month), per day (mm/day) or per second (kg m-2 s-1){hint}"
    )


@dataclass(frozen=True)
class Plausibility:
    """Evidence for the thresholds: over the land of the Earth the median monthly
    precipitation of a grid cell is about 40-60 mm and the median PET 60-100 mm (CRU TS,
    GLEAM); the driest deserts stay above a few mm of PET a month. The same water in mm/day
    is 30 times smaller, in kg m-2 s-1 about 2.6 million times smaller."""

    min_median_pet: float = 10.0  # mm/month: below it, "is it mm/day?"
    min_median_precip: float = 3.0  # mm/month
    max_median: float = 2000.0  # mm/month: above it, "is it in another unit?"
    runoff_above_precip_fraction: float = 0.5


PLAUSIBLE = Plausibility()


def plausibility_warnings(
    label: str, path: str, median: float, limits: Plausibility = PLAUSIBLE
) -> list[str]:
    """Warnings for an input whose median monthly value over its cells (mm/month, after
    conversion) is far from what the Earth produces, naming the likely mistake."""
    out = []
    if not np.isfinite(median):
        return out
    low = {"PET": limits.min_median_pet, "PRECIPITATION": limits.min_median_precip}.get(label)
    if low is not None and median < low:
        guess = "mm/day" if median > 0.01 else "kg m-2 s-1"
        out.append(
            f"{label}: '{path}' has a median of {median:.3g} mm/month over its cells, far "
            f"below what the Earth produces (more than {low:g}): is it in {guess}? Give "
            f"{label}_UNITS if the file does not say"
        )
    if median > limits.max_median:
        out.append(
            f"{label}: '{path}' has a median of {median:.3g} mm/month over its cells, far "
            f"above what the Earth produces: is it in another unit (0.1 mm, mm per year)? "
            f"Give {label}_UNITS if the file does not say"
        )
    return out


#: A storage capacity map whose median is below this (mm) and that declares no unit is
#: probably in metres or centimetres (the seed's global map: tens to hundreds of mm).
IMPLAUSIBLE_CWSC_MM = 5.0


def depth_in_mm(values: np.ndarray, units: str, where: str) -> tuple[np.ndarray, list[str], list[str]]:
    """A depth of water (a CWSC map) in mm: converted from the unit the file declares (m, cm,
    mm); with no unit, read as mm. Returns (values in mm, notes for the log, warnings): a
    warning when there is no unit and the values look like metres, or the unit is not a depth."""
    text = _normalise(units or "")
    if not text:
        finite = values[np.isfinite(values)]
        if finite.size and float(np.median(finite)) < IMPLAUSIBLE_CWSC_MM:
            return (
                values,
                [],
                [
                    f"{where} declares no unit and its median is {float(np.median(finite)):g}: "
                    "read as mm, but a storage capacity is tens to hundreds of mm; is the map in metres?"
                ],
            )
        return values, [], []
    scale = _LENGTH.get(text)
    if scale is None:
        return values, [], [f"{where} declares the unit '{units}', not a depth of water: read as mm"]
    if scale == 1.0:
        return values, [], []
    return values * np.float32(scale), [f"{where} is in {units}: converted to mm"], []


#: Temperature units: normalised text -> offset added to reach degrees C.
_TEMPERATURE = {
    "c": 0.0,
    "degc": 0.0,
    "deg c": 0.0,
    "degree c": 0.0,
    "degrees c": 0.0,
    "degree_c": 0.0,
    "degrees_c": 0.0,
    "°c": 0.0,
    "celsius": 0.0,
    "degree_celsius": 0.0,
    "degrees_celsius": 0.0,
    "degrees celsius": 0.0,
    "k": -273.15,
    "kelvin": -273.15,
    "degk": -273.15,
    "deg k": -273.15,
    "degrees_k": -273.15,
    "degree_kelvin": -273.15,
    "degrees_kelvin": -273.15,
}
TEMPERATURE_CHOICES = ("auto", "C", "K")
#: Monthly mean air temperatures outside this range (degrees C) do not occur on Earth.
PLAUSIBLE_TEMPERATURE_C = (-75.0, 55.0)


@dataclass(frozen=True)
class TemperatureUnit:
    """``text`` as read; degrees C = value + ``offset``."""

    text: str
    offset: float

    @property
    def is_celsius(self) -> bool:
        return self.offset == 0.0


CELSIUS = TemperatureUnit("C", 0.0)


def parse_temperature(text: str, where: str, override: str = "") -> TemperatureUnit:
    """A temperature unit (degrees C or K); anything else is a ``UnitsError`` naming
    ``where`` and the override parameter."""
    t = _normalise(text).replace("degree ", "degree_").replace("degrees ", "degrees_")
    for key in (t, t.replace("_", " ")):
        if key in _TEMPERATURE:
            return TemperatureUnit(text, _TEMPERATURE[key])
    hint = f" or give {override} (C or K)" if override else ""
    raise UnitsError(f"{where}: unknown temperature units '{text}': expected degrees C or K{hint}")
