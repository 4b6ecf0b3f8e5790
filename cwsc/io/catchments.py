"""Gauged catchments at the edges: runoff series in, per-catchment tables out; the polygons
are :mod:`cwsc.io.polygons` (its names are importable from here too).

- :func:`read_series` reads a CSV of monthly series per catchment (``id``, ``month``,
  ``runoff``, optionally ``precipitation``, ``pet``, ``temperature``);
- :func:`match_ids` pairs the polygons of :func:`~cwsc.io.polygons.read_catchments` with them;
- :func:`runoff_in_mm` converts gauged runoff to mm/month;
- :func:`write_catchments` / :func:`write_table` write the results.

A problem of the whole file is a :class:`~cwsc.errors.BadInput` naming the file (and line,
field, id). A problem of one catchment is a :class:`~cwsc.io.polygons.NotScored` returned
beside the good records, so that the caller lists every catchment it does not score with its
reason.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from cwsc.errors import BadInput, InputFileError, OutputRefused, ParameterError, UnitsError
from cwsc.io import months as M
from cwsc.io import values as _values

# The polygons live in cwsc.io.polygons; their names stay importable from here (__all__).
from cwsc.io.polygons import (
    WGS84_A,
    WGS84_E2,
    CatchmentShape,
    CellCover,
    NotScored,
    area_km2,
    cell_fractions,
    cell_km2,
    cover_catchments,
    quadrangle_km2,
    read_catchments,
    split_source,
    weighted_mean,
    weighted_spread,
)

__all__ = [
    "MIN_MONTHS",
    "RUNOFF_UNITS",
    "VARIABLES",
    "WGS84_A",
    "WGS84_E2",
    "CatchmentShape",
    "CellCover",
    "NotScored",
    "Series",
    "SeriesTable",
    "area_km2",
    "cell_fractions",
    "cell_km2",
    "cover_catchments",
    "match_ids",
    "quadrangle_km2",
    "read_catchments",
    "read_series",
    "runoff_in_mm",
    "split_source",
    "weighted_mean",
    "weighted_spread",
    "write_catchments",
    "write_table",
]

log = logging.getLogger(__name__)

#: Fewest months with a runoff value for a catchment to be scored.
MIN_MONTHS = 24
#: The variables of a series table besides ``id`` and ``month`` (``runoff`` is required).
VARIABLES = ("runoff", "precipitation", "pet", "temperature")
#: The runoff units :func:`runoff_in_mm` accepts.
RUNOFF_UNITS = ("mm/month", "mm/day", "m3/s")
_UNIT_ALIASES = {
    "mm/month": "mm/month",
    "mm month-1": "mm/month",
    "mm mon-1": "mm/month",
    "mm/mon": "mm/month",
    "mm/day": "mm/day",
    "mm/d": "mm/day",
    "mm day-1": "mm/day",
    "mm d-1": "mm/day",
    "m3/s": "m3/s",
    "m3 s-1": "m3/s",
    "m^3/s": "m3/s",
    "m**3/s": "m3/s",
    "m³/s": "m3/s",
    "cumecs": "m3/s",
}
#: Cell text read as a missing value (besides the empty cell).
_MISSING = {"", "na", "nan", "null", "none"}
_FIELD_TYPES = ("str", "int", "float")


def _some(items: Sequence[Any], n: int = 10) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _crs(wkt: str):
    from fiona.crs import CRS

    return CRS.from_user_input(wkt)


def _same_crs(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return _crs(a) == _crs(b)
    except Exception:  # noqa: BLE001
        return False


# --------------------------------------------------------------------------------------
# Series in


@dataclass
class Series:
    """The monthly series of one catchment: ``months`` ("YYYY-MM", sorted, not necessarily
    consecutive), and per month ``runoff`` and, when the table has them, ``precipitation``,
    ``pet``, ``temperature`` (float64 ``(months,)``, NaN where the cell was empty; None when
    the table has no such column). Units are the table's own (see :func:`runoff_in_mm`).
    ``gaps`` lists the runs of months missing inside the span (``"2001-04 to 2001-06"``)."""

    id: str
    months: list[str]
    runoff: np.ndarray
    precipitation: np.ndarray | None = None
    pet: np.ndarray | None = None
    temperature: np.ndarray | None = None
    gaps: list[str] = field(default_factory=list)

    @property
    def month_numbers(self) -> list[int]:
        """The months as :mod:`cwsc.io.months` integers (``year * 12 + month - 1``)."""
        return [M.parse(m, "month") for m in self.months]


@dataclass
class SeriesTable:
    """A series table read by :func:`read_series`: the file, the variables it has (of
    :data:`VARIABLES`), the good series by id, and the ids not scored with their reasons."""

    path: str
    variables: list[str]
    series: dict[str, Series]
    problems: list[NotScored] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """Every id of the table: the good ones, then those with problems."""
        return list(self.series) + [p.id for p in self.problems if p.id not in self.series]


#: The roles of the table's columns for the input gate; runoff is checked in its own unit
#: (mm/month, mm/day or m3/s: the Amazon's mean discharge is about 2e5 m3/s) and again in
#: mm/month once converted.
_COLUMN_ROLES = {
    "runoff": _values.replace(_values.ROLES["RUNOFF"], unit="", high=1e6),
    "precipitation": _values.ROLES["PRECIPITATION"],
    "pet": _values.ROLES["PET"],
    "temperature": _values.ROLES["TEMPERATURE"],
}


def _check_cell(number: float, column: str, where: str) -> None:
    """One cell of the series table through the input gate: no undeclared nodata sentinel,
    a plausible value for its column (``where`` names the file, line and column)."""
    if abs(number) >= 998.0 and _values.sentinel_mask(np.array([number])).any():
        raise InputFileError(
            f"{where}: {number:g} is a value products use for no data; leave the cell empty (or write NA) "
            "for a month without a value"
        )
    spec = _COLUMN_ROLES[column]
    if (spec.low is not None and number < spec.low) or (spec.high is not None and number > spec.high):
        _values.refuse_implausible(np.array([number]), spec, where, frozen=False)


def read_series(path: str | os.PathLike, min_months: int = MIN_MONTHS) -> SeriesTable:
    """The monthly series per catchment of the CSV file ``path``.

    Columns (headers case-insensitive, in any order; the delimiter ``,``, ``;`` or tab):
    ``id``, ``month`` (``YYYY-MM``; ``YYYYMM`` and ISO dates are read too), ``runoff`` and
    optionally ``precipitation``, ``pet``, ``temperature``; other columns are ignored with a
    warning. Empty cells (and ``NA``, ``NaN``) are missing values (NaN). With ``;`` as the
    delimiter, a comma in a number is its decimal mark (``12,5``), as European spreadsheets
    write it.

    Refused with an :class:`~cwsc.errors.InputFileError` naming the file and line: a missing
    or unreadable file, no ``id`` / ``month`` / ``runoff`` column, a row without an id or
    month, a month that is not one, a value that is not a number (with its column), an
    undeclared nodata value (-9999, -999, 1e20 ...) or a value no such variable takes (a
    negative or 1e39 runoff, a temperature in K: :data:`cwsc.io.values.ROLES`). Per id,
    as a :class:`NotScored` in ``problems`` (and not among ``series``): duplicated months
    (named), fewer than ``min_months`` months with a runoff value. Months missing inside an
    id's span are listed in its ``gaps`` and logged.
    """
    where = f"'{os.fspath(path)}'"
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise InputFileError(f"series: {where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"series: {where} cannot be read ({_short(exc)})") from None
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].strip():
        raise InputFileError(f"series: {where} is empty; it needs a header line: id,month,runoff")
    first = lines[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(lines, delimiter=delimiter)
    names = [h.strip() for h in next(reader)]
    header = [h.lower() for h in names]
    columns: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in ("id", "month", *VARIABLES) and h not in columns:
            columns[h] = i
    missing = [c for c in ("id", "month", "runoff") if c not in columns]
    if missing:
        raise InputFileError(
            f"series: {where}, line 1: no column {', '.join(repr(m) for m in missing)}; the header must "
            f"name id, month, runoff (and optionally precipitation, pet, temperature); it has: "
            + ", ".join(h or "(blank)" for h in names)
        )
    extra = [h or f"(blank, column {i + 1})" for i, h in enumerate(names) if i not in columns.values()]
    if extra:
        log.warning("series: %s: columns ignored: %s", where, ", ".join(extra))
    variables = [v for v in VARIABLES if v in columns]
    rows: dict[str, dict[int, list]] = {}
    duplicates: dict[str, list[int]] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue

        padded = [c.strip() for c in row] + [""] * max(0, len(header) - len(row))
        cell = {name: padded[i] for name, i in columns.items()}
        cid = cell["id"]
        if not cid:
            raise InputFileError(f"series: {where}, line {line}: no id")
        month_text = cell["month"]
        if not month_text:
            raise InputFileError(f"series: {where}, line {line}: no month (id {cid})")
        try:
            m = M.parse(month_text, "month")
        except BadInput:
            raise InputFileError(
                f"series: {where}, line {line}: '{month_text}' is not a month; give it as YYYY-MM (for "
                "example 2001-01)"
            ) from None
        values = []
        for v in variables:
            raw = cell[v]
            if raw.lower() in _MISSING:
                values.append(np.nan)
                continue
            number_text = raw
            if delimiter == ";" and "," in raw:  # a European spreadsheet: 1.234,5
                number_text = raw.replace(".", "").replace(",", ".")
            try:
                number = float(number_text)
            except ValueError:
                raise InputFileError(
                    f"series: {where}, line {line}, column '{names[columns[v]]}': '{raw}' is not a number"
                ) from None
            if math.isfinite(number):
                _check_cell(number, v, f"series: {where}, line {line}, column '{names[columns[v]]}'")
            values.append(number if math.isfinite(number) else np.nan)
        months_of = rows.setdefault(cid, {})
        if m in months_of:
            duplicates.setdefault(cid, [])
            if m not in duplicates[cid]:
                duplicates[cid].append(m)
            continue
        months_of[m] = values
    series: dict[str, Series] = {}
    problems: list[NotScored] = []
    gapped = []
    for cid, by_month in rows.items():
        if cid in duplicates:
            problems.append(
                NotScored(
                    cid,
                    f"series: {where}: id {cid} has months given more than once: "
                    + _some([M.label(m) for m in sorted(duplicates[cid])]),
                )
            )
            continue
        ms = sorted(by_month)
        data = np.asarray([by_month[m] for m in ms], dtype=np.float64).reshape(len(ms), len(variables))
        found = int(np.isfinite(data[:, 0]).sum())
        if found < min_months:
            problems.append(
                NotScored(
                    cid,
                    f"series: {where}: id {cid} has runoff for {found} months; at least {min_months} are needed",
                )
            )
            continue
        gaps = [
            f"{M.label(a + 1)} to {M.label(b - 1)}" if b - a > 2 else M.label(a + 1)
            for a, b in zip(ms[:-1], ms[1:])
            if b - a > 1
        ]
        if gaps:
            gapped.append(f"{cid} ({_some(gaps, 3)})")
        arrays = {v: data[:, i].copy() for i, v in enumerate(variables)}
        series[cid] = Series(
            id=cid,
            months=[M.label(m) for m in ms],
            runoff=arrays["runoff"],
            precipitation=arrays.get("precipitation"),
            pet=arrays.get("pet"),
            temperature=arrays.get("temperature"),
            gaps=gaps,
        )
    if gapped:
        log.warning("series: %s: months missing inside the series of %s", where, _some(gapped))
    log.info("series: %d catchments read from %s (%s)", len(series), where, ", ".join(variables))
    return SeriesTable(os.fspath(path), variables, series, problems)


def match_ids(
    shapes: Iterable[CatchmentShape],
    series: SeriesTable | Mapping[str, Any],
    known: Iterable[NotScored] = (),
) -> tuple[list[str], list[NotScored]]:
    """Pair the polygons with the series by id: the ids that have both (in the polygons'
    order), and a :class:`NotScored` for a polygon without a series and for a series without
    a polygon. Ids already listed in ``known`` (the problems of :func:`read_catchments` and of
    the table) are not listed again.

    Ids left unpaired that are one number written two ways (``7`` in an integer field of the
    polygons, ``007`` in the table, as gauge numbers with leading zeros often are) are paired
    with a warning naming them, one to one only; the table's series is then filed under the
    polygon's id (``series`` is changed in place)."""
    already = {p.id for p in known}
    if isinstance(series, SeriesTable):
        table, have = f"'{series.path}'", series.series
        already |= {p.id for p in series.problems}
    else:
        table, have = "the series table", series
    shape_ids = [s.id for s in shapes]
    polygon_set = set(shape_ids)
    if isinstance(have, dict):
        _pair_by_number(shape_ids, have, table)
    paired = [i for i in shape_ids if i in have]
    problems = [
        NotScored(i, f"catchment {i} has a polygon but no row in the series table {table}")
        for i in shape_ids
        if i not in have and i not in already
    ]
    problems += [
        NotScored(i, f"catchment {i} has rows in the series table {table} but no polygon")
        for i in have
        if i not in polygon_set and i not in already
    ]
    return paired, problems


