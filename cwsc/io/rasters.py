"""Grids and rasters at the edges: read GeoTIFF / NetCDF stacks, write GeoTIFFs.

Inside the backend a raster is a float32 array shaped ``(bands, rows, cols)`` with NaN
where the file has nodata. On disk, float outputs use nodata -9999, are tiled and
compressed, carry the input CRS and transform, and name every band.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from cwsc.errors import GridMismatch, InputFileError, ParameterError, PeriodError
from cwsc.io.values import refuse_sentinels

log = logging.getLogger(__name__)


NODATA = -9999.0
_TIME_NAMES = ("time", "t", "month", "months", "date", "valid_time")
_Y_NAMES = ("lat", "latitude", "y", "rlat", "northing")
_X_NAMES = ("lon", "longitude", "x", "rlon", "easting")


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS (WKT, "" when unknown), affine transform (a, b, c, d, e, f), size."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def resolution(self) -> tuple[float, float]:
        return (abs(self.transform[0]), abs(self.transform[4]))

    def affine(self):
        from affine import Affine

        return Affine(*self.transform)

    def rasterio_crs(self):
        from rasterio.crs import CRS

        return CRS.from_wkt(self.crs) if self.crs else None

    def same_as(self, other: Grid) -> bool:
        """Same shape, transform (to 1e-6 of a cell) and CRS."""
        if self.shape != other.shape:
            return False
        cell = max(self.resolution) or 1.0
        if any(abs(a - b) > 1e-6 * cell for a, b in zip(self.transform, other.transform)):
            return False
        return _same_crs(self.crs, other.crs)

    def crs_name(self) -> str:
        """The CRS in a few words (``EPSG:4326``), or "no CRS"."""
        if not self.crs:
            return "no CRS"
        try:
            from rasterio.crs import CRS

            crs = CRS.from_wkt(self.crs)
            epsg = crs.to_epsg()
            return f"EPSG:{epsg}" if epsg else (crs.to_string()[:80] or "an unnamed CRS")
        except Exception:  # noqa: BLE001 - a CRS GDAL cannot parse is still worth naming
            return self.crs[:80]

    def describe(self) -> str:
        a, _, c, _, e, f = self.transform
        return (
            f"{self.width} x {self.height} cells of {abs(a):g} x {abs(e):g} from ({c:g}, {f:g}), "
            f"{self.crs_name()}"
        )

    def to_dict(self) -> dict:
        return {
            "crs": self.crs,
            "transform": list(self.transform),
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Grid:
        return cls(d["crs"], tuple(float(v) for v in d["transform"]), int(d["width"]), int(d["height"]))


def _same_crs(a: str, b: str) -> bool:
    if a == b or not a or not b:
        return True  # an unknown CRS is taken to be the other's
    try:
        from rasterio.crs import CRS

        return CRS.from_wkt(a) == CRS.from_wkt(b)
    except Exception:  # noqa: BLE001
        return False


@dataclass
class Raster:
    """An opened raster (GeoTIFF or any GDAL format, or one NetCDF variable).

    ``read`` returns float32 ``(bands, rows, cols)`` with NaN for nodata; ``rows`` reads a
    horizontal strip so callers can bound memory on large grids.
    """

    path: str
    label: str
    grid: Grid
    count: int
    descriptions: list[str]
    _ds: object = field(repr=False, default=None)
    _kind: str = "gdal"
    _nodata: float | None = None
    _flip_y: bool = False
    _flip_x: bool = False
    _roll_x: int = 0
    #: the month of each band when the file says (see :mod:`cwsc.io.months`), else None
    months: list[int] | None = None
    calendar: str = "standard"
    #: the units the file declares ("" when it declares none)
    units: str = ""
    #: what was assumed while reading (said once in the log by the caller)
    notes: list[str] = field(default_factory=list)
    #: (first row, first column) of ``grid`` in the file's grid, when cut to a window
    _offset: tuple[int, int] = (0, 0)
    #: the option that declares this input's nodata (named when an undeclared one is found)
    nodata_option: str = ""

    def window(self, grid: Grid) -> Raster:
        """This raster read on ``grid``, a window of its own grid (same cells, fewer of
        them: see :func:`cwsc.io.regrid.cut`); a ``BadInput`` when it is not one."""
        a, _, c, _, e, f = self.grid.transform
        col = (grid.transform[2] - c) / a
        row = (grid.transform[5] - f) / e
        r0, c0 = int(round(row)), int(round(col))
        if (
            abs(col - c0) > 1e-6
            or abs(row - r0) > 1e-6
            or grid.resolution != self.grid.resolution
            or r0 < 0
            or c0 < 0
            or r0 + grid.height > self.grid.height
            or c0 + grid.width > self.grid.width
        ):
            raise GridMismatch(
                f"{self.label}: '{self.path}': {grid.describe()} is not a window of "
                f"its grid {self.grid.describe()}"
            )
        self._offset = (self._offset[0] + r0, self._offset[1] + c0)
        self.grid = grid
        return self

    def read(self, rows: slice | None = None, bands: Sequence[int] | None = None) -> np.ndarray:
        rows = rows or slice(0, self.grid.height)
        r0, r1 = rows.start or 0, min(rows.stop, self.grid.height)
        try:
            dr, dc = self._offset
            data = self._read(r0 + dr, r1 + dr, bands)
            if dc or data.shape[-1] != self.grid.width:
                data = data[..., dc : dc + self.grid.width]
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged file is the user's to fix
            raise InputFileError(
                f"{self.label}: '{self.path}' could not be read (rows {r0} to {r1}): "
                f"{_short(exc)}; the file may be truncated or damaged"
            ) from None
        nodata = self._nodata
        if not (
            isinstance(data, np.ndarray)
            and data.dtype == np.float32
            and data.flags.owndata
            and data.flags.writeable
        ):
            data = np.array(data, dtype=np.float32, copy=True)  # views of NetCDF data: own it
        if nodata is not None and not math.isnan(nodata):
            data[data == np.float32(nodata)] = np.nan
        # The gate's first check, on every read: an undeclared -9999 would be read as data.
        refuse_sentinels(
            data,
            f"{self.label}: '{self.path}'",
            self.nodata_option,
            r0,
            (lambda i: bands[i] + 1) if bands is not None else (lambda i: i + 1),
        )
        return data

    def _read(self, r0: int, r1: int, bands: Sequence[int] | None) -> np.ndarray:
        if self._kind == "gdal":
            from rasterio.windows import Window

            idx = [b + 1 for b in bands] if bands is not None else None
            data = self._ds.read(idx, window=Window(0, r0, self._ds.width, r1 - r0), out_dtype="float32")
        else:
            da = self._ds
            if self._flip_y:
                h = da.shape[-2]
                data = da[..., h - r1 : h - r0, :].values[..., ::-1, :]
            else:
                data = da[..., r0:r1, :].values
            if self._roll_x:
                data = np.roll(data, -self._roll_x, axis=-1)
            if self._flip_x:
                data = data[..., ::-1]
            data = np.asarray(data, dtype=np.float32)
            if data.ndim == 2:
                data = data[None]
            if bands is not None:
                data = data[list(bands)]
        return data

    def close(self) -> None:
        if self._ds is not None and self._kind == "gdal":
            self._ds.close()
        self._ds = None

    def __enter__(self) -> Raster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_raster(
    path: str | os.PathLike,
    label: str,
    variable: str | None = None,
    time_dim: str | None = None,
    nodata: float | None = None,
) -> Raster:
    """Open ``path`` for the input called ``label`` (used in every error message).

    NetCDF files are read with xarray: ``variable`` and ``time_dim`` are found when there is
    one candidate, and must be named when there are several. ``nodata``: a value to read as
    nodata instead of (or besides none in) the file's declaration.
    """
    raster = _open_raster(path, label, variable, time_dim)
    if nodata is not None:
        raster._nodata = float(nodata)
    return raster


def _open_raster(path: str | os.PathLike, label: str, variable: str | None, time_dim: str | None) -> Raster:
    path = str(path)
    if not os.path.exists(path):
        raise InputFileError(f"{label}: file '{path}' does not exist")
    if os.path.isdir(path):
        raise InputFileError(f"{label}: '{path}' is a folder, not a raster file")
    if path.lower().endswith((".nc", ".nc4", ".netcdf", ".cdf")) or _is_netcdf(path):
        return _open_netcdf(path, label, variable, time_dim)
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        ds = rasterio.open(path)
    except (RasterioIOError, Exception) as exc:  # noqa: BLE001
        raise InputFileError(f"{label}: '{path}' is not a raster GDAL can read ({_short(exc)})") from None
    crs = ds.crs.to_wkt() if ds.crs else ""
    t = ds.transform
    grid = Grid(crs, (t.a, t.b, t.c, t.d, t.e, t.f), ds.width, ds.height)
    descriptions = [
        d or f"{Path(path).stem}_{i + 1}" if ds.count > 1 else d or Path(path).stem
        for i, d in enumerate(ds.descriptions)
    ]
    raster = Raster(path, label, grid, ds.count, descriptions, ds, "gdal", ds.nodata)
    _gdal_months_and_units(raster, ds)
    return raster


def _gdal_months_and_units(raster: Raster, ds) -> None:
    """Months from GDAL's NetCDF band metadata or from dates in the band descriptions or band
    metadata; units from the band unit type or metadata."""
    from cwsc.io import months as M

    tags = ds.tags()
    band_tags = [ds.tags(i + 1) for i in range(ds.count)]
    time_units = next((v for k, v in tags.items() if k.lower().endswith("time#units")), None)
    if time_units and all("NETCDF_DIM_time" in t for t in band_tags):
        calendar = next((v for k, v in tags.items() if k.lower().endswith("time#calendar")), "standard")
        raster.months = M.from_cf(
            [float(t["NETCDF_DIM_time"]) for t in band_tags],
            time_units,
            calendar,
            f"{raster.label}: '{raster.path}'",
        )
        raster.calendar = calendar
    else:
        found = [M.from_text(d) if d else None for d in ds.descriptions]
        if any(f is None for f in found):
            found = [
                next(
                    (
                        M.from_text(v)
                        for k, v in t.items()
                        if k.lower() in ("date", "time", "month", "valid_time")
                    ),
                    None,
                )
                for t in band_tags
            ]
        if ds.count > 0 and all(f is not None for f in found):
            raster.months = found
    units = [u for u in (ds.units or ()) if u]
    if not units:
        units = [
            v
            for t in band_tags
            for k, v in t.items()
            if k.lower().endswith("units") and not k.lower().startswith(("time", "lat", "lon", "x#", "y#"))
        ]
    if not units:
        units = [
            v
            for k, v in tags.items()
            if k.lower() == "units"
            or (
                k.lower().endswith("#units")
                and not k.lower().startswith(("time", "lat", "lon", "x#", "y#", "nc_"))
            )
        ]
    raster.units = units[0] if units else ""


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _is_netcdf(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(8)
    return head[:3] == b"CDF" or head.startswith(b"\x89HDF")


def _classic_netcdf_size(path: str) -> tuple[int, int] | None:
    """(bytes the header promises, bytes on disk) of a classic (NetCDF-3: CDF-1, 2 or 5) file;
    None for any other file. A file cut short (a copy or download that stopped) is read by
    the NetCDF library as fill values or zeros without a word, so the reader compares these."""
    import struct

    with open(path, "rb") as fh:
        data = fh.read(1 << 20)
        size = os.fstat(fh.fileno()).st_size
    if len(data) < 8 or data[:3] != b"CDF" or data[3] not in (1, 2, 5):
        return None
    version = data[3]
    pos = 4
    wide = version == 5

    def integer(long: bool = False) -> int:
        nonlocal pos
        fmt, n = (">q", 8) if long else (">i", 4)
        value = struct.unpack_from(fmt, data, pos)[0]
        pos += n
        return value

    def count() -> int:
        return integer(wide)

    def name() -> str:
        nonlocal pos
        n = count()
        text = data[pos : pos + n]
        pos += (n + 3) // 4 * 4
        return text.decode("utf-8", "replace")

    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 4, 11: 8, 12: 8}

    def attributes() -> None:
        nonlocal pos
        integer()  # NC_ATTRIBUTE or ABSENT
        for _ in range(count()):
            name()
            kind = integer()
            n = count()
            pos += (n * sizes.get(kind, 1) + 3) // 4 * 4

    try:
        records = integer(wide)
        if records < 0:  # streaming: the count of records was never written
            return None
        integer()  # NC_DIMENSION or ABSENT
        dims = []
        for _ in range(count()):
            name()
            dims.append(count())
        attributes()
        integer()  # NC_VARIABLE or ABSENT
        end, record_size, record_vars = 0, 0, []
        for _ in range(count()):
            name()
            ids = [count() for _ in range(count())]
            attributes()
            integer()  # type
            vsize = count()
            begin = integer(version != 1)
            if ids and dims[ids[0]] == 0:  # the record (unlimited) dimension
                record_vars.append((begin, vsize))
                record_size += vsize
            else:
                end = max(end, begin + vsize)
        if len(record_vars) == 1:  # one record variable: its records are not padded
            record_size = record_vars[0][1]
        for begin, vsize in record_vars:
            end = max(end, begin + max(records - 1, 0) * record_size + vsize if records else begin)
    except (struct.error, IndexError):
        return (size + 1, size)  # the header itself is cut short
    return (end, size)


def _open_netcdf(path: str, label: str, variable: str | None, time_dim: str | None) -> Raster:
    import xarray as xr

    if os.path.getsize(path) == 0:
        raise InputFileError(f"{label}: '{path}' is empty (0 bytes): not a NetCDF file")
    promised = _classic_netcdf_size(path)
    if promised is not None and promised[1] < promised[0]:
        raise InputFileError(
            f"{label}: '{path}' is damaged: it is cut short ({promised[1]:,} of the {promised[0]:,} bytes "
            "its header describes); copy or download it again"
        )
    try:
        ds = xr.open_dataset(path, decode_times=False, mask_and_scale=True)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(
            f"{label}: '{path}' is not a NetCDF file xarray can read ({_short(exc)})"
        ) from None
    if variable is None:
        candidates = [n for n, v in ds.data_vars.items() if v.ndim >= 2 and _spatial_dims(v.dims) is not None]
        if not candidates:
            raise InputFileError(f"{label}: '{path}' holds no variable on a latitude/longitude grid")
        if len(candidates) > 1:
            raise InputFileError(
                f"{label}: '{path}' holds several variables ({', '.join(candidates)}): name the one to use"
            )
        variable = candidates[0]
    if variable not in ds.data_vars:
        raise InputFileError(
            f"{label}: '{path}' has no variable '{variable}' (it has {', '.join(ds.data_vars) or 'none'})"
        )
    da = ds[variable]
    spatial = _spatial_dims(da.dims)
    if spatial is None:
        raise InputFileError(f"{label}: variable '{variable}' in '{path}' has no y/x (lat/lon) dimensions")
    ydim, xdim = spatial
    others = [d for d in da.dims if d not in (ydim, xdim)]
    if time_dim is not None and time_dim not in da.dims:
        raise InputFileError(
            f"{label}: variable '{variable}' in '{path}' has no dimension '{time_dim}' "
            f"(it has {', '.join(da.dims)})"
        )
    if time_dim is None and others:
        named = [d for d in others if d.lower() in _TIME_NAMES]
        if len(others) == 1 and (named or da.sizes[others[0]] > 1):
            time_dim = others[0]
        elif len(named) == 1:
            time_dim = named[0]
        else:
            raise InputFileError(
                f"{label}: cannot tell the time dimension of '{variable}' in '{path}' "
                f"among {', '.join(others)}: name it"
            )
    extra = [d for d in others if d != time_dim]
    if any(da.sizes[d] > 1 for d in extra):
        shown = ", ".join(f"{d} ({da.sizes[d]} values)" for d in extra)
        raise InputFileError(
            f"{label}: variable '{variable}' in '{path}' has a dimension besides time and space: "
            f"{shown}; select one level first (for example cdo sellevidx or xarray's isel) and "
            "give that file"
        )
    if extra:
        da = da.isel({d: 0 for d in extra})
    da = da.transpose(*([time_dim] if time_dim else []), ydim, xdim)
    if ydim not in ds.variables or xdim not in ds.variables:
        two_d = [
            n
            for n, v in ds.variables.items()
            if v.ndim == 2
            and (
                n.lower() in ("lat", "lon", "latitude", "longitude", "nav_lat", "nav_lon")
                or str(v.attrs.get("standard_name", "")) in ("latitude", "longitude")
            )
        ]
        if two_d:
            raise GridMismatch(
                f"{label}: '{path}' is on a curvilinear grid (2-D {' and '.join(two_d)}): regrid it "
                "to a regular latitude/longitude or projected grid first (for example cdo remapcon)"
            )
        raise InputFileError(
            f"{label}: '{path}' has no coordinate values for its {ydim}/{xdim} dimensions, so "
            "where its cells lie is unknown"
        )
    y = np.asarray(ds[ydim].values, float)
    x = np.asarray(ds[xdim].values, float)
    if len(x) < 2 or len(y) < 2:
        raise InputFileError(f"{label}: '{path}' needs at least 2 x 2 cells")
    dx, dy = np.diff(x), np.diff(y)
    if not (np.allclose(dx, dx[0], rtol=1e-4) and np.allclose(dy, dy[0], rtol=1e-4)):
        raise InputFileError(f"{label}: the coordinates of '{path}' are not a regular grid")
    notes: list[str] = []
    flip = dy[0] > 0  # rows go north to south in every GeoTIFF we write
    resx, resy = abs(dx[0]), abs(dy[0])
    geographic = (
        ydim.lower() in ("lat", "latitude")
        or xdim.lower() in ("lon", "longitude")
        or str(ds[xdim].attrs.get("units", "") if xdim in ds.variables else "").lower()
        in ("degrees_east", "degree_east", "degrees_e")
    )
    flip_x = dx[0] < 0  # east to west
    xs = x[::-1] if flip_x else x
    roll = 0
    if geographic and xs.max() > 180.0 + resx / 2:
        if xs.min() >= 180.0:  # wholly east of the antimeridian: shift by 360
            xs = xs - 360.0
        elif abs(len(xs) * resx - 360.0) < resx / 2:  # global 0..360: roll to -180..180
            roll = int(np.searchsorted(xs, 180.0))
            xs = np.concatenate([xs[roll:] - 360.0, xs[:roll]])
            notes.append(f"{label}: '{path}' has longitudes 0 to 360; read as -180 to 180")
            if flip_x:  # rolling happens on the file's order: undo the flip first
                roll = len(x) - roll
    west = xs[0] - resx / 2
    north = y.max() + resy / 2
    crs = _netcdf_crs(ds, da, geographic, label, path, notes)
    grid = Grid(crs, (resx, 0.0, west, 0.0, -resy, north), len(x), len(y))
    count = da.sizes[time_dim] if time_dim else 1
    descriptions = [f"{variable} {i + 1}" for i in range(count)] if time_dim else [variable]
    nodata = da.attrs.get("missing_value")
    nodata = float(np.ravel(nodata)[0]) if nodata is not None else None
    raster = Raster(
        path,
        label,
        grid,
        count,
        descriptions,
        da,
        "netcdf",
        nodata,
        bool(flip),
        bool(flip_x),
        roll,
        notes=notes,
    )
    raster.units = str(da.attrs.get("units", "") or "")
    if time_dim and time_dim in ds.variables:
        from cwsc.io import months as M

        tvar = ds[time_dim]
        t_units = tvar.attrs.get("units")
        if t_units and "since" in str(t_units):
            calendar = str(tvar.attrs.get("calendar", "standard"))
            raster.months = M.from_cf(tvar.values, str(t_units), calendar, f"{label}: '{path}'")
            if "calendar" not in tvar.attrs:
                _say_default_calendar(raster, tvar.values, str(t_units), label, path, notes)
            raster.calendar = calendar
            descriptions[:] = [f"{variable} {M.label(m)}" for m in raster.months]
        elif np.issubdtype(np.asarray(tvar.values).dtype, np.datetime64):
            stamps = np.asarray(tvar.values).astype("datetime64[M]").astype(int)
            raster.months = [int(v) + 1970 * 12 for v in stamps]
    return raster


def _say_default_calendar(
    raster: Raster, values, units: str, label: str, path: str, notes: list[str]
) -> None:
    """A time axis without a ``calendar`` attribute is read in the CF default calendar
    (standard: Julian before 1582-10-15); said in the log, and as a warning when a proleptic
    Gregorian reading (what many writers mean) gives other months."""
    from cwsc.io import months as M

    notes.append(
        f"{label}: '{path}' has no calendar attribute: its times are read in the CF default calendar (standard)"
    )
    try:
        other = M.from_cf(values, units, "proleptic_gregorian", f"{label}: '{path}'")
    except PeriodError:
        return
    if other != raster.months:
        log.warning(
            f"{label}: '{path}' has no calendar attribute and its times ({units}) fall in other months "
            f"in the CF default calendar (first month {M.label(raster.months[0])}) than in the proleptic "
            f"Gregorian one ({M.label(other[0])}); read in the CF default. If the file was written in "
            "proleptic Gregorian, set its time variable's calendar attribute, or give its first month "
            "(the *_START option)"
        )


def _netcdf_crs(ds, da, geographic: bool, label: str, path: str, notes: list[str]) -> str:
    """The CRS from the variable's ``grid_mapping`` (``crs_wkt``, ``spatial_ref``), a
    ``spatial_ref`` variable, else EPSG:4326 for degree coordinates (said in ``notes``)."""
    from rasterio.crs import CRS

    holders = []
    mapping = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if mapping and str(mapping) in ds.variables:
        holders.append(ds[str(mapping)])
    for name in ("spatial_ref", "crs"):
        if name in ds.variables:
            holders.append(ds[name])
    for var in holders:
        for key in ("crs_wkt", "spatial_ref"):
            wkt = var.attrs.get(key)
            if wkt:
                try:
                    return CRS.from_wkt(str(wkt)).to_wkt()
                except Exception:  # noqa: BLE001 - a broken WKT: try the next holder
                    continue
        epsg = var.attrs.get("epsg_code") or var.attrs.get("EPSG")
        if epsg:
            try:
                return CRS.from_string(str(epsg) if ":" in str(epsg) else f"EPSG:{epsg}").to_wkt()
            except Exception:  # noqa: BLE001
                continue
    if geographic:
        notes.append(f"{label}: '{path}' declares no CRS; its degree coordinates are read as EPSG:4326")
        return CRS.from_epsg(4326).to_wkt()
    return ""


def _spatial_dims(dims: Sequence[str]) -> tuple[str, str] | None:
    lower = [d.lower() for d in dims]
    y = next((dims[i] for i, d in enumerate(lower) if d in _Y_NAMES), None)
    x = next((dims[i] for i, d in enumerate(lower) if d in _X_NAMES), None)
    if y is None or x is None:
        return None
    return (y, x)


@dataclass(frozen=True)
class Extent:
    """A box in the target grid's CRS: west, south, east, north."""

    west: float
    south: float
    east: float
    north: float


