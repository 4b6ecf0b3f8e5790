"""The demo region: a twin experiment whose true CWSC is known (``python -m cwsc demo-data``).

Real global forcing cannot be downloaded everywhere, so the demo builds a synthetic but
plausible region: Europe at 0.5 degree (real coastline from the ``global-land-mask``
package), 30 years of monthly precipitation and PET, 13 predictor rasters named and
scaled like the original inputs, a true CWSC field tied to the predictors in a
nonlinear way, and runoff simulated by the three monthly models from the truth with
noise. Some cells get runoff so noisy that their calibration fails, so the KGE mask
matters. Everything is deterministic for a seed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cwsc.io import rasters as io
from cwsc.io.catchments import write_catchments, write_table
from cwsc.io.rasters import Grid

#: predictor file stem -> band description (units in brackets, as the original inputs)
from cwsc.progress import progress
from cwsc.synthetic.fields import smooth_field
from cwsc.synthetic.gauges import GAUGE_FIELDS, SERIES_FIELDS, demo_gauges

log = logging.getLogger(__name__)


PREDICTORS = {
    "precipitation": "mean annual precipitation (mm/yr)",
    "pet": "mean annual potential evapotranspiration (mm/yr)",
    "temperature": "mean annual air temperature (degC)",
    "aridity": "aridity index PET/P (-)",
    "runoff": "mean annual runoff (mm/yr)",
    "runoff_coefficient": "runoff coefficient Q/P (-)",
    "elevation": "elevation (m)",
    "slope": "slope (degrees)",
    "sand": "sand content (%)",
    "clay": "clay content (%)",
    "soil_depth": "depth to bedrock (cm)",
    "lai": "leaf area index (m2/m2)",
    "tree_cover": "tree cover (%)",
}


@dataclass(frozen=True)
class DemoRegion:
    """The region's extent (degrees, cell edges), resolution and record length."""

    west: float = -10.0
    east: float = 30.0
    south: float = 36.0
    north: float = 60.0
    resolution: float = 0.5
    years: int = 30
    start_year: int = 1981
    failed_fraction: float = 0.12  # cells whose runoff is mostly noise

    @property
    def grid(self) -> Grid:
        from rasterio.crs import CRS

        width = int(round((self.east - self.west) / self.resolution))
        height = int(round((self.north - self.south) / self.resolution))
        return Grid(
            CRS.from_epsg(4326).to_wkt(),
            (self.resolution, 0.0, self.west, 0.0, -self.resolution, self.north),
            width,
            height,
        )


def _z(a: np.ndarray, land: np.ndarray) -> np.ndarray:
    return (a - a[land].mean()) / (a[land].std() + 1e-12)


def land_mask(grid: Grid) -> np.ndarray:
    """True over land at the cell centres, from the ``global-land-mask`` package (1 km)."""
    from global_land_mask import globe

    a, _, c, _, e, f = grid.transform
    lon = c + a * (np.arange(grid.width) + 0.5)
    lat = f + e * (np.arange(grid.height) + 0.5)
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    return globe.is_land(lat2, lon2)


def true_cwsc(p: dict[str, np.ndarray], land: np.ndarray) -> np.ndarray:
    """The known CWSC (mm): deeper soils, forests and drier climates store more, steep slopes less.

    Nonlinear on purpose (a saturating aridity effect, a soil-texture interaction) so that a
    linear regression on the predictors cannot recover it.
    """
    z = (
        0.55 * _z(np.log(p["soil_depth"]), land)
        + 0.40 * _z(p["tree_cover"], land)
        + 0.45 * np.tanh(1.2 * _z(p["aridity"], land))
        - 0.30 * _z(np.sqrt(p["slope"]), land)
        + 0.25 * _z(p["clay"], land) * _z(p["sand"], land)
        + 0.20 * np.maximum(_z(p["lai"], land), 0) ** 2
    )
    return np.clip(np.exp(5.05 + 0.62 * _z(z, land)), 10.0, 990.0)


