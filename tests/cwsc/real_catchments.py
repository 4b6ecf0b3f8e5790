"""Real gauged catchments for tests and benchmarks, read at test time out of pinned PyPI archives.

Nine catchments, monthly precipitation, potential evapotranspiration (PET) and runoff in
mm/month, and monthly mean air temperature in degrees C where the package ships one:

========================  ======================  ==========================================
name                      source                  notes
========================  ======================  ==========================================
``leaf_river``            holmes-hydro 3.5.0      Leaf River (Mississippi), 1957-1987; no T
``au_saumon``             holmes-hydro 3.5.0      Au Saumon (Quebec), 1975-03 to 2003
``baskatong``             holmes-hydro 3.5.0      Baskatong (Quebec), 1980-2017
``lahn_marburg``          hydpy 6.4.0 (LahnH)     Lahn at Marburg, 1989-11 to 2020
``dill_asslar``           hydpy 6.4.0 (LahnH)     Dill at Asslar
``lahn_leun``             hydpy 6.4.0 (LahnH)     Lahn at Leun (whole area above the gauge)
``lahn_kalkofen``         hydpy 6.4.0 (LahnH)     Lahn at Kalkofen (whole area above the gauge)
``fulda``                 spotpy 1.6.7            Fulda at Grebenau, 1979-1988
``leaf_river_1952``       spotpy 1.6.7            Leaf River, 1952-08 to 1962-09; no T
========================  ======================  ==========================================

The data are not in this repository (hydpy's Lahn data are CC BY-NC-SA). The first use
downloads the three archives with ``python -m pip download --no-deps`` (pinned versions, and
the files' sha256 checked against the hashes PyPI publishes) into ``$CWSC_REAL_DATA``
(default ``~/.cache/cwsc/real-catchments``) and afterwards reads the files straight out of the
archives with :mod:`zipfile` / :mod:`tarfile`; nothing is installed or unpacked. A lock file
keeps two processes from downloading at once, and each archive is renamed into place only once
complete and checked, so a reader never sees a partial file. Where pip cannot get an archive
(no registry reachable) :class:`DataUnavailable` is raised; tests skip on it.

hydpy 6.4.0 publishes, besides Windows wheels, only a source archive; ``pip download`` of a
source archive prepares its metadata, which for hydpy needs Cython, so the module downloads the
(pure-data-wise identical) Windows wheel for CPython 3.11 instead (``--platform win_amd64``:
nothing is built or installed). A ``hydpy-6.4.0.tar.gz`` placed in the cache by hand (sha256
as published) is read as well.

Daily values become monthly ones as sums (precipitation, PET, runoff) or means
(temperature) over **complete months only**: a partial first or last month, and any month with
a missing day or a missing (NaN) value in any of the series, is dropped, and of what remains
the longest run of consecutive months is kept (none of the nine loses an inner month in these
package versions). Runoff given in m3/s is converted with the catchment area: mm/month =
sum over the month's days of Q * 86400 s / (area_km2 * 1e6 m2) * 1000 mm/m.

Where the package ships no PET (hydpy's LahnH carries a climatological "normal" PET only, and
spotpy's Fulda file none), PET is Thornthwaite's (:func:`thornthwaite`) from the monthly mean
temperature and the latitude.
"""

from __future__ import annotations

import calendar
import contextlib
import csv
import datetime as dt
import hashlib
import io
import math
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

NAMES: tuple[str, ...] = (
    "leaf_river",
    "au_saumon",
    "baskatong",
    "lahn_marburg",
    "dill_asslar",
    "lahn_leun",
    "lahn_kalkofen",
    "fulda",
    "leaf_river_1952",
)


class DataUnavailable(RuntimeError):
    """An archive could not be downloaded (no package registry reachable, no pip)."""


@dataclass(frozen=True)
class Catchment:
    """One gauged catchment's monthly series (``months`` long, consecutive, complete months)."""

    name: str  # e.g. "au_saumon"
    title: str  # "Au Saumon, Quebec"
    source: str  # "holmes-hydro 3.5.0"
    area_km2: float  # NaN where neither the package nor a cited source gives it
    latitude: float  # approximate, degrees north
    months: list[str]  # "YYYY-MM"
    precipitation: np.ndarray  # mm/month, float64, (months,)
    pet: np.ndarray  # mm/month
    runoff: np.ndarray  # mm/month
    temperature: np.ndarray | None  # monthly mean air temperature, degrees C; None: not shipped