def _number(cid: str) -> int | None:
    """An id made of ASCII digits only as its number (``"007"`` -> 7), else None."""
    text = cid.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _pair_by_number(shape_ids: Sequence[str], have: dict[str, Any], table: str) -> None:
    """File under the polygon's id the series whose id is the same number with other leading
    zeros, where the number names exactly one unpaired polygon and one unpaired series."""
    lone_shapes = [i for i in shape_ids if i not in have]
    polygon_set = set(shape_ids)
    lone_series = [i for i in have if i not in polygon_set]
    by_number: dict[int, tuple[list[str], list[str]]] = {}
    for side, ids in ((0, lone_shapes), (1, lone_series)):
        for i in ids:
            n = _number(i)
            if n is not None:
                by_number.setdefault(n, ([], []))[side].append(i)
    pairs = [(s[0], t[0]) for s, t in by_number.values() if len(s) == 1 and len(t) == 1]
    for polygon_id, table_id in pairs:
        found = have.pop(table_id)
        if isinstance(found, Series):
            found.id = polygon_id
        have[polygon_id] = found
    if pairs:
        log.warning(
            "catchments: ids paired as numbers, the same gauge with and without leading zeros "
            "(polygon = series table %s): %s",
            table,
            _some([f"{a} = {b}" for a, b in pairs]),
        )