def monthly_temperature(annual: np.ndarray, lat: np.ndarray, months: int, seed: int) -> np.ndarray:
    """(months, rows, cols) monthly mean air temperature (C) around the annual mean field,
    the first month a January: a seasonal swing growing from 7 C at 36 N to 11 C at 60 N
    (continental Europe's), and month-to-month anomalies of 1.5 C. Its own random stream, so
    the rest of the demo does not depend on whether it is made."""
    rng = np.random.default_rng([seed, 7])
    m = np.arange(months) % 12
    swing = 7.0 + 4.0 * np.clip((lat - 36.0) / 24.0, 0, 1)
    season = -np.cos(2 * np.pi * (m[:, None, None] + 0.5) / 12)
    return annual[None] + swing[None] * season + rng.normal(0.0, 1.5, (months,) + annual.shape)


def make_demo(
    region: DemoRegion, seed: int, formulation: str = "conserving", snow: bool = False
) -> dict[str, np.ndarray]:
    """Build every field of the demo; arrays are (rows, cols) or (months, rows, cols), NaN off
    land. ``formulation``: the model formulation that makes the runoff (see
    :mod:`cwsc.hydro.models`). ``snow``: the snowy variant: monthly air temperature too, and
    the runoff made from the snow store's rain and melt (:mod:`cwsc.hydro.snow`), so that the
    Alps, the Carpathians and Scandinavia need the temperature to calibrate well."""
    from cwsc.hydro.models import simulate

    rng = np.random.default_rng(seed)
    grid = region.grid
    shape = grid.shape
    land = land_mask(grid)
    a, _, c, _, e, f = grid.transform
    lat = (f + e * (np.arange(grid.height) + 0.5))[:, None] * np.ones(shape)
    lon = (c + a * (np.arange(grid.width) + 0.5))[None, :] * np.ones(shape)

    # Terrain: a few mountain ranges on a rolling plain.
    elevation = 250 + 220 * smooth_field(rng, shape, 6)
    for cy, cx, h, w in [
        (46.3, 9.0, 2200, 1.8),
        (42.7, 1.0, 1600, 1.2),
        (40.5, -4.0, 900, 3.0),
        (49.0, 22.0, 1100, 2.5),
        (44.0, 17.0, 900, 2.0),
        (61.0, 8.0, 1200, 3.0),
    ]:
        elevation += h * np.exp(-(((lat - cy) / w) ** 2 + ((lon - cx) / (1.6 * w)) ** 2))
    elevation += 180 * np.abs(smooth_field(rng, shape, 1.5))
    elevation = np.maximum(elevation, 2.0)
    gy, gx = np.gradient(elevation, 55_000.0, 55_000.0 * np.cos(np.radians(45)))
    slope = np.degrees(np.arctan(np.hypot(gx, gy))) * 30 + 0.2 + 0.6 * np.abs(smooth_field(rng, shape, 2))

    # Climate: wetter on western coasts and mountains, drier to the south-east.
    temperature = 27.0 - 0.55 * (lat - 30.0) - 0.0062 * elevation + 1.2 * smooth_field(rng, shape, 5)
    wet = 900 - 14 * (lon + 10) + 14 * (lat - 45) + 0.45 * elevation + 160 * smooth_field(rng, shape, 4)
    annual_p = np.clip(wet, 220, 2600)
    annual_pet = np.clip(430 + 36 * temperature + 60 * smooth_field(rng, shape, 5), 300, 1500)

    months = region.years * 12
    m = np.arange(months) % 12
    mediterranean = np.clip((46.0 - lat) / 8.0, 0, 1)  # winter-wet south, even north
    p_season = 1 + (0.75 * mediterranean)[None] * np.cos(2 * np.pi * (m[:, None, None] - 0.5) / 12)
    pet_season = 1 + (0.55 + 0.35 * np.clip((lat - 36) / 24, 0, 1))[None] * np.cos(
        2 * np.pi * (m[:, None, None] - 6.5) / 12
    )
    shape_k = 2.2
    p_noise = rng.gamma(shape_k, 1 / shape_k, (months,) + shape)
    year_anomaly = np.repeat(rng.normal(1.0, 0.15, (region.years,) + shape).clip(0.5, 1.6), 12, axis=0)
    precip = (annual_p / 12)[None] * p_season * p_noise * year_anomaly
    pet = (annual_pet / 12)[None] * pet_season * rng.normal(1.0, 0.06, (months,) + shape).clip(0.7, 1.3)
    precip, pet = np.maximum(precip, 0), np.maximum(pet, 0)

    # Soils and vegetation.
    sand = np.clip(45 + 18 * smooth_field(rng, shape, 3), 5, 92)
    clay = np.clip(40 - 0.35 * sand + 7 * smooth_field(rng, shape, 3), 3, 60)
    soil_depth = np.exp(np.log(110) + 0.45 * smooth_field(rng, shape, 3) - 0.0004 * elevation - 0.03 * slope)
    aridity = annual_pet / annual_p
    lai = np.clip(
        5.5 / (1 + np.exp(2.2 * (aridity - 1.1))) * np.clip((temperature + 2) / 10, 0.2, 1)
        + 0.4 * smooth_field(rng, shape, 2),
        0.2,
        7,
    )
    tree_cover = np.clip(12 * lai + 8 * smooth_field(rng, shape, 2) - 0.01 * elevation, 0, 95)
    fields = {
        "precipitation": annual_p,
        "pet": annual_pet,
        "temperature": temperature,
        "aridity": aridity,
        "elevation": elevation,
        "slope": slope,
        "sand": sand,
        "clay": clay,
        "soil_depth": soil_depth,
        "lai": lai,
        "tree_cover": tree_cover,
    }
    truth = true_cwsc(fields, land)

    # Runoff: in each cell one of the three models (in spatially coherent regions, as the
    # best model structure changes with climate and landscape) runs from the true CWSC, its
    # other parameters smooth fields inside their bounds.
    cells = np.flatnonzero(land.ravel())
    p_c = precip.reshape(months, -1)[:, cells].T.astype(np.float64)
    t_series = None
    if snow:
        from cwsc.hydro.snow import liquid_water

        t_series = monthly_temperature(temperature, lat, months, seed)
        p_c = liquid_water(p_c, t_series.reshape(months, -1)[:, cells].T)
    e_c = pet.reshape(months, -1)[:, cells].T.astype(np.float64)
    sc_c = truth.ravel()[cells]

    def field_in(lo: float, hi: float, scale: float = 4) -> np.ndarray:
        u = 1 / (1 + np.exp(-1.3 * smooth_field(rng, shape, scale)))
        return (lo + (hi - lo) * u).ravel()[cells]

    params = {
        "DWBM": {
            "sc": sc_c,
            "alpha1": field_in(1.5, 3.5),
            "alpha2": field_in(1.5, 3.5),
            "kg": field_in(0.1, 0.6),
        },
        "SWBM": {"sc": sc_c, "ks": field_in(0.15, 0.6), "kg": field_in(0.15, 0.5)},
        "TVGM": {
            "sc": sc_c,
            "g1": field_in(0.05, 0.3),
            "g2": field_in(0.5, 2.5),
            "kr": field_in(0.01, 0.08),
            "gamma": field_in(0.4, 0.9),
        },
    }
    regions = np.argmax(np.stack([smooth_field(rng, shape, 5) for _ in params]), axis=0)
    generator = regions.ravel()[cells]
    q = np.zeros_like(p_c)
    for k, (model, prm) in enumerate(params.items()):
        out = simulate(model, p_c, e_c, prm, formulation=formulation)
        q = np.where((generator == k)[:, None], np.asarray(out.runoff, dtype=np.float64), q)
    sigma = 0.12 + 0.1 * np.abs(rng.standard_normal(len(cells)))
    q_obs = q * np.exp(rng.normal(0, 1, q.shape) * sigma[:, None] - sigma[:, None] ** 2 / 2)
    failed = rng.random(len(cells)) < region.failed_fraction
    # Failed cells: runoff that no water balance can produce from the cell's forcing (months
    # shuffled, volumes 1.5 to 3 times the precipitation), as where a gauge, a catchment
    # area or a runoff product is wrong. Their calibration KGE ends up below zero.
    n_failed = int(failed.sum())
    donors = rng.integers(0, len(cells), n_failed)
    shuffled = np.stack([rng.permutation(q[d]) for d in donors]) if n_failed else q[:0]
    factor = rng.uniform(1.5, 3.0, n_failed) * p_c[failed].mean(1) / np.maximum(shuffled.mean(1), 1e-6)
    q_obs[failed] = shuffled * factor[:, None] * rng.lognormal(0, 0.5, (n_failed, months))
    # A donor with almost no runoff makes the factor huge; no month may exceed three times the
    # cell's wettest month, so the data stay physically possible (the input gate refuses
    # runoff above 10,000 mm/month) and every other cell keeps its bytes.
    q_obs[failed] = np.minimum(q_obs[failed], 3.0 * p_c[failed].max(axis=1, keepdims=True))

    def to_grid(values: np.ndarray) -> np.ndarray:
        out = np.full(grid.height * grid.width, np.nan)
        out[cells] = values
        return out.reshape(shape)

    runoff = np.full((months,) + shape, np.nan)
    runoff.reshape(months, -1)[:, cells] = q_obs.T
    mean_runoff = to_grid(q_obs.mean(axis=1) * 12)
    fields["runoff"] = mean_runoff
    fields["runoff_coefficient"] = mean_runoff / annual_p
    sea = ~land
    out = {name: np.where(sea, np.nan, fields[name]) for name in PREDICTORS}
    out["true_cwsc"] = np.where(sea, np.nan, truth)
    out["failed"] = np.where(sea, np.nan, to_grid(failed.astype(float)))
    out["generator"] = np.where(sea, np.nan, to_grid(generator.astype(float)))
    out["precip_series"] = np.where(sea[None], np.nan, precip)
    out["pet_series"] = np.where(sea[None], np.nan, pet)
    out["runoff_series"] = runoff
    out["runoff_noise_free"] = q  # (land cells, months): the models' runoff before noise
    if t_series is not None:
        out["temperature_series"] = np.where(sea[None], np.nan, t_series)
    out["land"] = land
    return out


