"""The monthly snow store that runs ahead of the water balance models when air temperature
is given, and the cold-season test that flags cells where it was needed but not given.

The store is the one of the USGS monthly water balance model (McCabe & Markstrom 2007):

- the share of a month's precipitation that falls as snow is 1 at or below ``t_snow``, 0 at
  or above ``t_rain`` and linear in between;
- the snow joins the pack; a share of the pack melts, ``melt_max`` times the position of the
  temperature between ``t_snow`` and ``t_rain`` (0 at or below ``t_snow``, ``melt_max`` at or
  above ``t_rain``);
- the models receive rain + melt as their precipitation, so water is conserved month by
  month: rain + melt + (pack at the end - pack at the start) = precipitation.

Its parameters are fixed at the published values (``docs/models.md``, "Snow", gives the
measurements on the real catchments behind that choice). With fixed parameters the store is a
function of the data alone, so it runs once, here, ahead of every engine (C, Triton, torch):
each engine sees the same liquid water, and learning from runoff differentiates through the
models exactly as without snow.

Units: precipitation, rain, melt and pack in mm/month or mm; temperature in degrees C.
Arrays are (..., months): the last axis is time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SnowParameters:
    """The snow store's parameters: temperatures in degrees C, ``melt_max`` a share of the
    pack per month (0-1)."""

    t_snow: float = -10.7  # at or below: all precipitation is snow, no melt
    t_rain: float = 3.3  # at or above: all precipitation is rain, melt at its maximum
    melt_max: float = 0.47

    def check(self) -> None:
        if not self.t_rain > self.t_snow:
            raise ValueError(f"t_rain ({self.t_rain:g} C) must be above t_snow ({self.t_snow:g} C)")
        if not 0.0 <= self.melt_max <= 1.0:
            raise ValueError(f"melt_max must lie in [0, 1], got {self.melt_max:g}")


PUBLISHED = SnowParameters()


@dataclass
class SnowResult:
    """The store's fluxes and state, each (..., months) in mm/month (``pack``: mm at the end
    of each month)."""

    liquid: np.ndarray  # rain + melt: what the water balance model receives
    snowfall: np.ndarray
    melt: np.ndarray
    pack: np.ndarray


def snow_store(
    precipitation: np.ndarray,
    temperature: np.ndarray,
    parameters: SnowParameters = PUBLISHED,
    initial_pack: np.ndarray | float = 0.0,
) -> SnowResult:
    """Run the snow store over (..., months) precipitation (mm/month) and temperature (C).

    The pack starts at ``initial_pack`` (mm; the models' warm-up months absorb a start
    without snow). NaN in either input gives NaN for that month and leaves the pack as it
    was. Computed in float64; the result has the dtype of ``precipitation``.
    """
    parameters.check()
    p = np.asarray(precipitation, dtype=np.float64)
    t = np.asarray(temperature, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"precipitation {p.shape} and temperature {t.shape} differ in shape")
    span = parameters.t_rain - parameters.t_snow
    position = np.clip((t - parameters.t_snow) / span, 0.0, 1.0)  # 0 cold .. 1 warm
    snow_share = 1.0 - position
    melt_share = parameters.melt_max * position
    pack = np.broadcast_to(np.asarray(initial_pack, dtype=np.float64), p.shape[:-1]).copy()
    liquid, snowfall, melt, packs = (np.empty_like(p) for _ in range(4))
    for k in range(p.shape[-1]):
        pk = p[..., k]
        ok = np.isfinite(pk) & np.isfinite(t[..., k])
        snow = np.where(ok, pk * snow_share[..., k], 0.0)
        rain = np.where(ok, pk - snow, np.nan)
        pack = pack + snow
        m = np.where(ok, melt_share[..., k] * pack, 0.0)
        pack = pack - m
        liquid[..., k] = rain + np.where(ok, m, np.nan)
        snowfall[..., k] = np.where(ok, snow, np.nan)
        melt[..., k] = np.where(ok, m, np.nan)
        packs[..., k] = pack
    dtype = np.asarray(precipitation).dtype
    dtype = dtype if np.issubdtype(dtype, np.floating) else np.float64
    return SnowResult(*(a.astype(dtype, copy=False) for a in (liquid, snowfall, melt, packs)))


#: The store runs only in cells where at least this share of the precipitation falls as snow
#: (over the whole record); elsewhere the models receive the precipitation unchanged. Why: a
#: monthly store holds back, from one month to the next, a thin pack that melts within days in
#: a winter thaw; where snow is a few per cent of the precipitation that costs more than it
#: gains (docs/models.md, "Snow": Fulda 0.773 -> 0.728 with the store, 5 % snow; Au Saumon and
#: Baskatong, a quarter snow, 0.35 -> 0.80 and 0.39 -> 0.85).
MIN_SNOW_SHARE = 0.10


def liquid_water(
    precipitation: np.ndarray,
    temperature: np.ndarray,
    parameters: SnowParameters = PUBLISHED,
    axis: int = -1,
    min_snow_share: float = MIN_SNOW_SHARE,
) -> np.ndarray:
    """Rain + melt (mm/month, the shape and dtype of ``precipitation``): the precipitation
    the water balance models receive when temperature is given; unchanged in cells whose
    snowfall is less than ``min_snow_share`` of their precipitation. ``axis``: the time axis
    (0 for a (months, rows, cols) stack)."""
    p = np.moveaxis(np.asarray(precipitation), axis, -1)
    t = np.moveaxis(np.asarray(temperature), axis, -1)
    store = snow_store(p, t, parameters)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.nansum(store.snowfall, -1) / np.nansum(np.where(np.isfinite(store.snowfall), p, 0.0), -1)
    snowy = (share >= min_snow_share)[..., None]
    out = np.where(snowy, store.liquid, np.where(np.isfinite(t), p, np.nan)).astype(store.liquid.dtype)
    return np.moveaxis(out, -1, axis)


def snowfall_share(
    precipitation: np.ndarray, temperature: np.ndarray, parameters: SnowParameters = PUBLISHED
):
    """The share (0-1) of each cell's precipitation that falls as snow: (..., months) -> (...)."""
    store = snow_store(precipitation, temperature, parameters)
    p = np.asarray(precipitation, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(store.snowfall, -1) / np.nansum(np.where(np.isfinite(store.snowfall), p, 0.0), -1)


#: A month counts as cold, without temperature, when its PET is below this (mm/month). PET
#: methods driven by temperature give (almost) nothing below 0 C; radiation-driven ones little.
#: With the share below, it flags the two Quebec catchments (cold-month shares 0.22 and 0.24,
#: a quarter of their precipitation falls as snow) and none of the Lahn, Fulda or Leaf River
#: gauges (at most 0.14; 4-5 % snow) nor any cell of the demo region (docs/models.md, "Snow").
COLD_PET = 5.0
#: Cells whose cold months hold more than this share of the precipitation get quality bit 32
#: when no temperature was given.
COLD_SHARE = 0.2


def cold_precipitation_share(precipitation: np.ndarray, pet: np.ndarray) -> np.ndarray:
    """The share (0-1) of each cell's precipitation that falls in cold months, a month being
    cold when its PET is below :data:`COLD_PET`: (..., months) -> (...). NaN where no month
    has both values.

    Why PET and not latitude: a cell's latitude does not say whether it snows (the Andes,
    the Tibetan plateau, a mild oceanic coast at 60 N), while PET falls to almost nothing in
    months below freezing under every PET method in use (Thornthwaite by construction,
    Penman-Monteith and Priestley-Taylor with little radiation and cold air).
    """
    p = np.asarray(precipitation, dtype=np.float64)
    e = np.asarray(pet, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(e)
    total = np.where(ok, p, 0.0).sum(-1)
    cold = np.where(ok & (e < COLD_PET), p, 0.0).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok.any(-1) & (total > 0), cold / total, np.where(ok.any(-1), 0.0, np.nan))


def snow_likely(precipitation: np.ndarray, pet: np.ndarray) -> np.ndarray:
    """True where the cold months hold more than :data:`COLD_SHARE` of the precipitation:
    (..., months) -> (...) bool."""
    with np.errstate(invalid="ignore"):
        return cold_precipitation_share(precipitation, pet) > COLD_SHARE