# ------------------------------------------------------------------------------------- archives


@dataclass(frozen=True)
class _Archive:
    project: str
    version: str
    files: tuple[tuple[str, str], ...]  # (file name, sha256): the first is downloaded
    pip_args: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.project}=={self.version}"


_ARCHIVES = {
    "holmes": _Archive(
        "holmes-hydro",
        "3.5.0",
        (
            (
                "holmes_hydro-3.5.0-py3-none-any.whl",
                "0112dfbc2edd950bce6f0c2991b6daed9b9c06ddc8c5b03cc0823ba1e415eb3d",
            ),
        ),
    ),
    "spotpy": _Archive(
        "spotpy",
        "1.6.7",
        (
            (
                "spotpy-1.6.7-py3-none-any.whl",
                "add77c4e17f49ecf54865a0f04008aee375d0c64c09a0fe6b3be392f7a280808",
            ),
        ),
    ),
    "hydpy": _Archive(
        "hydpy",
        "6.4.0",
        (
            (
                "hydpy-6.4.0-cp311-cp311-win_amd64.whl",
                "e203584aedc30c2253fc2dda875aac67f202203b10af96d5f586b0753d8df2be",
            ),
            ("hydpy-6.4.0.tar.gz", "9615b3d71e40562e2d6056c6fffd91eed23bd39de47b668bd665f0184f37eb49"),
        ),
        ("--platform", "win_amd64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"),
    ),
}


def cache_dir() -> Path:
    """Where the archives are kept: ``$CWSC_REAL_DATA`` or ``~/.cache/cwsc/real-catchments``."""
    return Path(os.environ.get("CWSC_REAL_DATA") or Path.home() / ".cache" / "cwsc" / "real-catchments")


@lru_cache(maxsize=None)
def _sha256(path: Path, size: int, mtime: float) -> str:  # noqa: ARG001 (size, mtime: cache key)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _good(path: Path, sha: str) -> bool:
    if not path.is_file():
        return False
    st = path.stat()
    return _sha256(path, st.st_size, st.st_mtime) == sha


@contextlib.contextmanager
def _locked(folder: Path):
    """An exclusive lock on ``folder/.download.lock`` (POSIX; elsewhere only the atomic rename
    protects the archives)."""
    with open(folder / ".download.lock", "a+") as handle:
        try:
            import fcntl
        except ImportError:  # Windows
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def archive_path(key: str) -> Path:
    """The checked archive of ``key`` ("holmes", "spotpy" or "hydpy"), downloaded on first use."""
    spec = _ARCHIVES[key]
    folder = cache_dir()
    for name, sha in spec.files:
        if _good(folder / name, sha):
            return folder / name
    folder.mkdir(parents=True, exist_ok=True)
    name, sha = spec.files[0]
    target = folder / name
    with _locked(folder):
        if _good(target, sha):  # another process finished it while this one waited
            return target
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--disable-pip-version-check",
                "--timeout",
                "30",
                "--retries",
                "1",
                "--dest",
                tmp,
                *spec.pip_args,
                spec.spec,
            ]
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise DataUnavailable(f"pip download {spec.spec} did not finish: {exc}") from exc
            got = Path(tmp) / name
            if run.returncode != 0 or not got.is_file():
                tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
                raise DataUnavailable(
                    f"pip download {spec.spec} failed (is a package registry reachable?): " + " | ".join(tail)
                )
            st = got.stat()
            digest = _sha256(got, st.st_size, st.st_mtime)
            if digest != sha:
                raise RuntimeError(f"{name}: sha256 {digest}, expected {sha} (the registry's file changed?)")
            os.replace(got, target)
    return target


@lru_cache(maxsize=None)
def _members(path: Path) -> dict[str, str]:
    """Archive member names, keyed by their path inside the package (the sdist's top folder
    ``hydpy-6.4.0/`` dropped)."""
    if path.suffix == ".whl" or zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    else:
        with tarfile.open(path) as t:
            names = t.getnames()
    out = {}
    for n in names:
        out[n] = n
        top, _, rest = n.partition("/")
        if rest and re.fullmatch(r"[\w.-]+-\d[\w.]*", top):
            out.setdefault(rest, n)
    return out