def parse_extent(text: str | None, grid: Grid) -> Extent | None:
    """``"xmin,xmax,ymin,ymax"`` (QGIS's order) with an optional ``[EPSG:xxxx]`` (or WKT in
    brackets) giving its CRS, in which case it is transformed to ``grid``'s CRS; else it is
    taken in ``grid``'s CRS. None without text."""
    if text in (None, ""):
        return None
    text = str(text)
    body, _, crs = text.partition("[")
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in body.replace(" ", "").split(","))
    except ValueError:
        raise ParameterError(f"EXTENT: '{text}' is not xmin,xmax,ymin,ymax") from None
    if not (xmin < xmax and ymin < ymax):
        raise ParameterError(f"EXTENT: '{text}' is empty (xmin must be below xmax, ymin below ymax)")
    crs = crs.rstrip("]").strip()
    if crs and grid.crs:
        from rasterio.crs import CRS
        from rasterio.warp import transform_bounds

        try:
            xmin, ymin, xmax, ymax = transform_bounds(
                CRS.from_user_input(crs), grid.rasterio_crs(), xmin, ymin, xmax, ymax
            )
        except Exception as exc:  # noqa: BLE001 - any CRS failure is the user's to fix
            raise ParameterError(f"EXTENT: its CRS '{crs}' cannot be used ({exc})") from None
    return Extent(xmin, ymin, xmax, ymax)


