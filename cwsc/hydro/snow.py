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


#: How much of a cell's precipitation passes through the store grows with the share of it that
#: falls as snow over the record: none below the first value, all of it from the second on,
#: linearly in between; the rest reaches the models unchanged. Why a ramp and not a cut: a cut
#: at 10 % made labels jump along one river (issue 35: the main-stem gauge at 9.85 % snow got no
#: store, its tributaries at 10.5-13.5 % did; the store moved its label from 134 to 92 mm).
#: Why these ends: a monthly store holds back, from one month to the next, a thin pack that
#: melts within days in a winter thaw, so where snow is a few per cent of the precipitation it
#: costs more than it gains (docs/models.md, "Snow": Fulda, 5 % snow, 0.773 -> 0.728 with the
#: whole store), while at a tenth and more it gains (Au Saumon and Baskatong, a quarter snow,
#: 0.35 -> 0.80 and 0.39 -> 0.85; the main-stem gauge 0.79 -> 0.86).
SNOW_SHARE_RAMP = (0.05, 0.10)


def store_weight(snow_share: np.ndarray, ramp: tuple[float, float] = SNOW_SHARE_RAMP) -> np.ndarray:
    """The share (0-1) of the precipitation that passes through the store, from the share of
    it that falls as snow (0-1, any shape; NaN stays NaN)."""
    lo, hi = ramp
    share = np.asarray(snow_share, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(share), np.clip((share - lo) / (hi - lo), 0.0, 1.0), np.nan)


def liquid_water(
    precipitation: np.ndarray,
    temperature: np.ndarray,
    parameters: SnowParameters = PUBLISHED,
    axis: int = -1,
    ramp: tuple[float, float] = SNOW_SHARE_RAMP,
) -> np.ndarray:
    """What the water balance models receive when temperature is given (mm/month, the shape
    and dtype of ``precipitation``): the store's rain + melt for the share
    :func:`store_weight` of the precipitation, the precipitation itself for the rest. Water
    is conserved over the record either way; the labels change continuously with the
    climate. ``axis``: the time axis (0 for a (months, rows, cols) stack)."""
    p = np.moveaxis(np.asarray(precipitation), axis, -1)
    t = np.moveaxis(np.asarray(temperature), axis, -1)
    store = snow_store(p, t, parameters)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.nansum(store.snowfall, -1) / np.nansum(np.where(np.isfinite(store.snowfall), p, 0.0), -1)
    weight = np.nan_to_num(store_weight(share, ramp))[..., None]
    direct = np.where(np.isfinite(t), p, np.nan)
    out = (weight * store.liquid + (1.0 - weight) * direct).astype(store.liquid.dtype)
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
COLD_PET = 5.0
#: Cells whose cold months hold more than this share of the precipitation get quality bit 32
#: when no temperature was given. Why 0.15: on the real catchments the cold-month share runs
#: with the snowfall share (Hesse 0.115-0.136 at 3.5-4.9 % snow, Quebec 0.216-0.240 at
#: 24-27 %; a line through them gives 0.129 at 5 % snow and 0.153 at 10 %), so 0.15 lies inside
#: the store's ramp (:data:`SNOW_SHARE_RAMP`) and clear of the Hesse gauges: where snow
#: matters enough to run the store, the bit fires. The former 0.2 missed six snowy gauges of
#: 10-13.5 % snow (issue 35).
COLD_SHARE = 0.15


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