def read_member(key: str, member: str) -> bytes:
    """The bytes of ``member`` (a path inside the package, e.g. ``holmes/data/...``) of the
    archive ``key``."""
    path = archive_path(key)
    names = _members(path)
    if member not in names:
        raise KeyError(f"{member} not in {path.name}")
    if path.suffix == ".whl" or zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return z.read(names[member])
    with tarfile.open(path) as t:
        f = t.extractfile(names[member])
        if f is None:
            raise KeyError(f"{member} in {path.name} is not a file")
        return f.read()


# ------------------------------------------------------------------------------- monthly series


def _month_key(d: dt.date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _next_month(key: str) -> str:
    y, m = int(key[:4]), int(key[5:])
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}"


def monthly(
    dates: Sequence[dt.date], sums: dict[str, np.ndarray], means: dict[str, np.ndarray] | None = None
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Daily series to monthly ones: ``sums`` summed, ``means`` averaged, over complete months
    only (every calendar day present once and finite in every series), then the longest run of
    consecutive complete months."""
    means = means or {}
    series = {**sums, **means}
    days = np.array([d.toordinal() for d in dates])
    if np.any(np.diff(days) <= 0):
        raise ValueError("daily dates must be strictly increasing")
    finite = np.ones(len(dates), bool)
    for v in series.values():
        if len(v) != len(dates):
            raise ValueError("a daily series does not match its dates")
        finite &= np.isfinite(v)
    keys = [_month_key(d) for d in dates]
    bounds: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        bounds.setdefault(k, [i, i])[1] = i + 1
    complete = []
    for k, (a, b) in bounds.items():
        length = calendar.monthrange(int(k[:4]), int(k[5:]))[1]
        if b - a == length and finite[a:b].all():
            complete.append(k)
    runs: list[list[str]] = []
    for k in complete:
        if runs and _next_month(runs[-1][-1]) == k:
            runs[-1].append(k)
        else:
            runs.append([k])
    months = max(runs, key=len) if runs else []
    out = {}
    for name, v in series.items():
        agg = np.mean if name in means else np.sum
        out[name] = np.array([agg(v[slice(*bounds[k])]) for k in months], dtype=np.float64)
    return months, out


def _m3s_to_mm_per_day(q: np.ndarray, area_km2: float) -> np.ndarray:
    return np.asarray(q, np.float64) * 86400.0 / (area_km2 * 1e6) * 1000.0


def day_length(latitude: float, days: Iterable[int]) -> np.ndarray:
    """Astronomical day length (hours) at ``latitude`` on the given days of the year (FAO-56,
    eqs. 24, 25, 34: declination 0.409 sin(2 pi J / 365 - 1.39), sunset hour angle
    arccos(-tan(lat) tan(decl)), N = 24 / pi * that angle)."""
    j = np.asarray(list(days), np.float64)
    decl = 0.409 * np.sin(2 * np.pi * j / 365.0 - 1.39)
    x = np.clip(-math.tan(math.radians(latitude)) * np.tan(decl), -1.0, 1.0)
    return 24.0 / np.pi * np.arccos(x)


def thornthwaite(months: Sequence[str], temperature: np.ndarray, latitude: float) -> np.ndarray:
    """Thornthwaite (1948) PET, mm/month, from monthly mean temperature T (degrees C).

    Heat index I = sum over the 12 calendar months of (T_clim / 5) ** 1.514 (T_clim: the
    record's mean temperature of that calendar month, negative ones as 0); exponent
    a = 6.75e-7 I^3 - 7.71e-5 I^2 + 1.792e-2 I + 0.49239. Unadjusted PET (30-day month of 12-hour
    days) is 0 for T <= 0, 16 (10 T / I) ** a for 0 < T < 26.5, and
    -415.85 + 32.24 T - 0.43 T^2 for T >= 26.5 (Willmott et al. 1985); the month's PET is that
    times (N / 12) (d / 30), N the mean astronomical day length (hours) over the month's d days
    at ``latitude`` (:func:`day_length`).
    """
    t = np.asarray(temperature, np.float64)
    cal = np.array([int(m[5:]) for m in months])
    clim = np.array([t[cal == k].mean() if np.any(cal == k) else 0.0 for k in range(1, 13)])
    heat = float(np.sum((np.maximum(clim, 0.0) / 5.0) ** 1.514))
    a = 6.75e-7 * heat**3 - 7.71e-5 * heat**2 + 1.792e-2 * heat + 0.49239
    tp = np.maximum(t, 0.0)
    base = np.where(t <= 0.0, 0.0, 16.0 * (10.0 * tp / max(heat, 1e-9)) ** a)
    base = np.where(t >= 26.5, -415.85 + 32.24 * t - 0.43 * t**2, base)
    out = np.empty_like(t)
    for i, m in enumerate(months):
        y, mo = int(m[:4]), int(m[5:])
        d = calendar.monthrange(y, mo)[1]
        first = dt.date(y, mo, 1).timetuple().tm_yday
        n = float(day_length(latitude, range(first, first + d)).mean())
        out[i] = base[i] * (n / 12.0) * (d / 30.0)
    return out


# ------------------------------------------------------------------------------------ readers

#: Leaf River near Collins, Mississippi (USGS 02472000): 1944 km2, the area spotpy 1.6.7 uses to
#: turn HYMOD's mm/day into m3/s (``examples/spot_setup_hymod_exe.py``:
#: ``self.Factor = 1944 * (1000 * 1000) / (1000 * 60 * 60 * 24)``). The same catchment as
#: holmes' ``Leaf``.
LEAF_AREA_KM2 = 1944.0
#: Fulda at Grebenau: ``area = 2976.41e6  # sq m`` in spotpy 1.6.7's
#: ``examples/spot_setup_cmf_lumped.py``.
FULDA_AREA_KM2 = 2976.41
#: Own (sub)catchment areas of hydpy's LahnH project, km2: ``area(...)`` in
#: ``hydpy/data/HydPy-H-Lahn/control/default/land_*.py`` (read from the archive; these are the
#: values of hydpy 6.4.0, used to check what was read).
LAHN_OWN_AREAS = {"lahn_marb": 1660.2, "dill_assl": 692.3, "lahn_leun": 1212.5, "lahn_kalk": 1733.0}
#: Upstream subcatchments of each LahnH gauge (its own one included).
LAHN_UPSTREAM = {
    "lahn_marb": ("lahn_marb",),
    "dill_assl": ("dill_assl",),
    "lahn_leun": ("lahn_leun", "lahn_marb", "dill_assl"),
    "lahn_kalk": ("lahn_kalk", "lahn_leun", "lahn_marb", "dill_assl"),
}
LAHN_LATITUDE = 50.6
FULDA_LATITUDE = 50.75  # Grebenau, Hesse
LEAF_LATITUDE = 31.7  # Collins, Mississippi

_HOLMES = "holmes/data/"
_LAHN = "hydpy/data/HydPy-H-Lahn/"


def _holmes(file: str) -> tuple[list[dt.date], dict[str, np.ndarray]]:
    text = read_member("holmes", _HOLMES + file).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    dates = [dt.date.fromisoformat(r["Date"]) for r in rows]

    def col(k):
        return np.array([float(r[k]) if r[k].strip() not in ("", "NA", "nan") else np.nan for r in rows])

    return dates, {k: col(k) for k in rows[0] if k != "Date"}


def _holmes_latitude(catchment: str) -> float:
    text = read_member("holmes", f"{_HOLMES}{catchment}_CemaNeigeInfo.csv").decode("utf-8")
    info = dict(row[:2] for row in csv.reader(io.StringIO(text)) if len(row) >= 2)
    return float(info["Lat"])


def _load_holmes(name: str) -> Catchment:
    file, title = {
        "leaf_river": ("Leaf", "Leaf River, Mississippi"),
        "au_saumon": ("Au Saumon", "Au Saumon, Quebec"),
        "baskatong": ("Baskatong", "Baskatong, Quebec"),
    }[name]
    dates, d = _holmes(f"{file}_Observations.csv")
    means = {"temperature": d["T"]} if "T" in d else {}
    months, m = monthly(dates, {"precipitation": d["P"], "pet": d["E0"], "runoff": d["Qo"]}, means)
    if name == "leaf_river":
        area, lat = LEAF_AREA_KM2, LEAF_LATITUDE
    else:
        area, lat = math.nan, _holmes_latitude(file)
    return Catchment(
        name,
        title,
        "holmes-hydro 3.5.0",
        area,
        lat,
        months,
        m["precipitation"],
        m["pet"],
        m["runoff"],
        m.get("temperature"),
    )


def _asc(member: str) -> tuple[list[dt.date], np.ndarray]:
    """A hydpy ASCII series: ``Timegrid("start", "end", "1d")`` then one value a line."""
    text = read_member("hydpy", member).decode("utf-8")
    head = re.match(r'\s*Timegrid\(\s*"([^"]+)"\s*,\s*"([^"]+)"\s*,\s*"([^"]+)"\s*\)', text)
    if not head or head.group(3) != "1d":
        raise ValueError(f"{member}: not a daily hydpy series")
    start = dt.date.fromisoformat(head.group(1)[:10])
    end = dt.date.fromisoformat(head.group(2)[:10])
    values = np.array(text[head.end() :].split(), dtype=np.float64)
    n = (end - start).days
    if values.size != n:
        raise ValueError(f"{member}: {values.size} values for {n} days")
    return [start + dt.timedelta(days=i) for i in range(n)], values


def _lahn_area(sub: str) -> float:
    text = read_member("hydpy", f"{_LAHN}control/default/land_{sub}.py").decode("utf-8")
    return float(re.search(r"^area\(\s*([0-9.]+)\s*\)", text, re.M).group(1))


def _load_lahn(name: str) -> Catchment:
    gauge, title = {
        "lahn_marburg": ("lahn_marb", "Lahn at Marburg, Hesse"),
        "dill_asslar": ("dill_assl", "Dill at Asslar, Hesse"),
        "lahn_leun": ("lahn_leun", "Lahn at Leun, Hesse"),
        "lahn_kalkofen": ("lahn_kalk", "Lahn at Kalkofen, Hesse"),
    }[name]
    subs = LAHN_UPSTREAM[gauge]
    areas = {s: _lahn_area(s) for s in subs}
    area = sum(areas.values())
    dates, q = _asc(f"{_LAHN}series/default/{gauge}_obs_q.asc")
    p = np.zeros_like(q)
    t = np.zeros_like(q)
    for s in subs:
        for var, acc in (("p", p), ("t", t)):
            d, v = _asc(f"{_LAHN}series/default/land_{s}_hland_96_input_{var}.asc")
            if d != dates:
                raise ValueError(f"LahnH: {s} {var} and {gauge} discharge differ in dates")
            acc += v * areas[s] / area
    months, m = monthly(
        dates, {"precipitation": p, "runoff": _m3s_to_mm_per_day(q, area)}, {"temperature": t}
    )
    pet = thornthwaite(months, m["temperature"], LAHN_LATITUDE)
    return Catchment(
        name,
        title,
        "hydpy 6.4.0",
        area,
        LAHN_LATITUDE,
        months,
        m["precipitation"],
        pet,
        m["runoff"],
        m["temperature"],
    )


def _load_fulda() -> Catchment:
    text = read_member("spotpy", "spotpy/examples/cmf_data/fulda_climate.csv").decode("utf-8")
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].startswith("#")]
    header, rows = rows[0], rows[1:]
    col = {k.strip().lower(): i for i, k in enumerate(header)}
    dates = [dt.datetime.strptime(r[col["date"]], "%d.%m.%Y").date() for r in rows]

    def values(k):
        return np.array([float(r[col[k]]) for r in rows])

    months, m = monthly(
        dates,
        {"precipitation": values("prec"), "runoff": _m3s_to_mm_per_day(values("q"), FULDA_AREA_KM2)},
        {"temperature": values("tmean")},
    )
    return Catchment(
        "fulda",
        "Fulda at Grebenau, Hesse",
        "spotpy 1.6.7",
        FULDA_AREA_KM2,
        FULDA_LATITUDE,
        months,
        m["precipitation"],
        thornthwaite(months, m["temperature"], FULDA_LATITUDE),
        m["runoff"],
        m["temperature"],
    )


def _load_leaf_1952() -> Catchment:
    raw = read_member("spotpy", "spotpy/examples/hymod_exe/bound.txt").decode("ascii")
    d = np.loadtxt(io.StringIO(raw), ndmin=2)
    dates = [dt.date(int(y), int(mo), int(day)) for day, mo, y in d[:, :3]]
    months, m = monthly(
        dates,
        {
            "precipitation": d[:, 5:9].sum(axis=1),
            "pet": d[:, 4],
            "runoff": _m3s_to_mm_per_day(d[:, 3], LEAF_AREA_KM2),
        },
    )
    return Catchment(
        "leaf_river_1952",
        "Leaf River, Mississippi (1952-1962)",
        "spotpy 1.6.7",
        LEAF_AREA_KM2,
        LEAF_LATITUDE,
        months,
        m["precipitation"],
        m["pet"],
        m["runoff"],
        None,
    )


@lru_cache(maxsize=None)
def _load(name: str) -> Catchment:
    if name in ("leaf_river", "au_saumon", "baskatong"):
        return _load_holmes(name)
    if name in ("lahn_marburg", "dill_asslar", "lahn_leun", "lahn_kalkofen"):
        return _load_lahn(name)
    if name == "fulda":
        return _load_fulda()
    if name == "leaf_river_1952":
        return _load_leaf_1952()
    raise KeyError(f"unknown catchment {name!r}; one of {', '.join(NAMES)}")


def catchment(name: str) -> Catchment:
    """The catchment ``name`` (one of :data:`NAMES`), downloading its archive on first use.

    Per source:

    * holmes-hydro 3.5.0 (``holmes/data/<name>_Observations.csv``, MIT): daily P, E0 (PET,
      Oudin, mm/day), Qo (streamflow, mm/day) and, for the two Quebec catchments, T. The package
      ships no areas (Q is already mm/day): Leaf River's is spotpy's 1944 km2 (same gauge,
      :data:`LEAF_AREA_KM2`); Au Saumon's and Baskatong's are NaN. The latitude of those two
      is ``Lat`` of ``<name>_CemaNeigeInfo.csv``. Leaf River has no temperature (None).
    * hydpy 6.4.0, project ``HydPy-H-Lahn`` (CC BY-NC-SA; ``series/default/*.asc``): daily
      P (``land_<sub>_hland_96_input_p``, mm/day) and T (``..._input_t``, degrees C) of each
      subcatchment and observed discharge (``<gauge>_obs_q``, m3/s) at each gauge. Lahn at
      Leun and at Kalkofen are nested (Marburg and Asslar drain into Leun, Leun into Kalkofen);
      they are taken as their **whole** upstream area (the sum of the subcatchments' ``area``
      from ``control/default/land_<sub>.py``: Leun 3565.0 km2, Kalkofen 5298.0 km2) with
      area-weighted P and T, and the observed discharge as it is. The alternative, a
      subcatchment's own runoff as downstream minus upstream discharge, goes negative in some
      months (Kalkofen - Leun: travel time and gauge errors) and is not a gauged series; the
      whole-area one gives runoff ratios of 0.33-0.36 beside 0.35 (Marburg) and 0.43 (Asslar).
      PET: Thornthwaite from the (area-weighted) monthly temperature at 50.6 N.
    * spotpy 1.6.7: ``examples/cmf_data/fulda_climate.csv`` (Fulda at Grebenau, 1979-1988:
      daily Prec mm/day, tmean degrees C, Q m3/s; area 2976.41 km2 from
      ``spot_setup_cmf_lumped.py``; no PET shipped: Thornthwaite at 50.75 N) and
      ``examples/hymod_exe/bound.txt`` (Leaf River 1952-07-28 to 1962-09-30: day, month, year,
      Q m3/s, PET mm/day, then precipitation in four 6-hour parts, summed; area 1944 km2 from
      ``spot_setup_hymod_exe.py``; no temperature: None. The sheet ``bound_units.xlsx`` beside
      it labels the second value column "airtemp", but its values, 0-8 with a summer peak, are
      the PET that HYMOD reads there).

    The arrays are the caller's own copies.
    """
    c = _load(name)
    return replace(
        c,
        months=list(c.months),
        precipitation=c.precipitation.copy(),
        pet=c.pet.copy(),
        runoff=c.runoff.copy(),
        temperature=None if c.temperature is None else c.temperature.copy(),
    )


def all_catchments() -> list[Catchment]:
    """The nine catchments of :data:`NAMES`, in that order."""
    return [catchment(n) for n in NAMES]


def write_series_csv(
    path,
    catchments: Sequence[Catchment],
    columns: Sequence[str] = ("runoff", "precipitation", "pet", "temperature"),
) -> Path:
    """Write ``id,month,<columns>`` (one row per catchment and month, ``month`` as YYYY-MM, ``id``
    the catchment's name); a column a catchment lacks (temperature None) is left empty."""
    path = Path(path)
    allowed = ("runoff", "precipitation", "pet", "temperature")
    for c in columns:
        if c not in allowed:
            raise ValueError(f"unknown column {c!r}; one of {', '.join(allowed)}")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "month", *columns])
        for c in catchments:
            arrays = [getattr(c, k) for k in columns]
            for i, m in enumerate(c.months):
                w.writerow([c.name, m, *("" if a is None else repr(float(a[i])) for a in arrays)])
    return path
