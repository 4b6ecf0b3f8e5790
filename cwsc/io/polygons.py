"""Catchment polygons: read from any vector file, made valid, measured on the ellipsoid and
shared out among the cells of a raster.

The geometry is done by the libraries the field relies on, not by hand: fiona reads the file,
shapely checks validity and repairs (``make_valid``), pyproj transforms between CRSs and takes
geodesic areas on the WGS84 ellipsoid, and exactextract computes the exact fraction of each
raster cell a polygon covers (the library behind R's exactextractr, the usual tool for
catchment averages of gridded forcing).

- :func:`read_catchments` reads the polygons of any vector file fiona reads (GeoPackage,
  Shapefile, GeoJSON ...), ``path|layername=NAME`` as QGIS writes it picking a layer, each
  with its id as a string; invalid polygons are repaired with a warning naming the ids;
- :func:`area_km2` is a polygon's geodesic area on the WGS84 ellipsoid;
  :func:`cell_fractions` the exact fraction of each raster cell a polygon covers,
  :func:`cover_catchments` that for many polygons, and :func:`weighted_mean` /
  :func:`weighted_spread` the area-weighted statistics of a raster over a polygon.

Longitude-latitude polygons may cross 180 degrees: a ring whose longitude jumps by more than
180 degrees from one point to the next (``179, -179``) is taken to cross it, as GDAL and
RFC 7946 take it, not to run the long way round the globe. On a longitude-latitude raster a
polygon is placed at every multiple of 360 degrees that meets the raster, so a polygon across
180 degrees on a -180..180 raster, or across Greenwich on a 0..360 raster, is used whole.

A problem of the whole file is a :class:`~cwsc.errors.BadInput` naming the file (and field,
layer, id). A problem of one catchment is a :class:`NotScored` returned beside the good ones,
so that the caller lists every catchment it does not score with its reason.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from cwsc.errors import GridMismatch, InputFileError

log = logging.getLogger(__name__)

#: WGS84 semi-major axis (m) and first eccentricity squared.
WGS84_A = 6378137.0
WGS84_E2 = 6.69437999014e-3
#: Segments per polygon diagonal when densifying before a change of CRS (so that an edge
#: straight in one CRS stays where it is in the other) or before a geodesic area (so that an
#: edge straight in longitude-latitude is measured as drawn, not as a geodesic).
_DENSIFY = 256
#: Largest segment (degrees) of a longitude-latitude polygon measured on the ellipsoid.
_DENSIFY_DEGREES = 0.05
#: How far (degrees) a longitude-latitude file's coordinates may stray outside
#: -180..360 x -90..90 before they are taken for something else (metres, feet).
_DEGREE_SLACK = 1e-6
_POLYGON_TYPES = ("Polygon", "MultiPolygon")


@dataclass
class NotScored:
    """A catchment that is not scored, and why (a sentence naming the file)."""

    id: str
    reason: str


@dataclass
class CatchmentShape:
    """One catchment polygon: ``id`` as a string, ``geometry`` a GeoJSON-like dict
    (``{"type": "Polygon" | "MultiPolygon", "coordinates": ...}``, 2-D (x, y), rings closed;
    valid as read by :func:`read_catchments`, a polygon across 180 degrees in continuous
    longitudes such as 178..182) in the CRS ``crs_wkt`` of the file it was read from."""

    id: str
    geometry: dict
    crs_wkt: str


# --------------------------------------------------------------------------------------
# Polygons in


def split_source(source: str | os.PathLike) -> tuple[str, str | int | None]:
    """A vector source as QGIS writes it, ``path|layername=NAME`` or ``path|layerid=N``,
    as ``(path, layer)``: the layer's name, its index (int), or None for a plain path.

    Any other option after ``|`` (a ``subset`` filter, a ``geometrytype``) is refused with an
    :class:`~cwsc.errors.InputFileError` naming it: the backend would read every feature."""
    text = os.fspath(source)
    if "|" not in text or Path(text).exists():  # a file whose name holds a "|" is that file
        return text, None
    path, *options = text.split("|")
    layer: str | int | None = None
    for option in options:
        key, _, value = option.partition("=")
        key = key.strip().lower()
        if key == "layername" and value:
            layer = value
        elif key == "layerid" and value.strip().isdigit():
            layer = int(value)
        else:
            raise InputFileError(
                f"catchments: '{text}': the option '{option}' cannot be applied outside QGIS; give "
                f"'{path}' alone or with |layername=NAME, and export a filtered or selected layer to "
                "a file first"
            )
    return path, layer


def read_catchments(
    path: str | os.PathLike, id_field: str, layer: str | None = None
) -> tuple[list[CatchmentShape], list[NotScored]]:
    """The catchments of the vector file ``path`` (any format fiona reads; ``path|layername=NAME``
    as QGIS writes it picks a layer, as does ``layer``), with their ids from the attribute
    ``id_field``, in file order. A file of several layers without a layer named: its first
    polygon layer, with a warning naming the others.

    Returns ``(shapes, problems)``: a catchment with a null or empty geometry, or one going
    round a pole, is a :class:`NotScored` rather than a shape. An invalid polygon (a bow-tie,
    a hole outside its shell, a ring crossing itself) is repaired with shapely's
    ``make_valid`` (each ring on its own, then the holes subtracted from their shell) and a
    warning naming its id; a polygon across 180 degrees is kept in continuous longitudes.
    Refused, naming the file: a missing file or one fiona cannot read, a missing layer or a
    layer of no polygons (the polygon layers there are are listed), a missing ``id_field``
    (the fields there are are listed), a feature without an id, duplicated ids, a geometry
    that is not a (multi)polygon, a file without a CRS, longitude-latitude coordinates that
    are not degrees (a GeoJSON in metres, which RFC 7946 reads as degrees). An integer id
    ``7`` (or a float ``7.0``) reads as ``"7"``; Z values are dropped. A Shapefile without a
    ``.cpg`` whose text is UTF-8 reads as UTF-8 (GDAL would take it for Latin-1).
    """
    import fiona
    from fiona.errors import FionaError
    from shapely.errors import GEOSException

    file, from_source = split_source(path)
    if layer is not None and from_source is not None and layer != from_source:
        raise InputFileError(
            f"catchments: '{os.fspath(path)}' names the layer '{from_source}', and the layer '{layer}' "
            "was asked for too: give one"
        )
    layer = layer if layer is not None else from_source
    where = f"'{file}'"
    if not Path(file).exists():
        raise InputFileError(f"catchments: {where}: no such file")
    try:
        layers = fiona.listlayers(file)
    except (FionaError, OSError) as exc:
        raise InputFileError(f"catchments: {where} cannot be read as a vector file ({_short(exc)})") from None
    chosen = _choose_layer(file, where, layers, layer)
    encoding = _shapefile_encoding(file, chosen)
    try:
        with fiona.open(file, layer=chosen, **({"encoding": encoding} if encoding else {})) as src:
            crs_wkt = src.crs_wkt or ""
            names = list(src.schema.get("properties", {}))
            features = [(f.id, f.properties, f.geometry) for f in src]
    except (FionaError, OSError) as exc:
        raise InputFileError(f"catchments: {where} cannot be read as a vector file ({_short(exc)})") from None
    if len(layers) > 1:
        where = f"'{file}' (layer '{chosen}')"
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
    geographic = _lonlat_degrees(crs_wkt)
    shapes, problems, seen, dupes, no_id, not_polygon, repaired = [], [], {}, [], [], [], []
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
        if not np.isfinite(_coordinates(plain)).all():
            problems.append(
                NotScored(
                    cid, f"catchments: {where}: catchment {cid} has coordinates that are not numbers (NaN)"
                )
            )
            continue
        if geographic:
            _check_degrees(plain, file, where, cid)
        try:
            shape = _shapely(plain, unwrap=geographic)
        except (ValueError, GEOSException) as exc:
            problems.append(
                NotScored(
                    cid, f"catchments: {where}: catchment {cid}: its polygon cannot be read ({_short(exc)})"
                )
            )
            continue
        except _RoundPole:
            problems.append(
                NotScored(
                    cid,
                    f"catchments: {where}: catchment {cid} goes round a pole, so it has no place on a "
                    "longitude-latitude grid",
                )
            )
            continue
        valid, reason = _made_valid(shape)
        if reason:
            repaired.append(f"{cid} ({reason})")
        if valid is None:
            problems.append(
                NotScored(
                    cid, f"catchments: {where}: catchment {cid} has no area once its polygon is repaired"
                )
            )
            continue
        shapes.append(CatchmentShape(cid, _geojson(valid), crs_wkt))
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
    if repaired:
        log.warning(
            "catchments: %s: invalid polygons repaired with make_valid (each ring made valid, "
            "holes subtracted from their shell), check them: %s",
            where,
            _some(repaired),
        )
    log.info("catchments: %d polygons read from %s (ids from '%s')", len(shapes), where, key)
    return shapes, problems


def _choose_layer(file: str, where: str, layers: Sequence[str], wanted: str | int | None) -> str | None:
    """The layer to read: ``wanted`` (a name or an index) when it is a polygon layer, else the
    first polygon layer; refused naming the polygon layers there are."""
    import fiona

    if not layers:
        return None
    if isinstance(wanted, int):
        if wanted >= len(layers):
            raise InputFileError(
                f"catchments: {where} has no layer number {wanted} (it has {len(layers)}: "
                f"{', '.join(layers)})"
            )
        wanted = layers[wanted]
    if wanted is not None and wanted not in layers:
        raise InputFileError(f"catchments: {where} has no layer '{wanted}'; its layers: {', '.join(layers)}")
    if len(layers) == 1 and wanted is None:
        return layers[0]
    kinds = {}
    for name in layers:
        try:
            with fiona.open(file, layer=name) as src:
                kinds[name] = str(src.schema.get("geometry") or "None").replace("3D ", "")
        except Exception:  # noqa: BLE001 - a layer that cannot be opened holds no polygons we can read
            kinds[name] = "unreadable"
    # "Unknown" / "Any": a layer of mixed geometries, which may hold polygons
    polygonal = [n for n in layers if kinds[n] in (*_POLYGON_TYPES, "Unknown", "Any")]
    offer = (
        f"its polygon layers: {', '.join(polygonal)}; pick one as '{file}|layername={polygonal[0]}'"
        if polygonal
        else "it has no polygon layer"
    )
    if wanted is not None:
        if wanted not in polygonal:
            raise InputFileError(
                f"catchments: the layer '{wanted}' of {where} holds {kinds[wanted].lower()} geometries, "
                f"not polygons; {offer}"
            )
        return wanted
    if not polygonal:
        listed = ", ".join(f"{n} ({kinds[n].lower()})" for n in layers)
        raise InputFileError(f"catchments: {where} has no polygon layer among its layers: {listed}")
    log.warning(
        "catchments: %s has %d layers (%s): reading '%s'; pick another as '%s|layername=NAME'",
        where,
        len(layers),
        ", ".join(layers),
        polygonal[0],
        file,
    )
    return polygonal[0]


def _shapefile_encoding(file: str, layer: str | None) -> str | None:
    """``"utf-8"`` for a Shapefile with no ``.cpg`` and no code page in its ``.dbf`` whose text
    is valid UTF-8 with some non-ASCII letters (GDAL would read it as Latin-1, so "Müggelsee"
    came out as "MÃ¼ggelsee"); None otherwise (the file's own encoding stands)."""
    import fiona

    shp = Path(file)
    if shp.suffix.lower() != ".shp" or any(shp.with_suffix(s).exists() for s in (".cpg", ".CPG")):
        return None
    dbf = next((p for p in (shp.with_suffix(".dbf"), shp.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return None
    with open(dbf, "rb") as fh:
        head = fh.read(32)
    if len(head) < 30 or head[29] != 0:  # byte 29: the language driver (code page) id
        return None
    # Latin-1 maps every byte to one character, so the text read as Latin-1 gives back the bytes.
    with fiona.open(file, layer=layer, ignore_geometry=True) as src:
        texts = [v for f in src for v in f.properties.values() if isinstance(v, str) and not v.isascii()]
    if not texts:
        return None
    try:
        for text in texts:
            text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    log.info("catchments: '%s' has no .cpg file naming its encoding; its text is UTF-8, read as such", file)
    return "utf-8"


class _NotPolygon(Exception):
    pass


class _RoundPole(Exception):
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
        if len(points) < 4:  # two points and back: no ring
            if i == 0:
                return []
            continue
        rings.append(points)
    return rings


def _coordinates(plain: Mapping) -> np.ndarray:
    """Every (x, y) of a plain (multi)polygon, ``(n, 2)`` float64."""
    parts = [plain["coordinates"]] if plain["type"] == "Polygon" else plain["coordinates"]
    return np.asarray([p for part in parts for ring in part for p in ring], dtype=np.float64).reshape(-1, 2)


def _check_degrees(plain: Mapping, file: str, where: str, cid: str) -> None:
    """Refuse longitude-latitude coordinates outside -180..360 x -90..90: the file's CRS says
    degrees but they are something else (most often a projection's metres)."""
    xy = _coordinates(plain)
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    s = _DEGREE_SLACK
    if x0 >= -180 - s and x1 <= 360 + s and y0 >= -90 - s and y1 <= 90 + s:
        return
    geojson = Path(file).suffix.lower() in (".geojson", ".json")
    why = (
        "a GeoJSON file is always read as WGS84 longitude and latitude (RFC 7946); this one holds "
        "projected coordinates (metres?) without saying so"
        if geojson
        else "its CRS says longitude and latitude in degrees, but these are projected coordinates (metres?)"
    )
    raise InputFileError(
        f"catchments: {where}: catchment {cid} has coordinates x {x0:,.6g} to {x1:,.6g}, y {y0:,.6g} to "
        f"{y1:,.6g}, which are not degrees: {why}; save the layer with its true CRS (for example as a "
        "GeoPackage from QGIS)"
    )


def _some(items: Sequence[Any], n: int = 10) -> str:
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def _short(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


# --------------------------------------------------------------------------------------
# Geometry (shapely, pyproj)


def _shapely(geometry: Any, unwrap: bool = False):
    """A shapely (Multi)Polygon of a GeoJSON-like dict (or a shapely geometry); ``unwrap``:
    longitudes made continuous across 180 degrees (``_unwrap``)."""
    import shapely

    if isinstance(geometry, shapely.Geometry):
        geom = geometry
    else:
        gtype, coords = geometry["type"], geometry["coordinates"]
        if gtype not in _POLYGON_TYPES:
            raise ValueError(f"a {gtype} is not a polygon")
        # rings as arrays: shapely builds them in C (from lists of tuples it loops in Python)
        parts = [
            shapely.Polygon(
                np.asarray(part[0], dtype=np.float64)[:, :2],
                [np.asarray(h, dtype=np.float64)[:, :2] for h in part[1:]],
            )
            for part in ([coords] if gtype == "Polygon" else coords)
            if len(part)
        ]
        geom = parts[0] if gtype == "Polygon" and parts else shapely.MultiPolygon(parts)
    if geom.geom_type not in _POLYGON_TYPES:
        raise ValueError(f"a {geom.geom_type} is not a polygon")
    return _unwrap(geom) if unwrap else geom


def _unwrap(geom):
    """``geom`` (longitude-latitude) with each polygon's longitudes continuous: a step of more
    than 180 degrees between two points crosses 180 degrees (``179, -179`` becomes
    ``179, 181``), holes moved by 360 degrees next to their shell. A ring that does not close
    once unwrapped goes round a pole: :class:`_RoundPole`."""
    from shapely.geometry import MultiPolygon, Polygon

    def ring(coords: np.ndarray) -> np.ndarray:
        x = np.unwrap(coords[:, 0], period=360.0)
        if abs(x[-1] - x[0]) > 1e-9:
            raise _RoundPole
        return np.column_stack([x, coords[:, 1]])

    parts = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
    if all(np.ptp(np.asarray(p.exterior.coords)[:, 0]) <= 180.0 for p in parts if not p.is_empty):
        return geom  # no step can exceed 180 degrees: nothing to do (the usual case)
    out = []
    for p in parts:
        if p.is_empty:
            continue
        shell = ring(np.asarray(p.exterior.coords))
        middle = 0.5 * (shell[:, 0].min() + shell[:, 0].max())
        holes = []
        for h in p.interiors:
            hole = ring(np.asarray(h.coords))
            hole[:, 0] += 360.0 * round((middle - 0.5 * (hole[:, 0].min() + hole[:, 0].max())) / 360.0)
            holes.append(hole)
        out.append(Polygon(shell, holes))
    return MultiPolygon(out) if geom.geom_type == "MultiPolygon" else out[0]


def _made_valid(geom):
    """``(valid, reason)``: ``geom`` and None when valid; else ``geom`` repaired and the
    reason it was invalid (shapely's ``is_valid_reason``). The repair is shapely's
    ``make_valid`` of each shell and each hole on its own (a bow-tie keeps both lobes), then
    the holes subtracted from their shell and the parts unioned: a hole outside its shell
    removes nothing, overlapping parts count once. ``valid`` is None when nothing of area is
    left."""
    import shapely
    from shapely.geometry import Polygon

    if shapely.is_valid(geom):
        return geom, None
    reason = shapely.is_valid_reason(geom)
    pieces = []
    for part in geom.geoms if geom.geom_type == "MultiPolygon" else [geom]:
        shell = shapely.make_valid(Polygon(part.exterior))
        holes = [shapely.make_valid(Polygon(h)) for h in part.interiors]
        pieces.append(shapely.difference(shell, shapely.union_all(holes)) if holes else shell)
    fixed = shapely.union_all(pieces)
    parts = [g for g in shapely.get_parts(fixed) if g.geom_type == "Polygon" and g.area > 0]
    if not parts:
        return None, reason
    return (parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)), reason


def _valid(geom):
    """``geom`` made valid without a word (a caller's own geometry; files are repaired,
    with a warning, as they are read)."""
    return _made_valid(geom)[0]


def _geojson(geom) -> dict:
    """A shapely (Multi)Polygon as a GeoJSON-like dict of lists of (x, y) tuples."""
    from shapely.geometry import mapping

    plain = mapping(geom)
    if plain["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": [[tuple(p[:2]) for p in r] for r in plain["coordinates"]]}
    return {
        "type": "MultiPolygon",
        "coordinates": [[[tuple(p[:2]) for p in r] for r in part] for part in plain["coordinates"]],
    }


@functools.lru_cache(maxsize=64)
def _crs(wkt: str):
    """The pyproj CRS of a WKT (or PROJ string, ``EPSG:n``)."""
    from pyproj import CRS

    return CRS.from_user_input(wkt)


def _crs_name(wkt: str) -> str:
    try:
        crs = _crs(wkt)
        epsg = crs.to_epsg()
        return f"EPSG:{epsg}" if epsg else crs.name[:80]
    except Exception:  # noqa: BLE001 - a CRS that cannot be parsed is still worth naming
        return str(wkt)[:80]


@functools.lru_cache(maxsize=64)
def _same_crs(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return _crs(a) == _crs(b) or _crs(a).equals(_crs(b), ignore_axis_order=True)
    except Exception:  # noqa: BLE001
        return False


@functools.lru_cache(maxsize=64)
def _lonlat_degrees(wkt: str) -> bool:
    """Whether coordinates in ``wkt`` are longitude and latitude in degrees (x first, as
    fiona and rasterio give them)."""
    crs = _crs(wkt)
    if not crs.is_geographic:
        return False
    try:
        return abs(crs.axis_info[0].unit_conversion_factor - math.radians(1.0)) < 1e-12
    except (IndexError, AttributeError):
        return True


@functools.lru_cache(maxsize=64)
def _transformer(src: str, dst: str):
    from pyproj import Transformer

    return Transformer.from_crs(_crs(src), _crs(dst), always_xy=True)


def _transform(geom, src: str, dst: str, where: str, densify: bool = True):
    """``geom`` (shapely) from CRS ``src`` into ``dst`` (WKT, PROJ string or ``EPSG:n``), its
    edges densified first so that straight edges in ``src`` stay where they are; a point that
    cannot be transformed raises :class:`~cwsc.errors.InputFileError` naming ``where``."""
    import shapely

    if densify:
        x0, y0, x1, y1 = geom.bounds
        geom = shapely.segmentize(geom, max(math.hypot(x1 - x0, y1 - y0) / _DENSIFY, 1e-9))
    transformer = _transformer(src, dst)

    def move(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1], errcheck=False)
        return np.column_stack([x, y])

    try:
        out = shapely.transform(geom, move)
    except Exception as exc:  # noqa: BLE001 - any PROJ failure means the same to a user
        raise InputFileError(f"{where}: cannot be transformed to {_crs_name(dst)} ({_short(exc)})") from None
    if not np.isfinite(shapely.get_coordinates(out)).all():
        raise InputFileError(f"{where}: some of its points cannot be transformed to {_crs_name(dst)}")
    return out


def _lonlat(geometry: Any, crs_wkt: str, where: str):
    """The polygon in longitude-latitude degrees (WGS84 for a projected ``crs_wkt``),
    longitudes continuous across 180 degrees, valid."""
    geom = _shapely(geometry)
    if _lonlat_degrees(crs_wkt):
        return _valid(_unwrap(geom))
    return _valid(_unwrap(_transform(geom, crs_wkt, "EPSG:4326", where)))


def area_km2(geometry: Mapping, crs_wkt: str, where: str = "catchment") -> float:
    """Geodesic area (km2) of a Polygon / MultiPolygon in ``crs_wkt`` on the WGS84 ellipsoid:
    holes subtracted, parts summed.

    The edges are densified (straight in ``crs_wkt``), the polygon taken to longitude and
    latitude (across 180 degrees as it crosses it) and measured by pyproj's ``Geod`` (Karney's
    algorithm). ``where`` names the catchment in error messages.
    """
    import shapely
    from pyproj import Geod

    geom = _lonlat(geometry, crs_wkt, where)
    if geom is None or geom.is_empty:
        return 0.0
    x0, y0, x1, y1 = geom.bounds
    step = min(_DENSIFY_DEGREES, max(math.hypot(x1 - x0, y1 - y0) / _DENSIFY, 1e-9))
    dense = shapely.orient_polygons(shapely.segmentize(geom, step))
    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(dense)
    return abs(float(area)) / 1e6


def quadrangle_km2(lat0: float, lat1: float, width_degrees: float) -> np.ndarray | float:
    """Area (km2) on the WGS84 ellipsoid between the latitudes ``lat0`` and ``lat1``
    (degrees, scalars or arrays) over ``width_degrees`` of longitude: the closed form of the
    authalic latitude, exact for a cell of a longitude-latitude raster."""
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
    whole raster, in reading order), ``fractions`` (float64, ``(n,)``, the fraction of each
    cell's area inside the polygon, 0..1), ``cell_km2`` (float64, ``(n,)``, each whole cell's
    area in km2), and ``inside``: the fraction of the polygon's area that lies on the raster
    (0..1)."""

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
    try:
        factor = float(crs.axis_info[0].unit_conversion_factor)
    except (IndexError, AttributeError, TypeError, ValueError):
        factor = math.radians(1.0) if crs.is_geographic else 1.0
    if crs.is_geographic:
        to_degrees = math.degrees(factor)
        lat0 = (f + e * rows) * to_degrees
        lat1 = (f + e * (rows + 1)) * to_degrees
        return np.asarray(quadrangle_km2(np.clip(lat0, -90, 90), np.clip(lat1, -90, 90), abs(a) * to_degrees))
    return np.full(rows.shape, abs(a * e) * factor * factor / 1e6)


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

    The polygon is made valid, densified and transformed into the raster's CRS (pyproj), taken
    to the raster's pixel coordinates, and exactextract computes the fraction of every cell
    it touches (holes subtracted, parts summed). exactextract keeps the fractions in single
    precision: each is exact to about 1e-7 of a cell. Cells with a fraction below 1e-12 are
    left out. North-up (``e < 0``) and south-up rasters alike; a rotated transform is refused
    (:class:`~cwsc.errors.GridMismatch`), so is a raster without a CRS. A polygon that cannot
    be transformed raises :class:`~cwsc.errors.InputFileError` naming ``where``.

    For a geographic raster the fraction within a cell is taken by planar area in degrees
    (fine within one cell); the cells' true areas are in ``cell_km2``. The polygon is placed
    at every multiple of 360 degrees of longitude that meets the raster: a polygon across 180
    degrees on a -180..180 raster, or across Greenwich on a 0..360 raster, is used whole. A
    polygon entirely off the raster gives an empty cover (``inside == 0``);
    :func:`cover_catchments` turns that into a :class:`NotScored`.
    """
    import shapely
    from shapely import affinity

    a, c, e, f = _check_transform(transform, where)
    height, width = int(shape[0]), int(shape[1])
    if not raster_crs_wkt:
        raise GridMismatch(f"{where}: the raster has no CRS, so the catchment cannot be placed on it")
    geom = _shapely(geometry)
    if geom.is_empty or height <= 0 or width <= 0:
        return _empty_cover()
    source_degrees, raster_degrees = _lonlat_degrees(crs_wkt), _lonlat_degrees(raster_crs_wkt)
    if source_degrees:
        geom = _unwrap(geom)
    if not _same_crs(crs_wkt, raster_crs_wkt):
        geom = _transform(geom, crs_wkt, raster_crs_wkt, where)
        if raster_degrees:
            geom = _unwrap(geom)
    geom = _valid(geom)
    if geom is None:
        return _empty_cover()
    shifts = [0.0]
    if raster_degrees:
        lo, hi = sorted((c, c + a * width))
        x0, _, x1, _ = geom.bounds
        shifts = [360.0 * k for k in range(math.ceil((lo - x1) / 360.0), math.floor((hi - x0) / 360.0) + 1)]
        if not shifts:  # off the raster's longitudes at every multiple of 360 degrees
            return _empty_cover()
    # pixel coordinates: u = (x - c) / a along columns, v = (y - f) / e along rows
    pixel = affinity.affine_transform(geom, [1.0 / a, 0.0, 0.0, 1.0 / e, -c / a, -f / e])
    total = float(shapely.area(pixel))
    if total <= 0:
        return _empty_cover()
    cells, parts = [], []
    for shift in shifts:
        moved = affinity.translate(pixel, xoff=shift / a) if shift else pixel
        found, fractions = _exact_fractions(moved, width, height)
        cells.append(found)
        parts.append(fractions)
    # a cell met at two shifts (a raster wider than 360 degrees) adds up its parts
    flat, index = np.unique(np.concatenate(cells), return_inverse=True)
    fractions = np.bincount(index, weights=np.concatenate(parts), minlength=flat.size)
    keep = fractions > 1e-12
    flat, fractions = flat[keep], np.clip(fractions[keep], 0.0, 1.0)
    if flat.size == 0:
        return _empty_cover()
    rows_out, cols_out = flat // width, flat % width
    return CellCover(
        rows=rows_out,
        cols=cols_out,
        fractions=fractions,
        cell_km2=cell_km2(transform, raster_crs_wkt, rows_out),
        inside=float(min(1.0, fractions.sum() / total)),
    )


def _exact_fractions(pixel, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The cells ``row * width + col`` of a ``height`` x ``width`` raster that ``pixel`` (a
    valid polygon in pixel coordinates, u right, v down) covers, and the fraction of each:
    exactextract's ``coverage`` on the window of the raster under the polygon."""
    import shapely
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource

    u0, v0, u1, v1 = pixel.bounds
    c0, c1 = max(0, math.floor(u0)), min(width, math.ceil(u1))
    r0, r1 = max(0, math.floor(v0)), min(height, math.ceil(v1))
    if c0 >= c1 or r0 >= r1:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    # exactextract's rasters are north-up: y = -v puts row r between y = -r - 1 and y = -r
    upright = shapely.transform(pixel, lambda xy: xy * np.array([1.0, -1.0]))
    # the values are never used: a read-only array of zeros that takes no memory
    zeros = np.broadcast_to(np.zeros(1, dtype=np.uint8), (r1 - r0, c1 - c0))
    window = NumPyRasterSource(zeros, c0, -r1, c1, -r0)
    out = exact_extract(window, _one_feature(upright), ["cell_id", "coverage"], output="geojson")
    props = out[0]["properties"] if out else {}
    ids = np.asarray(props.get("cell_id", []), dtype=np.int64)
    fractions = np.asarray(props.get("coverage", []), dtype=np.float64)
    rows, cols = ids // (c1 - c0) + r0, ids % (c1 - c0) + c0
    return rows * width + cols, fractions


@functools.cache
def _feature_classes():
    """exactextract's feature classes for one shapely geometry handed over as WKB, as its own
    GDAL features are (GeoJSON text took three times as long as the fractions)."""
    import shapely
    from exactextract.feature import Feature, FeatureSource

    class WkbFeature(Feature):
        def __init__(self, geom):
            Feature.__init__(self)
            self.wkb = shapely.to_wkb(geom)
            self.values: dict[str, Any] = {}

        def geometry(self) -> bytes:
            return self.wkb

        def set(self, name, value):
            self.values[name] = value

        def get(self, name):
            return self.values[name]

        def fields(self):
            return list(self.values)

    class OneFeature(FeatureSource):
        def __init__(self, geom):
            FeatureSource.__init__(self)
            self.geom = geom

        def count(self) -> int:
            return 1

        def __iter__(self):
            yield WkbFeature(self.geom)

        def srs_wkt(self):
            return None

    return OneFeature


def _one_feature(geom):
    """An exactextract feature source of the one shapely geometry ``geom``."""
    return _feature_classes()(geom)


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
