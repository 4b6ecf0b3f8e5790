"""Months: what each band of a forcing file stands for, read from the file, and how the three
forcings are aligned on their common months.

A month is an integer, ``year * 12 + (month - 1)``, so consecutive months differ by one and
``label(m)`` is ``"YYYY-MM"``. Files say their months through:

- CF time coordinates in any calendar (decoded with cftime), mid-month or start-of-month
  stamps alike;
- GDAL's NetCDF band metadata (``NETCDF_DIM_time`` with the dataset's ``time#units`` and
  ``time#calendar``), as in a GeoTIFF translated from NetCDF;
- band descriptions or band metadata holding a date (``2001-01``, ``200101``, an ISO date).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cwsc.errors import PeriodError

_DATE = re.compile(r"(?<!\d)(1[89]\d\d|2[01]\d\d)-(0[1-9]|1[0-2])(?:-\d\d)?(?:[T ][\d:.]+Z?)?(?!\d)")
_COMPACT = re.compile(r"(?<!\d)(1[89]\d\d|2[01]\d\d)(0[1-9]|1[0-2])(?!\d)")
#: Calendars whose years all have 365 (or 366, 360) days.
_FIXED = {"noleap": 365, "365_day": 365, "all_leap": 366, "366_day": 366, "360_day": 360}
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def month(year: int, month_of_year: int) -> int:
    return int(year) * 12 + int(month_of_year) - 1


def label(m: int) -> str:
    """``"YYYY-MM"`` of month ``m``."""
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def period(months: Sequence[int]) -> str:
    """``"2001-01 to 2010-12 (120 months)"``."""
    if len(months) == 0:
        return "no month"
    return f"{label(months[0])} to {label(months[-1])} ({len(months)} months)"


def parse(text: str, name: str) -> int:
    """A month given by the user (``YYYY-MM``, ``YYYYMM`` or an ISO date), for the parameter
    ``name``; anything else is a ``BadInput``."""
    text = str(text).strip()
    found = _DATE.fullmatch(text) or _COMPACT.fullmatch(text)
    if not found:
        raise PeriodError(f"{name}: '{text}' is not a month; give it as YYYY-MM (for example 2001-01)")
    return month(int(found.group(1)), int(found.group(2)))


def from_text(text: str | None) -> int | None:
    """The month a band description names, or None."""
    if not text:
        return None
    found = _DATE.search(text) or _COMPACT.search(text)
    return month(int(found.group(1)), int(found.group(2))) if found else None


def days_in(m: int, calendar: str = "standard") -> int:
    """Days of month ``m`` in ``calendar`` (CF names)."""
    calendar = (calendar or "standard").lower()
    if calendar == "360_day":
        return 30
    year, index = m // 12, m % 12
    if index != 1:
        return _DAYS[index]
    if calendar in ("noleap", "365_day"):
        return 28
    if calendar in ("all_leap", "366_day"):
        return 29
    if calendar == "julian":
        return 29 if year % 4 == 0 else 28
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if calendar in ("standard", "gregorian") and year < 1583:
        leap = year % 4 == 0
    return 29 if leap else 28


def from_cf(values, units: str, calendar: str, where: str) -> list[int]:
    """Months of CF time ``values`` with ``units`` (``days since 1900-1-1`` ...) in
    ``calendar``; a coordinate that cannot be decoded is a ``BadInput`` naming ``where``."""
    import cftime

    try:
        dates = cftime.num2date(
            np.asarray(values, dtype=float),
            units,
            calendar=calendar or "standard",
            only_use_cftime_datetimes=True,
        )
    except Exception as exc:  # noqa: BLE001 - every decoding failure means the same to a user
        raise PeriodError(
            f"{where}: the time coordinate cannot be decoded (units '{units}', "
            f"calendar '{calendar or 'standard'}': {exc})"
        ) from None
    return [month(d.year, d.month) for d in np.atleast_1d(dates)]


@dataclass
class Axis:
    """The months of one input's bands: ``months[i]`` is the month of band ``i`` (None when the
    file does not say), ``calendar`` the calendar of its days, ``source`` how it was read."""

    months: list[int] | None
    calendar: str = "standard"
    source: str = ""

    def check(self, where: str, gaps_allowed: bool) -> None:
        """Monthly steps, no duplicate; a missing month inside the span refused unless
        ``gaps_allowed`` (runoff: a missing month is like nodata)."""
        if self.months is None or len(self.months) < 2:
            return
        steps = np.diff(self.months)
        if (steps <= 0).any():
            i = int(np.nonzero(steps <= 0)[0][0])
            kind = "duplicate" if steps[i] == 0 else "out-of-order"
            raise PeriodError(
                f"{where}: {kind} time steps: band {i + 2} is {label(self.months[i + 1])}"
                f" after band {i + 1} ({label(self.months[i])}); one band per month, "
                "in order, is needed"
            )
        if (steps > 1).any() and not gaps_allowed:
            i = int(np.nonzero(steps > 1)[0][0])
            raise PeriodError(
                f"{where}: months are missing between {label(self.months[i])} and "
                f"{label(self.months[i + 1])} (band {i + 1} to {i + 2}); "
                "precipitation and PET need every month"
            )


@dataclass
class Alignment:
    """The common months of the inputs and, per input, the band of each (None: missing)."""

    months: list[int] | None  # None: undated inputs paired by position
    bands: dict[str, list[int | None]]
    notes: list[str]


def align(
    axes: dict[str, Axis],
    counts: dict[str, int],
    paths: dict[str, str],
    start: int | None = None,
    end: int | None = None,
    gaps_allowed: Sequence[str] = ("RUNOFF",),
) -> Alignment:
    """Align the inputs (label -> axis, band count, path) on their common months.

    All undated: paired by position (the counts must agree). An undated input beside dated
    ones is a ``BadInput`` (give its first month). ``start``/``end`` restrict the period.
    """
    for key, axis in axes.items():
        axis.check(f"{key}: '{paths[key]}'", key in gaps_allowed)
    dated = {k: a for k, a in axes.items() if a.months is not None}
    if not dated:
        first = next(iter(counts))
        for key, n in counts.items():
            if n != counts[first]:
                raise PeriodError(
                    f"{key}: '{paths[key]}' has {n} months (bands) but {first} "
                    f"'{paths[first]}' has {counts[first]}, and no file says which "
                    "months its bands are: give the first month of each "
                    "(PRECIPITATION_START, PET_START, RUNOFF_START)"
                )
        n = counts[first]
        if start is not None or end is not None:
            raise PeriodError(
                "PERIOD_START / PERIOD_END: the inputs have no dates; give the first "
                "month of each (PRECIPITATION_START, PET_START, RUNOFF_START)"
            )
        return Alignment(
            None,
            {k: list(range(n)) for k in counts},
            [f"no input says which months its bands are: paired by position ({n} months)"],
        )
    undated = [k for k in axes if axes[k].months is None]
    if undated:
        k = undated[0]
        option = {"PRECIPITATION": "PRECIPITATION_START", "PET": "PET_START", "RUNOFF": "RUNOFF_START"}.get(
            k, f"{k}_START"
        )
        others = ", ".join(f"{o} {period(a.months)}" for o, a in dated.items())
        raise PeriodError(
            f"{k}: '{paths[k]}' does not say which months its bands are, but {others} "
            f"do; give its first month as {option} (YYYY-MM)"
        )
    lo = max(a.months[0] for a in dated.values())
    hi = min(a.months[-1] for a in dated.values())
    if start is not None:
        lo = max(lo, start)
    if end is not None:
        hi = min(hi, end)
    if hi < lo:
        spans = "; ".join(f"{k} {period(a.months)}" for k, a in dated.items())
        limit = ""
        if start is not None or end is not None:
            limit = (
                f", within PERIOD_START {label(start) if start is not None else '-'} to "
                f"PERIOD_END {label(end) if end is not None else '-'}"
            )
        raise PeriodError(f"the inputs have no month in common{limit}: {spans}")
    common = list(range(lo, hi + 1))
    bands, notes = {}, []
    for key, axis in dated.items():
        where = {m: i for i, m in enumerate(axis.months)}
        bands[key] = [where.get(m) for m in common]
        dropped = len(axis.months) - sum(b is not None for b in bands[key])
        missing = sum(b is None for b in bands[key])
        line = f"{key}: {period(axis.months)}"
        if dropped:
            line += f", {dropped} months outside the common period not used"
        if missing:
            line += f", {missing} months missing inside it (read as nodata)"
        notes.append(line)
    return Alignment(common, bands, notes)
