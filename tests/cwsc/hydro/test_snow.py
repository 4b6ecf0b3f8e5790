"""The snow store: water conserved, the published thresholds, NaN months, the cold test."""

import numpy as np
import pytest

from cwsc.hydro.snow import (
    COLD_PET,
    PUBLISHED,
    SnowParameters,
    cold_precipitation_share,
    liquid_water,
    snow_likely,
    snow_store,
)


def test_rain_melt_and_change_of_pack_add_up_to_precipitation_every_month():
    rng = np.random.default_rng(1)
    p = rng.gamma(2.0, 40.0, (7, 240))
    t = rng.normal(-2.0, 12.0, (7, 240))
    r = snow_store(p, t)
    previous = np.concatenate([np.zeros((7, 1)), r.pack[:, :-1]], axis=1)
    np.testing.assert_allclose(r.liquid + (r.pack - previous), p, atol=1e-9)
    np.testing.assert_allclose(r.snowfall - r.melt, r.pack - previous, atol=1e-9)
    assert (r.pack >= 0).all() and (r.liquid >= 0).all()


def test_thresholds_all_snow_when_cold_all_rain_and_full_melt_when_warm():
    p = np.array([100.0, 100.0, 0.0, 0.0])
    t = np.array([PUBLISHED.t_snow - 1, PUBLISHED.t_snow, PUBLISHED.t_rain, PUBLISHED.t_rain + 5])
    r = snow_store(p, t)
    assert r.liquid[0] == 0 and r.liquid[1] == 0  # all snow, no melt at or below t_snow
    assert r.pack[1] == pytest.approx(200.0)
    assert r.melt[2] == pytest.approx(PUBLISHED.melt_max * 200.0)  # the largest melt share
    assert r.pack[3] == pytest.approx(200.0 * (1 - PUBLISHED.melt_max) ** 2)


def test_half_way_between_the_thresholds_half_snow_and_half_the_largest_melt():
    middle = (PUBLISHED.t_snow + PUBLISHED.t_rain) / 2
    r = snow_store(np.array([80.0]), np.array([middle]))
    assert r.snowfall[0] == pytest.approx(40.0)
    assert r.melt[0] == pytest.approx(40.0 * PUBLISHED.melt_max / 2)


def test_warm_months_give_the_precipitation_unchanged():
    p = np.random.default_rng(2).gamma(2.0, 30.0, (3, 50))
    np.testing.assert_array_equal(liquid_water(p, np.full_like(p, 15.0)), p)


def test_a_missing_month_is_missing_and_keeps_the_pack():
    p = np.array([50.0, np.nan, 0.0])
    t = np.array([-20.0, -20.0, 20.0])
    r = snow_store(p, t)
    assert np.isnan(r.liquid[1]) and r.pack[1] == 50.0
    assert r.liquid[2] == pytest.approx(50.0 * PUBLISHED.melt_max)


def test_time_axis_first_gives_the_same_numbers_and_dtype():
    rng = np.random.default_rng(3)
    p = rng.gamma(2.0, 30.0, (4, 36)).astype(np.float32)
    t = rng.normal(0, 10, (4, 36)).astype(np.float32)
    a = liquid_water(p, t)
    b = liquid_water(p.T, t.T, axis=0)
    assert a.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_array_equal(a, b.T)


def test_parameters_out_of_order_are_refused():
    with pytest.raises(ValueError, match="t_rain"):
        snow_store(np.ones(3), np.zeros(3), SnowParameters(t_snow=2.0, t_rain=1.0))


def test_the_flag_legend_states_the_thresholds_the_code_uses():
    from cwsc.hydro.options import FLAG_BITS
    from cwsc.hydro.snow import COLD_SHARE

    assert f"PET below {COLD_PET:g} mm" in FLAG_BITS[32] and f"{100 * COLD_SHARE:g} %" in FLAG_BITS[32]