_README = """# CWSC demo data (synthetic)

These data are SYNTHETIC: a twin experiment made by `python -m cwsc demo-data --seed {seed}`.
Nothing here is an observation. The coastline is real (global-land-mask, 0.5 degree cell
centres); everything else was generated so that the true CWSC is known and the workflow's
result can be scored.

Grid: {width} x {height} cells of 0.5 degree, EPSG:4326, {west} to {east} E, {south} to {north} N;
{land} land cells; sea cells are nodata (-9999).

| file | what | units |
|---|---|---|
| `precipitation.tif` | monthly precipitation, one band per month ({first} to {last}) | mm/month |
| `pet.tif` | monthly potential evapotranspiration, one band per month | mm/month |
| `runoff.tif` | monthly runoff simulated from the true CWSC, in each cell by one of DWBM, SWBM and TVGM (see `runoff_model.tif`), with multiplicative noise; about {failed_pct:.0f} % of land cells get runoff no water balance can produce from their forcing (shuffled months, 1.5 to 3 times the precipitation), so their calibration fails and the KGE mask removes them | mm/month |
| `true_cwsc.tif` | the true catchment water storage capacity the runoff was made from | mm |
| `failed_cells.tif` | 1 where the runoff was replaced by noise, 0 elsewhere | - |
| `runoff_model.tif` | the model that made each cell's runoff: 0 DWBM, 1 SWBM, 2 TVGM | - |
| `predictors/*.tif` | 13 predictor rasters (the ResNet's channels), one band each: {predictors} | see band descriptions |
| `gauges.gpkg` | 12 gauged catchments (field `gauge`: G01 ...), squares of 2 x 2 cells whose runoff a model made | - |
| `gauges.csv` | their monthly runoff (`id`, `month`, `runoff`): the area-weighted mean of the four cells, for *Evaluate CWSC with gauges* | mm/month |

The true CWSC is a nonlinear function of soil depth, tree cover, aridity, slope, soil
texture and LAI (see `cwsc/synthetic/demo_region.py`, `true_cwsc`).
"""