def runoff_in_mm(
    values: np.ndarray,
    months: Sequence[str | int],
    units: str,
    area_km2: float | None,
    id: str = "",
) -> np.ndarray:
    """Runoff ``values`` ``(months,)`` of one catchment in mm/month (float64).

    ``units``: ``mm/month`` (unchanged), ``mm/day`` (times the days of each month,
    Gregorian) or ``m3/s`` (times the seconds of each month, over the catchment's area
    ``area_km2`` x 1e6 m2, x 1000 mm/m). ``months`` are ``"YYYY-MM"`` or
    :mod:`cwsc.io.months` integers. ``id`` names the catchment in the messages.
    """
    key = " ".join(str(units or "").strip().lower().split())
    unit = _UNIT_ALIASES.get(key) or _UNIT_ALIASES.get(key.replace(" ", ""))
    if unit is None:
        raise UnitsError(f"runoff units '{units}' are not known; use one of: {', '.join(RUNOFF_UNITS)}")
    values = np.asarray(values, dtype=np.float64)
    if unit == "mm/month":
        return values.copy()
    ms = [m if isinstance(m, (int, np.integer)) else M.parse(str(m), "month") for m in months]
    if len(ms) != values.shape[-1]:
        raise ValueError(f"{values.shape[-1]} values but {len(ms)} months")
    days = np.asarray([M.days_in(int(m), "standard") for m in ms], dtype=np.float64)
    if unit == "mm/day":
        return values * days
    if area_km2 is None or not math.isfinite(float(area_km2)) or float(area_km2) <= 0:
        who = f"catchment {id}" if id else "the catchment"
        raise ParameterError(
            f"{who}: runoff in m3/s needs the catchment's area to be converted to mm/month, "
            f"and it has none (area {area_km2})"
        )
    return values * days * 86400.0 / (float(area_km2) * 1e6) * 1000.0