def cut_grid(grid: Grid, extent: Extent | None, label: str = "EXTENT") -> Grid:
    """``grid`` cut to the cells that touch ``extent`` (the whole grid without one): a
    window of ``grid`` (see :meth:`Raster.window`)."""
    if extent is None:
        return grid
    a, _, c, _, e, f = grid.transform
    col0 = int(np.floor((extent.west - c) / a))
    col1 = int(np.ceil((extent.east - c) / a))
    row0 = int(np.floor((extent.north - f) / e))
    row1 = int(np.ceil((extent.south - f) / e))
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, grid.width), min(row1, grid.height)
    if col1 <= col0 or row1 <= row0:
        raise GridMismatch(
            f"{label}: ({extent.west:g}, {extent.south:g}, {extent.east:g}, "
            f"{extent.north:g}) does not overlap the grid {grid.describe()}"
        )
    return Grid(grid.crs, (a, 0.0, c + col0 * a, 0.0, e, f + row0 * e), col1 - col0, row1 - row0)


def check_same_grid(rasters: Sequence[Raster]) -> Grid:
    """All rasters on the first one's grid, or a ``BadInput`` naming the one that is not."""
    first = rasters[0]
    for r in rasters[1:]:
        if not r.grid.same_as(first.grid):
            what = "grid"
            if (
                r.grid.shape == first.grid.shape
                and r.grid.crs
                and first.grid.crs
                and not _same_crs(r.grid.crs, first.grid.crs)
            ):
                what = "coordinate reference system"
            raise GridMismatch(
                f"{r.label}: '{r.path}' is on a different {what} ({r.grid.describe()}) "
                f"from {first.label} '{first.path}' ({first.grid.describe()})"
            )
    known = next((r for r in rasters if r.grid.crs), None)
    if known is not None:
        for r in rasters:
            if not r.grid.crs:
                log.warning(
                    f"{r.label}: '{r.path}' has no CRS; its cells match "
                    f"{known.label} '{known.path}', so it is read in "
                    f"{known.grid.crs_name()}"
                )
    return first.grid