_SNOW_README = """
**Snowy variant** (`--snow`): `temperature.tif` holds monthly mean air temperature (C), and
the runoff was made from the rain and snowmelt of the snow store (`cwsc/hydro/snow.py`), so
the cells where snow matters (the Alps, the Carpathians, Scandinavia) calibrate well only
with `TEMPERATURE`.
"""


def write_demo(
    out_dir: str | Path,
    seed: int = 42,
    region: DemoRegion | None = None,
    formulation: str = "conserving",
    snow: bool = False,
) -> dict:
    """Write the demo region into ``out_dir`` (created; every file committed together);
    ``snow``: the snowy variant, with ``temperature.tif``."""
    from cwsc.runtime.outputs import Outputs

    region = region or DemoRegion()
    out = Path(out_dir)
    t0 = time.perf_counter()
    grid = region.grid
    months = region.years * 12
    labels = [f"{region.start_year + i // 12}-{i % 12 + 1:02d}" for i in range(months)]
    series = [
        ("precipitation", "precip_series", "precipitation (mm/month)"),
        ("pet", "pet_series", "potential evapotranspiration (mm/month)"),
        ("runoff", "runoff_series", "runoff (mm/month)"),
    ]
    if snow:
        series.append(("temperature", "temperature_series", "air temperature (C)"))
    maps = [
        ("true_cwsc", "true_cwsc", "true CWSC (mm)"),
        ("failed_cells", "failed", "failed calibration cell (1)"),
        ("runoff_model", "generator", "model that made the runoff (0 DWBM, 1 SWBM, 2 TVGM)"),
    ]
    paths = {name: out / f"{name}.tif" for name, _, _ in series + maps}
    paths.update({f"predictors/{name}": out / "predictors" / f"{name}.tif" for name in PREDICTORS})
    paths.update({"README": out / "README.md", "manifest": out / "manifest.json"})
    # the gauged catchments of the demo (cwsc:evaluatecatchments): polygons and their runoff
    paths.update({"gauges": out / "gauges.gpkg", "gauges_table": out / "gauges.csv"})
    kinds = {"README": "text", "manifest": "json", "gauges": "vector", "gauges_table": "table"}
    # A folder output: new, empty, or an earlier demo's (which the new set replaces whole).
    with Outputs(paths, kinds=kinds, folders={"OUTPUT": (out, "demo-data")}) as outputs:
        progress(log, 0.05, "writing the demo data")
        data = make_demo(region, seed, formulation, snow=snow)
        progress(log, 0.6, "writing the demo data")
        for name, key, what in series:
            io.write_raster(
                outputs.temporary(name),
                data[key],
                grid,
                [f"{what} {d}" for d in labels],
                units="C" if name == "temperature" else "mm/month",
            )
        for name, key, what in maps:
            io.write_raster(outputs.temporary(name), data[key][None], grid, [what])
        for name, description in PREDICTORS.items():
            io.write_raster(outputs.temporary(f"predictors/{name}"), data[name][None], grid, [description])
        shapes, records, rows = demo_gauges(data["failed"], data["runoff_series"], grid, labels)
        write_catchments(outputs.temporary("gauges"), shapes, records, GAUGE_FIELDS, layer="gauges")
        write_table(outputs.temporary("gauges_table"), rows, SERIES_FIELDS)
        land = int(data["land"].sum())
        failed = int(np.nansum(data["failed"]))
        outputs.temporary("README").write_text(
            _README.format(
                seed=seed,
                width=grid.width,
                height=grid.height,
                west=region.west,
                east=region.east,
                south=region.south,
                north=region.north,
                land=land,
                first=labels[0],
                last=labels[-1],
                failed_pct=100 * failed / max(land, 1),
                predictors=", ".join(PREDICTORS),
            )
            + (_SNOW_README if snow else ""),
            encoding="utf-8",
        )
        files = {
            name: str(paths[name])
            for name in ("precipitation", "pet", "runoff", "true_cwsc", "gauges", "gauges_table")
        }
        if snow:
            files["temperature"] = str(paths["temperature"])
        manifest = {
            "seed": seed,
            "formulation": formulation,
            "land_cells": land,
            "failed_cells": failed,
            "months": months,
            "files": files,
            "predictors": [str(paths[f"predictors/{n}"]) for n in PREDICTORS],
        }
        outputs.temporary("manifest").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    progress(log, 1.0, "writing the demo data")
    manifest["seconds"] = round(time.perf_counter() - t0, 2)
    return manifest
