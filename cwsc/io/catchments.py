"""Gauged catchments at the edges: polygons and runoff series in, per-catchment arrays and
tables out.

- :func:`read_catchments` reads the polygons of any vector file fiona reads (GeoPackage,
  Shapefile, GeoJSON ...), each with its id as a string;
- :func:`read_series` reads a CSV of monthly series per catchment (``id``, ``month``,
  ``runoff``, optionally ``precipitation``, ``pet``, ``temperature``);
- :func:`match_ids` pairs the two;
- :func:`area_km2` is a polygon's area on the WGS84 ellipsoid; :func:`cell_fractions` the exact
  fraction of each raster cell a polygon covers, and :func:`weighted_mean` /
  :func:`weighted_spread` the area-weighted statistics of a raster over it;
- :func:`runoff_in_mm` converts gauged runoff to mm/month;
- :func:`write_catchments` / :func:`write_table` write the results.

A problem of the whole file is a :class:`~cwsc.errors.BadInput` naming the file (and line,
field, id). A problem of one catchment is a :class:`NotScored` returned beside the good
records, so that the caller lists every catchment it does not score with its reason.
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

from cwsc.errors import BadInput, GridMismatch, InputFileError, OutputRefused, ParameterError, UnitsError
from cwsc.io import months as M

log = logging.getLogger(__name__)

#: WGS84 semi-major axis (m) and first eccentricity squared.
WGS84_A = 6378137.0
WGS84_E2 = 6.69437999014e-3
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
#: Segments per polygon diagonal when densifying before a change of CRS.
_DENSIFY = 256
_FIELD_TYPES = ("str", "int", "float")


@dataclass
class NotScored:
    """A catchment that is not scored, and why (a sentence naming the file)."""

    id: str
    reason: str


@dataclass
class CatchmentShape:
    """One catchment polygon: ``id`` as a string, ``geometry`` a GeoJSON-like dict
    (``{"type": "Polygon" | "MultiPolygon", "coordinates": ...}``, 2-D (x, y) tuples, rings
    closed) in the CRS ``crs_wkt`` of the file it was read from."""

    id: str
    geometry: dict
    crs_wkt: str


# --------------------------------------------------------------------------------------
# Polygons in


def read_catchments(
    path: str | os.PathLike, id_field: str, layer: str | None = None
) -> tuple[list[CatchmentShape], list[NotScored]]:
    """The catchments of the vector file ``path`` (any format fiona reads), with their ids
    from the attribute ``id_field``, in file order; ``layer`` picks a layer of a file that
    has several (default: the first, with a warning naming the others).

    Returns ``(shapes, problems)``: a catchment with a null or empty geometry is a
    :class:`NotScored` rather than a shape. Refused, naming the file: a missing file or one
    fiona cannot read, a missing ``id_field`` (the fields there are are listed), a feature
    without an id, duplicated ids, a geometry that is not a (multi)polygon, a file without a
    CRS. An integer id ``7`` (or a float ``7.0``) reads as ``"7"``; Z values are dropped.
    """
    import fiona
    from fiona.errors import FionaError

    where = f"'{os.fspath(path)}'"
    if not Path(path).exists():
        raise InputFileError(f"catchments: {where}: no such file")
    try:
        layers = fiona.listlayers(path)
    except (FionaError, OSError) as exc:
        raise InputFileError(f"catchments: {where} cannot be read as a vector file ({_short(exc)})") from None
    if layer is not None and layer not in layers:
        raise InputFileError(f"catchments: {where} has no layer '{layer}'; its layers: {', '.join(layers)}")
    if layer is None and len(layers) > 1:
        log.warning(
            "catchments: %s has %d layers (%s): reading '%s'",
            where,
            len(layers),
            ", ".join(layers),
            layers[0],
        )
    chosen = layer if layer is not None else (layers[0] if layers else None)
    try:
        with fiona.open(path, layer=chosen) as src:
            crs_wkt = src.crs_wkt or ""
            names = list(src.schema.get("properties", {}))
            features = [(f.id, f.properties, f.geometry) for f in src]
    except (FionaError, OSError) as exc:
        raise InputFileError(f"catchments: {where} cannot be read as a vector file ({_short(exc)})") from None
    key = _find_field(names, id_field)
    if key is None and id_field.strip().lower() == "fid":
        # A GeoPackage's feature id is no attribute for fiona, but QGIS lists it as a field.
        key, features = "fid", [(fid, {"fid": fid}, geom) for fid, _, geom in features]
    if key is None:
        raise InputFileError(
            f"catchments: {where} has no field '{id_field}' for the catchment ids; its fields: "
            + (", ".join(names) if names else "none")
        )
    if not crs_wkt:
        raise InputFileError(
            f"catchments: {where} has no CRS; save it with its coordinate reference system "
            "(for a Shapefile, the .prj file beside it)"
        )
    shapes, problems, seen, dupes, no_id, not_polygon = [], [], {}, [], [], []
    for n, (fid, props, geom) in enumerate(features, start=1):
        cid = _id_text(props.get(key))
        if cid is None:
            no_id.append(f"feature {n} (fid {fid})")
            continue
        if cid in seen:
            if cid not in dupes:
                dupes.append(cid)
            continue
        seen[cid] = n
        try:
            plain = _plain_geometry(geom)
        except _NotPolygon as exc:
            not_polygon.append(f"{cid} ({exc})")
            continue
        if plain is None:
            problems.append(
                NotScored(cid, f"catchments: {where}: catchment {cid} has no geometry (null or empty)")
            )
            continue
        shapes.append(CatchmentShape(cid, plain, crs_wkt))
    if no_id:
        raise InputFileError(
            f"catchments: {where}: {_some(no_id)} {'has' if len(no_id) == 1 else 'have'} no value in "
            f"the id field '{key}'"
        )
    if dupes:
        raise InputFileError(
            f"catchments: {where}: duplicated ids in the field '{key}': {_some(dupes)}; each catchment "
            "needs its own id"
        )
    if not_polygon:
        raise InputFileError(
            f"catchments: {where}: catchments whose geometry is not a polygon: {_some(not_polygon)}"
        )
    log.info("catchments: %d polygons read from %s (ids from '%s')", len(shapes), where, key)
    return shapes, problems


class _NotPolygon(Exception):
    pass


def _find_field(names: Sequence[str], wanted: str) -> str | None:
    if wanted in names:
        return wanted
    folded = [n for n in names if n.lower() == str(wanted).lower()]
    return folded[0] if len(folded) == 1 else None


def _id_text(value: Any) -> str | None:
    """An id as text: ``7`` and ``7.0`` -> ``"7"``; None, NaN and blanks -> None."""
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    text = str(value).strip()
    return text or None


def _plain_geometry(geom: Any) -> dict | None:
    """A (multi)polygon as a plain dict of 2-D tuples, None when null or empty; anything
    else raises :class:`_NotPolygon` with its type."""
    if geom is None:
        return None
    gtype = geom["type"] if isinstance(geom, Mapping) and "type" in geom else getattr(geom, "type", None)
    gtype = str(gtype or "").replace("3D ", "")
    coords = geom["coordinates"] if isinstance(geom, Mapping) else getattr(geom, "coordinates", None)
    if gtype == "Polygon":
        rings = _rings(coords)
        return {"type": "Polygon", "coordinates": rings} if rings else None
    if gtype == "MultiPolygon":
        parts = [r for r in (_rings(p) for p in (coords or [])) if r]
        return {"type": "MultiPolygon", "coordinates": parts} if parts else None
    raise _NotPolygon(f"a {gtype or 'geometry of no type'}")


def _rings(polygon: Any) -> list[list[tuple[float, float]]]:
    """The rings of one polygon as closed lists of (x, y); [] when its exterior is empty."""
    rings = []
    for i, ring in enumerate(polygon or []):
        points = [(float(p[0]), float(p[1])) for p in ring]
        if len(points) < 3:
            if i == 0:
                return []
            continue
        if points[0] != points[-1]:
            points.append(points[0])
        rings.append(points)
    return rings


def _some(items: Sequence[Any], n: int = 10) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


# --------------------------------------------------------------------------------------
# Geometry


def _polygons(geometry: Mapping) -> list[list[np.ndarray]]:
    """The polygons of a Polygon / MultiPolygon: each a list of rings, each an (n, 2) array."""
    gtype = geometry["type"]
    coords = geometry["coordinates"]
    parts = [coords] if gtype == "Polygon" else list(coords) if gtype == "MultiPolygon" else None
    if parts is None:
        raise ValueError(f"a {gtype} is not a polygon")
    out = []
    for part in parts:
        rings = [np.asarray([(p[0], p[1]) for p in ring], dtype=np.float64).reshape(-1, 2) for ring in part]
        rings = [r for r in rings if len(r) >= 3]
        if rings:
            out.append(rings)
    return out


def _signed_area(ring: np.ndarray) -> float:
    """Shoelace area of a ring (closed or not), positive for counter-clockwise (taken about
    its first point, so that large coordinates lose no precision)."""
    x, y = ring[:, 0] - ring[0, 0], ring[:, 1] - ring[0, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _planar_area(polygons: list[list[np.ndarray]]) -> float:
    """Area of the polygons (holes subtracted, parts summed), in squared CRS units."""
    return sum(abs(_signed_area(p[0])) - sum(abs(_signed_area(h)) for h in p[1:]) for p in polygons)


def _densify(ring: np.ndarray, step: float) -> np.ndarray:
    """``ring`` with points added so that no segment is longer than ``step``."""
    if step <= 0 or not np.isfinite(step):
        return ring
    closed = ring if np.array_equal(ring[0], ring[-1]) else np.vstack([ring, ring[:1]])
    d = np.diff(closed, axis=0)
    pieces = np.maximum(1, np.ceil(np.hypot(d[:, 0], d[:, 1]) / step).astype(np.int64))
    if (pieces == 1).all():
        return closed
    start = np.repeat(closed[:-1], pieces, axis=0)
    delta = np.repeat(d / pieces[:, None], pieces, axis=0)
    k = np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    return np.vstack([start + delta * k[:, None], closed[-1:]])


def _bounds(polygons: list[list[np.ndarray]]) -> tuple[float, float, float, float]:
    allp = np.vstack([p[0] for p in polygons])
    return float(allp[:, 0].min()), float(allp[:, 1].min()), float(allp[:, 0].max()), float(allp[:, 1].max())


def _transform(
    polygons: list[list[np.ndarray]], src: str, dst: str, where: str, densify: bool = True
) -> list[list[np.ndarray]]:
    """The polygons in CRS ``dst`` (WKT or a PROJ string), their edges densified first so
    that straight edges in ``src`` stay where they are."""
    from fiona.transform import transform_geom

    if densify:
        x0, y0, x1, y1 = _bounds(polygons)
        step = math.hypot(x1 - x0, y1 - y0) / _DENSIFY
        polygons = [[_densify(r, step) for r in p] for p in polygons]
    geom = {"type": "MultiPolygon", "coordinates": [[r.tolist() for r in p] for p in polygons]}
    try:
        out = transform_geom(src, dst, geom)
    except Exception as exc:  # noqa: BLE001 - any PROJ/OGR failure means the same to a user
        raise InputFileError(f"{where}: cannot be transformed to {_crs_name(dst)} ({_short(exc)})") from None
    coords = [out["coordinates"]] if out["type"] == "Polygon" else out["coordinates"]
    result = [
        [np.asarray([(q[0], q[1]) for q in r], dtype=np.float64).reshape(-1, 2) for r in p] for p in coords
    ]
    if not all(np.isfinite(r).all() for p in result for r in p):
        raise InputFileError(f"{where}: some of its points cannot be transformed to {_crs_name(dst)}")
    return result


def _crs(wkt: str):
    from fiona.crs import CRS

    return CRS.from_user_input(wkt)


def _crs_name(wkt: str) -> str:
    try:
        crs = _crs(wkt)
        epsg = crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else crs.to_string()[:80]
    except Exception:  # noqa: BLE001 - a CRS that cannot be parsed is still worth naming
        return str(wkt)[:80]


def _same_crs(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return _crs(a) == _crs(b)
    except Exception:  # noqa: BLE001
        return False


def _to_lonlat(polygons: list[list[np.ndarray]], crs_wkt: str, where: str) -> list[list[np.ndarray]]:
    crs = _crs(crs_wkt)
    if crs.is_geographic:
        return polygons
    return _transform(polygons, crs_wkt, "EPSG:4326", where, densify=False)


def area_km2(geometry: Mapping, crs_wkt: str, where: str = "catchment") -> float:
    """Area (km2) of a Polygon / MultiPolygon in ``crs_wkt`` on the WGS84 ellipsoid: holes
    subtracted, parts summed.

    The edges are densified (straight in ``crs_wkt``), the polygon projected to a Lambert
    azimuthal equal-area projection centred on it (``+proj=laea +ellps=WGS84``) and its area
    taken there by the shoelace formula. ``where`` names the catchment in error messages.
    """
    polygons = _polygons(geometry)
    if not polygons:
        return 0.0
    x0, y0, x1, y1 = _bounds(_to_lonlat(polygons, crs_wkt, where))
    lon0, lat0 = 0.5 * (x0 + x1), max(-90.0, min(90.0, 0.5 * (y0 + y1)))
    laea = f"+proj=laea +lat_0={lat0:.8f} +lon_0={lon0:.8f} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    return _planar_area(_transform(polygons, crs_wkt, laea, where)) / 1e6


def quadrangle_km2(lat0: float, lat1: float, width_degrees: float) -> np.ndarray | float:
    """Area (km2) on the WGS84 ellipsoid between the latitudes ``lat0`` and ``lat1``
    (degrees, scalars or arrays) over ``width_degrees`` of longitude."""
    e = math.sqrt(WGS84_E2)
    b2 = WGS84_A**2 * (1.0 - WGS84_E2)

    def q(lat):
        s = np.sin(np.radians(lat))
        return s / (1.0 - WGS84_E2 * s * s) + np.log((1.0 + e * s) / (1.0 - e * s)) / (2.0 * e)

    area = 0.5 * b2 * np.radians(abs(width_degrees)) * np.abs(q(lat1) - q(lat0)) / 1e6
    return float(area) if np.ndim(area) == 0 else area


# --------------------------------------------------------------------------------------
# Cells of a raster


@dataclass
class CellCover:
    """The raster cells a polygon covers: ``rows``, ``cols`` (int64, ``(n,)``, indices in the
    whole raster), ``fractions`` (float64, ``(n,)``, the fraction of each cell's area inside
    the polygon, 0..1), ``cell_km2`` (float64, ``(n,)``, each whole cell's area in km2), and
    ``inside``: the fraction of the polygon's area that lies on the raster (0..1)."""

    rows: np.ndarray
    cols: np.ndarray
    fractions: np.ndarray
    cell_km2: np.ndarray
    inside: float = 1.0

    def __len__(self) -> int:
        return int(self.rows.size)

    @property
    def empty(self) -> bool:
        return self.rows.size == 0

    @property
    def weights(self) -> np.ndarray:
        """km2 of each cell inside the polygon: ``fractions * cell_km2``."""
        return self.fractions * self.cell_km2

    @property
    def area_km2(self) -> float:
        """The polygon's area on the raster (km2), from the cells."""
        return float(self.weights.sum())

    def window(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the smallest window holding the cells (to read only it:
        index the window's array with ``rows - window[0].start``, ``cols - window[1].start``)."""
        if self.empty:
            return slice(0, 0), slice(0, 0)
        return (
            slice(int(self.rows.min()), int(self.rows.max()) + 1),
            slice(int(self.cols.min()), int(self.cols.max()) + 1),
        )


def _empty_cover() -> CellCover:
    z = np.zeros(0, dtype=np.int64)
    return CellCover(z, z.copy(), np.zeros(0), np.zeros(0), inside=0.0)


def _check_transform(transform: Sequence[float], where: str) -> tuple[float, float, float, float]:
    """(a, c, e, f) of an affine transform (a, b, c, d, e, f[, 0, 0, 1]) without rotation."""
    t = [float(v) for v in tuple(transform)[:6]]
    if len(t) != 6:
        raise ValueError(f"an affine transform has 6 coefficients, not {len(t)}")
    a, b, c, d, e, f = t
    if a == 0 or e == 0 or not all(math.isfinite(v) for v in t):
        raise GridMismatch(f"{where}: the raster's transform {tuple(t)} has no cell size")
    if abs(b) > 1e-10 * abs(a) or abs(d) > 1e-10 * abs(e):
        raise GridMismatch(
            f"{where}: the raster is rotated (transform {tuple(t)}); only north-up (or south-up) "
            "rasters are supported: warp it to an unrotated grid first"
        )
    return a, c, e, f


def cell_km2(transform: Sequence[float], raster_crs_wkt: str, rows: np.ndarray) -> np.ndarray:
    """Area (km2) of the cells of ``rows`` (int array) of a raster: ellipsoidal quadrangles
    (WGS84) for a geographic CRS, ``|a * e|`` in the CRS's linear units for a projected one
    (its own planar area: exact for an equal-area projection)."""
    a, _, e, f = _check_transform(transform, "raster")
    rows = np.asarray(rows)
    crs = _crs(raster_crs_wkt)
    if crs.is_geographic:
        try:
            to_degrees = math.degrees(float(crs.units_factor[1]))
        except Exception:  # noqa: BLE001 - a CRS that does not say is in degrees
            to_degrees = 1.0
        lat0 = (f + e * rows) * to_degrees
        lat1 = (f + e * (rows + 1)) * to_degrees
        return np.asarray(quadrangle_km2(np.clip(lat0, -90, 90), np.clip(lat1, -90, 90), abs(a) * to_degrees))
    try:
        metres = float(crs.linear_units_factor[1])
    except Exception:  # noqa: BLE001 - a CRS that does not say is in metres
        metres = 1.0
    return np.full(rows.shape, abs(a * e) * metres * metres / 1e6)


def cell_fractions(
    geometry: Mapping,
    crs_wkt: str,
    transform: Sequence[float],
    raster_crs_wkt: str,
    shape: tuple[int, int],
    where: str = "catchment",
) -> CellCover:
    """The cells of a raster (affine ``transform`` in rasterio's order ``(a, b, c, d, e, f)``
    as in :attr:`cwsc.io.rasters.Grid.transform`, not GDAL's geotransform; CRS
    ``raster_crs_wkt``; ``shape`` = ``(rows, cols)``) that a Polygon / MultiPolygon in
    ``crs_wkt`` covers, with the exact fraction of each cell's area inside it.

    The polygon is densified and transformed into the raster's CRS, then its area is shared
    out among the cells exactly (holes subtracted, parts summed; concave polygons alike): the
    ring's edges are cut at every row and column line and each piece adds its signed area to
    its cell and its height to every cell left of it in its row (the scan-line form of
    clipping the polygon against each cell rectangle, in time proportional to the edge
    crossings plus the cells of the polygon's bounding box on the raster, memory 16 bytes a
    bounding-box cell; the parts off the raster are pressed onto its sides first). It agrees
    with Sutherland-Hodgman clipping of every cell to 1e-9. Cells with a fraction below
    1e-12 are left out. North-up (``e < 0``) and south-up rasters alike; a rotated transform
    is refused (:class:`~cwsc.errors.GridMismatch`), so is a raster without a CRS. A
    polygon that cannot be transformed raises :class:`~cwsc.errors.InputFileError` naming
    ``where``.

    For a geographic raster the fraction within a cell is taken by planar area in degrees
    (fine within one cell); the cells' true areas are in ``cell_km2``. A polygon in longitudes
    -180..180 over a 0..360 raster (or the reverse) is shifted by 360 degrees. A polygon
    entirely off the raster gives an empty cover (``inside == 0``); :func:`cover_catchments`
    turns that into a :class:`NotScored`.
    """
    a, c, e, f = _check_transform(transform, where)
    height, width = int(shape[0]), int(shape[1])
    if not raster_crs_wkt:
        raise GridMismatch(f"{where}: the raster has no CRS, so the catchment cannot be placed on it")
    polygons = _polygons(geometry)
    if not polygons or height <= 0 or width <= 0:
        return _empty_cover()
    if not _same_crs(crs_wkt, raster_crs_wkt):
        polygons = _transform(polygons, crs_wkt, raster_crs_wkt, where)
    if _crs(raster_crs_wkt).is_geographic:
        polygons = _wrap_longitudes(polygons, c, c + a * width)
    # pixel coordinates: u along columns, v along rows
    pixel = [[np.column_stack([(r[:, 0] - c) / a, (r[:, 1] - f) / e]) for r in p] for p in polygons]
    total = _planar_area(pixel)
    if total <= 0:
        return _empty_cover()
    clamped = [_clamp(r, width, height) for p in pixel for r in p]
    signs = [
        (1.0 if j == 0 else -1.0) * math.copysign(1.0, _signed_area(r)) if _signed_area(r) != 0 else 0.0
        for p in pixel
        for j, r in enumerate(p)
    ]
    allp = np.vstack(clamped)
    r0 = int(min(max(math.floor(allp[:, 1].min()), 0), height - 1))
    r1 = int(min(max(math.ceil(allp[:, 1].max()), r0 + 1), height))
    c0 = int(min(max(math.floor(allp[:, 0].min()), 0), width - 1))
    c1 = int(min(max(math.ceil(allp[:, 0].max()), c0 + 1), width))
    nr, nc = r1 - r0, c1 - c0 + 1  # one more column: pieces on the raster's right edge
    area = np.zeros(nr * nc)
    cover = np.zeros(nr * nc)
    for ring, sign in zip(clamped, signs):
        if sign == 0.0:
            continue
        rows, cols, local, height_ = _ring_pieces(ring)
        keep = (rows >= r0) & (rows < r1) & (cols >= c0) & (cols <= c1)
        if not keep.all():
            rows, cols, local, height_ = rows[keep], cols[keep], local[keep], height_[keep]
        flat = (rows - r0) * nc + (cols - c0)
        area += sign * np.bincount(flat, weights=local, minlength=nr * nc)
        cover += sign * np.bincount(flat, weights=height_, minlength=nr * nc)
    area = area.reshape(nr, nc)
    cover = cover.reshape(nr, nc)
    # each cell: its own pieces' area plus the height of every piece to its right
    right = np.cumsum(cover[:, ::-1], axis=1)[:, ::-1]
    frac = area[:, :-1] + right[:, 1:]
    rr, cc = np.nonzero(frac > 1e-12)
    if rr.size == 0:
        return _empty_cover()
    fractions = np.clip(frac[rr, cc], 0.0, 1.0)
    rows_out = (rr + r0).astype(np.int64)
    return CellCover(
        rows=rows_out,
        cols=(cc + c0).astype(np.int64),
        fractions=fractions,
        cell_km2=cell_km2(transform, raster_crs_wkt, rows_out),
        inside=float(min(1.0, fractions.sum() / total)),
    )


def _split(ring: np.ndarray, axis: int, value: float) -> np.ndarray:
    """``ring`` (closed, (n, 2)) with a point added where an edge crosses ``axis == value``."""
    a, b = ring[:-1, axis] - value, ring[1:, axis] - value
    cross = np.nonzero(a * b < 0)[0]
    if cross.size == 0:
        return ring
    t = a[cross] / (a[cross] - b[cross])
    points = ring[cross] + t[:, None] * (ring[cross + 1] - ring[cross])
    points[:, axis] = value
    return np.insert(ring, cross + 1, points, axis=0)


def _clamp(ring: np.ndarray, width: int, height: int) -> np.ndarray:
    """A ring in pixel coordinates pressed onto the raster's rectangle ``0..width`` x
    ``0..height``: cut where it crosses the rectangle's sides, then each point clamped. The
    winding number of every point inside the rectangle is unchanged (a horizontal ray
    from it crosses the pressed ring as it crossed the ring), so the cover of every cell
    is; the parts off the raster shrink to its sides."""
    ring = ring if np.array_equal(ring[0], ring[-1]) else np.vstack([ring, ring[:1]])
    for axis, value in ((0, 0.0), (0, float(width)), (1, 0.0), (1, float(height))):
        ring = _split(ring, axis, value)
    return np.column_stack([np.clip(ring[:, 0], 0, width), np.clip(ring[:, 1], 0, height)])


def _ring_pieces(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A ring (pixel coordinates, (n, 2)) cut at every integer row and column line: per
    piece its cell (row, col), the signed area ``(u_mid - col) * dv`` between it and the
    cell's left side, and its signed height ``dv``."""
    closed = ring if np.array_equal(ring[0], ring[-1]) else np.vstack([ring, ring[:1]])
    p0, p1 = closed[:-1], closed[1:]
    d = p1 - p0
    n = len(p0)
    # every edge's start (t = 0) and end (t = 1), then its crossings of the column lines
    # (u integer) and row lines (v integer), where that coordinate is set exactly
    ts, edges = [np.zeros(n), np.ones(n)], [np.arange(n), np.arange(n)]
    fixed = {0: [np.full(2 * n, np.nan)], 1: [np.full(2 * n, np.nan)]}
    for axis in (0, 1):
        lo = np.minimum(p0[:, axis], p1[:, axis])
        first = np.floor(lo) + 1
        count = np.maximum(0, np.ceil(np.maximum(p0[:, axis], p1[:, axis])) - first).astype(np.int64)
        total = int(count.sum())
        edge = np.repeat(np.arange(n), count)
        k = np.repeat(first, count) + (np.arange(total) - np.repeat(np.cumsum(count) - count, count))
        ts.append((k - p0[edge, axis]) / d[edge, axis])
        edges.append(edge)
        fixed[axis].append(k)
        fixed[1 - axis].append(np.full(total, np.nan))
    t = np.concatenate(ts)
    edge = np.concatenate(edges)
    fu = np.concatenate(fixed[0])
    fv = np.concatenate(fixed[1])
    order = np.lexsort((t, edge))
    t, edge, fu, fv = t[order], edge[order], fu[order], fv[order]
    u = p0[edge, 0] + t * d[edge, 0]
    v = p0[edge, 1] + t * d[edge, 1]
    u = np.where(np.isnan(fu), u, fu)
    v = np.where(np.isnan(fv), v, fv)
    same = edge[:-1] == edge[1:]
    ua, ub = u[:-1][same], u[1:][same]
    va, vb = v[:-1][same], v[1:][same]
    umid, vmid = 0.5 * (ua + ub), 0.5 * (va + vb)
    cols = np.floor(umid).astype(np.int64)
    rows = np.floor(vmid).astype(np.int64)
    dv = vb - va
    return rows, cols, (umid - cols) * dv, dv


def _wrap_longitudes(polygons: list[list[np.ndarray]], x0: float, x1: float) -> list[list[np.ndarray]]:
    """Shift the polygons by a multiple of 360 degrees onto the raster's longitudes
    ``x0..x1`` when they do not overlap them as they are."""
    lo_r, hi_r = min(x0, x1), max(x0, x1)
    px0, _, px1, _ = _bounds(polygons)
    if px1 >= lo_r and px0 <= hi_r:
        return polygons
    shift = 360.0 * round((0.5 * (lo_r + hi_r) - 0.5 * (px0 + px1)) / 360.0)
    if shift == 0 or not (px1 + shift >= lo_r and px0 + shift <= hi_r):
        return polygons
    return [[r + np.array([shift, 0.0]) for r in p] for p in polygons]


def cover_catchments(
    shapes: Iterable[CatchmentShape],
    transform: Sequence[float],
    raster_crs_wkt: str,
    shape: tuple[int, int],
    raster: str,
) -> tuple[dict[str, CellCover], list[NotScored]]:
    """:func:`cell_fractions` of every catchment on one raster (``raster`` names its file in
    the messages). A catchment entirely off the raster, or that cannot be transformed into
    its CRS, is a :class:`NotScored`; one partly off it is kept (its ``inside`` says how much
    is on it) and logged."""
    covers: dict[str, CellCover] = {}
    problems: list[NotScored] = []
    partial = []
    for s in shapes:
        where = f"catchment {s.id}"
        try:
            cover = cell_fractions(s.geometry, s.crs_wkt, transform, raster_crs_wkt, shape, where=where)
        except InputFileError as exc:
            problems.append(NotScored(s.id, f"{exc} (raster '{raster}')"))
            continue
        if cover.empty:
            problems.append(NotScored(s.id, f"catchment {s.id} lies outside the raster '{raster}'"))
            continue
        if cover.inside < 0.999:
            partial.append(f"{s.id} ({100 * cover.inside:.0f} %)")
        covers[s.id] = cover
    if partial:
        log.warning(
            "catchments partly outside the raster '%s' (share of their area on it): %s",
            raster,
            _some(partial),
        )
    return covers, problems


def weighted_mean(stack: np.ndarray, cover: CellCover) -> np.ndarray:
    """Area-weighted mean ``(bands,)`` of a ``(bands, rows, cols)`` stack (a 2-D array is one
    band) over the covered cells, weights ``cover.weights`` (the km2 of each cell inside the
    polygon); NaN cells are left out and the weights of the others renormalised; NaN for a
    band with no valid covered cell."""
    stack = np.asarray(stack)
    if stack.ndim == 2:
        stack = stack[None]
    if cover.empty:
        return np.full(stack.shape[0], np.nan)
    values = stack[:, cover.rows, cover.cols].astype(np.float64)
    w = np.broadcast_to(cover.weights, values.shape)
    valid = np.isfinite(values) & (w > 0)
    wsum = np.where(valid, w, 0.0).sum(axis=1)
    total = np.where(valid, values * w, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wsum > 0, total / np.where(wsum > 0, wsum, 1.0), np.nan)


def weighted_spread(values2d: np.ndarray, cover: CellCover) -> float:
    """Area-weighted standard deviation (population form: ``sqrt(sum w (x - mean)^2 / sum w)``)
    of a ``(rows, cols)`` raster over the covered cells, NaN cells left out; NaN when no
    covered cell is valid."""
    values2d = np.asarray(values2d)
    if cover.empty:
        return float("nan")
    x = values2d[cover.rows, cover.cols].astype(np.float64)
    w = cover.weights
    valid = np.isfinite(x) & (w > 0)
    if not valid.any():
        return float("nan")
    x, w = x[valid], w[valid]
    mean = float(np.dot(w, x) / w.sum())
    return float(math.sqrt(max(0.0, float(np.dot(w, (x - mean) ** 2) / w.sum()))))


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


def read_series(path: str | os.PathLike, min_months: int = MIN_MONTHS) -> SeriesTable:
    """The monthly series per catchment of the CSV file ``path``.

    Columns (headers case-insensitive, in any order; the delimiter ``,``, ``;`` or tab):
    ``id``, ``month`` (``YYYY-MM``; ``YYYYMM`` and ISO dates are read too), ``runoff`` and
    optionally ``precipitation``, ``pet``, ``temperature``; other columns are ignored with a
    warning. Empty cells (and ``NA``, ``NaN``) are missing values (NaN).

    Refused with an :class:`~cwsc.errors.InputFileError` naming the file and line: a missing
    or unreadable file, no ``id`` / ``month`` / ``runoff`` column, a row without an id or
    month, a month that is not one, a value that is not a number (with its column). Per id,
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
            try:
                number = float(raw)
            except ValueError:
                raise InputFileError(
                    f"series: {where}, line {line}, column '{names[columns[v]]}': '{raw}' is not a number"
                ) from None
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
    the table) are not listed again."""
    already = {p.id for p in known}
    if isinstance(series, SeriesTable):
        table, have = f"'{series.path}'", series.series
        already |= {p.id for p in series.problems}
    else:
        table, have = "the series table", series
    shape_ids = [s.id for s in shapes]
    polygon_set = set(shape_ids)
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
    no shape. A file already at ``path`` is replaced; nothing is renamed."""
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
        if path.exists():
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