def is_window(grid: Grid, window: Grid) -> bool:
    """Whether ``window`` is a part of ``grid``: same CRS (both known, or both unknown) and
    cells, whole cells inside."""
    if (
        bool(grid.crs) != bool(window.crs)
        or not _same_crs(grid.crs, window.crs)
        or not np.allclose(grid.resolution, window.resolution, rtol=1e-9, atol=0)
    ):
        return False
    a, _, c, _, e, f = grid.transform
    col = (window.transform[2] - c) / a
    row = (window.transform[5] - f) / e
    return (
        abs(col - round(col)) < 1e-6
        and abs(row - round(row)) < 1e-6
        and round(col) >= 0
        and round(row) >= 0
        and round(col) + window.width <= grid.width
        and round(row) + window.height <= grid.height
    )


def warn_if_resampled(raster: Raster, grid: Grid, resampling: str = "bilinear", note: str = "") -> bool:
    """Warn (an event naming the input and both grids) when ``raster`` is not on ``grid`` and
    will be resampled onto it; True when it will (a window of its grid is read as is)."""
    if raster.grid.same_as(grid) or is_window(raster.grid, grid):
        return False

    log.warning(
        f"{raster.label}: '{raster.path}' is on another grid ({raster.grid.describe()}); "
        f"it is resampled ({resampling}) onto {grid.describe()}{note}"
    )
    return True