# --------------------------------------------------------------------------------------
# Out


def _check_fields(fields: Sequence[tuple[str, str]]) -> None:
    seen = set()
    for name, kind in fields:
        if kind not in _FIELD_TYPES:
            raise ValueError(f"field '{name}': type '{kind}' is not one of {', '.join(_FIELD_TYPES)}")
        if not name or name.lower() in seen:
            raise ValueError(f"field '{name}': empty or given twice")
        seen.add(name.lower())


def _value(value: Any, kind: str) -> Any:
    """A record's value for a field of type ``kind``: None (and NaN) stay None."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def write_catchments(
    path: str | os.PathLike,
    shapes: Sequence[CatchmentShape],
    records: Sequence[Mapping[str, Any]],
    fields: Sequence[tuple[str, str]],
    crs_wkt: str | None = None,
    layer: str | None = None,
) -> Path:
    """A GeoPackage at exactly ``path`` (its layer named ``layer``, default the file's stem) of the
    polygons of ``shapes`` with the attributes of ``records`` (one per shape, same order),
    ``fields`` ``(name, type)`` in order, types ``"str"``, ``"int"``, ``"float"``; a missing
    key, None or NaN is written as null. A shape whose geometry is None is written with a
    null geometry. The CRS is the shapes' (they must share it) or ``crs_wkt`` when there is
    no shape. Into a GeoPackage already at ``path`` only the layer ``layer`` is written (replacing
    a layer of that name), its other layers kept; any other file there is replaced. Nothing is
    renamed."""
    import fiona
    from fiona.errors import FionaError
    from fiona.model import Feature, Geometry, Properties

    _check_fields(fields)
    if len(records) != len(shapes):
        raise ValueError(f"{len(shapes)} shapes but {len(records)} records")
    wkts = {s.crs_wkt for s in shapes}
    if len(wkts) > 1 and not all(_same_crs(w, next(iter(wkts))) for w in wkts):
        raise ValueError("the shapes are not all in one CRS")
    wkt = next(iter(wkts)) if wkts else (crs_wkt or "")
    types = {s.geometry["type"] for s in shapes if s.geometry is not None}
    gtype = "MultiPolygon" if "MultiPolygon" in types else "Polygon"
    schema = {"geometry": gtype, "properties": {name: kind for name, kind in fields}}
    path = Path(path)
    try:
        if path.exists() and not _is_geopackage(path):
            path.unlink()
        opts = {"crs": _crs(wkt)} if wkt else {}
        with fiona.open(path, "w", driver="GPKG", schema=schema, layer=layer or path.stem, **opts) as dst:
            for s, rec in zip(shapes, records):
                geom = s.geometry
                if geom is not None and gtype == "MultiPolygon" and geom["type"] == "Polygon":
                    geom = {"type": "MultiPolygon", "coordinates": [geom["coordinates"]]}
                props = {name: _value(rec.get(name), kind) for name, kind in fields}
                dst.write(
                    Feature(
                        geometry=Geometry.from_dict(geom) if geom is not None else None,
                        properties=Properties.from_dict(props),
                    )
                )
    except (FionaError, OSError) as exc:
        raise OutputRefused(f"'{path}' cannot be written ({_short(exc)})") from None
    log.info("catchments: %d polygons written to '%s'", len(shapes), path)
    return path


def _is_geopackage(path: Path) -> bool:
    """Whether ``path`` is an SQLite file (a GeoPackage to add a layer to), not an empty or
    foreign file to replace."""
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def write_table(
    path: str | os.PathLike, records: Sequence[Mapping[str, Any]], fields: Sequence[tuple[str, str]]
) -> Path:
    """A CSV at exactly ``path``: a header of the ``fields`` names, then one line per record
    (types as for :func:`write_catchments`; None, NaN and a missing key are empty cells,
    floats written in full precision)."""
    _check_fields(fields)
    path = Path(path)
    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([name for name, _ in fields])
            for rec in records:
                cells = []
                for name, kind in fields:
                    v = _value(rec.get(name), kind)
                    cells.append("" if v is None else repr(v) if kind == "float" else str(v))
                writer.writerow(cells)
    except OSError as exc:
        raise OutputRefused(f"'{path}' cannot be written ({_short(exc)})") from None
    return path