def test_cold_share_counts_precipitation_in_months_whose_pet_is_near_zero():
    p = np.tile([60.0, 60.0, 60.0, 60.0, 30, 30, 30, 30, 30, 30, 30, 30], 3)
    pet = np.tile([0.0, 2.0, 3.0, COLD_PET - 1, 60, 80, 100, 120, 100, 80, 40, 20], 3)
    share = cold_precipitation_share(p[None], pet[None])
    assert share[0] == pytest.approx(240 / 480)
    assert snow_likely(p[None], pet[None])[0]
    assert not snow_likely(p[None], pet[None] + COLD_PET)[0]
    assert np.isnan(cold_precipitation_share(np.full((1, 5), np.nan), np.ones((1, 5))))[0]


def test_the_store_weighs_in_continuously_with_the_share_of_snow():
    """No cliff (issue 35): the liquid water moves continuously from P (no snow) to the
    store's rain and melt (a tenth and more of P as snow); water is conserved throughout."""
    from cwsc.hydro.snow import SNOW_SHARE_RAMP, snowfall_share, store_weight

    months = 120
    p = np.full((1, months), 50.0)
    frozen = np.arange(months) % 12 < 1  # one month a year at -20 C: 1/12 of P as snow
    t = np.where(frozen, -20.0, 15.0)[None]
    share = float(snowfall_share(p, t)[0])
    assert share == pytest.approx(1 / 12)
    lo, hi = SNOW_SHARE_RAMP
    weight = float(store_weight(share))
    assert 0.0 < weight < 1.0 and weight == pytest.approx((share - lo) / (hi - lo))
    out = liquid_water(p, t)[0]
    full = snow_store(p, t).liquid[0]
    np.testing.assert_allclose(out, weight * full + (1 - weight) * p[0])
    assert out.sum() == pytest.approx(p.sum() - weight * snow_store(p, t).pack[0, -1])
    # Shares either side of the old 10 % cut give nearly the same weight, not 0 and 1.
    assert store_weight(0.0985) == pytest.approx(0.97) and store_weight(0.105) == 1.0
    steps = np.diff(store_weight(np.linspace(0.0, 0.2, 201)))
    assert steps.max() <= 0.001 / (hi - lo) + 1e-12  # no jump larger than the ramp's slope allows
    np.testing.assert_array_equal(liquid_water(p, np.full_like(p, 15.0)), p)  # never freezes: nothing


@pytest.mark.network
def test_bit_32_threshold_lies_between_the_snowless_and_the_snowy_real_catchments():
    """The cold-month share that sets bit 32 without TEMPERATURE separates the real catchments
    where the store runs (Quebec) from those where it does not (Hesse), and fires from where
    the store starts to matter."""
    import real_catchments as rc

    from cwsc.hydro.snow import COLD_SHARE, SNOW_SHARE_RAMP, snowfall_share, store_weight

    try:
        catchments = [c for c in rc.all_catchments() if c.temperature is not None]
    except rc.DataUnavailable as exc:
        pytest.skip(f"real catchment data unavailable: {exc}")
    snow, cold = [], []
    for c in catchments:
        snow.append(float(snowfall_share(c.precipitation, c.temperature)))
        cold.append(float(cold_precipitation_share(c.precipitation, c.pet)))
        weight = float(store_weight(snow[-1]))
        flagged = bool(snow_likely(c.precipitation, c.pet))
        assert flagged == (weight > 0.5), (
            c.name,
            weight,
            float(cold_precipitation_share(c.precipitation, c.pet)),
        )
    # The cold-month share runs with the snowfall share; the threshold lies within the ramp
    # (where the store starts and where it is whole), so bit 32 fires where snow matters.
    slope, intercept = np.polyfit(snow, cold, 1)
    lo, hi = SNOW_SHARE_RAMP
    assert intercept + slope * lo <= COLD_SHARE <= intercept + slope * hi