def read_aligned(raster: Raster, grid: Grid, resampling: str = "bilinear") -> np.ndarray:
    """Read ``raster`` on ``grid``: as is when the grids match, else warped onto it.

    Returns float32 ``(bands, rows, cols)`` with NaN outside the source or at nodata.
    A grid that cannot be aligned (unknown CRS on one side, no overlap) is a ``BadInput``.
    """
    if raster.grid.same_as(grid):
        return raster.read()
    if is_window(raster.grid, grid):
        return raster.window(grid).read()
    if not raster.grid.crs or not grid.crs:
        raise GridMismatch(
            f"{raster.label}: '{raster.path}' is on another grid "
            f"({raster.grid.describe()}) and one of the two has no CRS, so it cannot "
            f"be aligned to {grid.describe()}"
        )
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    src = raster.read()
    out = np.full((raster.count, grid.height, grid.width), np.nan, np.float32)
    method = getattr(Resampling, resampling)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reproject(
                src,
                out,
                src_transform=raster.grid.affine(),
                src_crs=raster.grid.rasterio_crs(),
                dst_transform=grid.affine(),
                dst_crs=grid.rasterio_crs(),
                src_nodata=np.nan,
                dst_nodata=np.nan,
                resampling=method,
            )
    except Exception as exc:  # noqa: BLE001
        raise GridMismatch(
            f"{raster.label}: '{raster.path}' cannot be aligned to the grid {grid.describe()} ({_short(exc)})"
        ) from None
    if np.isnan(out).all():
        raise GridMismatch(f"{raster.label}: '{raster.path}' does not overlap the grid {grid.describe()}")
    return out


def geotiff_profile(grid: Grid, count: int, dtype: str = "float32") -> dict:
    """A tiled, compressed GeoTIFF profile on ``grid`` with nodata -9999."""
    profile = {
        "driver": "GTiff",
        "dtype": dtype,
        "count": count,
        "width": grid.width,
        "height": grid.height,
        "transform": grid.affine(),
        "crs": grid.rasterio_crs(),
        "nodata": NODATA,
        "compress": "deflate",
        "predictor": 3 if dtype.startswith("float") else 2,
        "BIGTIFF": "IF_SAFER",
    }
    if grid.width >= 16 and grid.height >= 16:
        block = (
            256 if min(grid.width, grid.height) >= 256 else 16 * max(1, min(grid.width, grid.height) // 16)
        )
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    return profile


def write_raster(
    path: str | os.PathLike,
    data: np.ndarray,
    grid: Grid,
    descriptions: Sequence[str],
    overviews: bool = False,
    tags: dict | None = None,
    units: str | None = None,
) -> Path:
    """Write float ``data`` shaped ``(bands, rows, cols)`` (NaN = nodata) to ``path`` (a
    command writes to its :class:`~cwsc.runtime.outputs.Outputs` temporary, committed at the end)."""
    import rasterio

    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if data.shape[1:] != grid.shape:
        raise ValueError(f"data shape {data.shape} does not match grid {grid.shape}")
    with rasterio.open(path, "w", **geotiff_profile(grid, data.shape[0])) as dst:
        filled = np.where(np.isfinite(data), data, np.float32(NODATA))
        dst.write(filled.astype(np.float32, copy=False))
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
        if tags:
            dst.update_tags(**{k: str(v) for k, v in tags.items()})
        if units:
            dst.units = [units] * data.shape[0]
    if overviews:
        build_overviews(path)
    return Path(path)


def build_overviews(path: str | os.PathLike) -> None:
    """Internal overviews (averages) so QGIS draws large outputs fast."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path, "r+") as dst:
        factors = [f for f in (2, 4, 8, 16, 32, 64) if min(dst.width, dst.height) // f >= 64]
        if factors:
            dst.build_overviews(factors, Resampling.average)
            dst.update_tags(ns="rio_overview", resampling="average")


def row_strips(height: int, width: int, bands: int, budget_bytes: int = 256 * 2**20) -> Iterator[slice]:
    """Strips: horizontal bands of rows whose float32 data for ``bands`` bands fits
    ``budget_bytes`` (at least one row each)."""
    per_row = max(1, width * bands * 4)
    step = max(1, budget_bytes // per_row)
    for r0 in range(0, height, step):
        yield slice(r0, min(height, r0 + step))


def raster_bytes(width: int, height: int, bands: int, overviews: bool = False) -> int:
    """Uncompressed float32 size of a raster output (an upper bound of the deflated file)."""
    n = int(width) * int(height) * int(bands) * 4
    return n + n // 3 if overviews else n
