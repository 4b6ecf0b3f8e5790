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


def test_the_store_runs_only_where_a_tenth_or_more_of_the_precipitation_is_snow():
    from cwsc.hydro.snow import MIN_SNOW_SHARE, snowfall_share

    p = np.full((2, 24), 50.0)
    t = np.tile(np.r_[np.full(3, -20.0), np.full(21, 15.0)], (2, 1))  # an eighth of the months frozen
    t[1, :3] = 10.0  # the second cell never freezes
    assert snowfall_share(p, t)[0] == pytest.approx(3 / 24) and snowfall_share(p, t)[1] == 0
    out = liquid_water(p, t)
    assert out[0, 0] == 0.0 and out[0].sum() == pytest.approx(p[0].sum() - snow_store(p, t).pack[0, -1])
    np.testing.assert_array_equal(out[1], p[1])
    np.testing.assert_array_equal(liquid_water(p, t, min_snow_share=0.2)[0], p[0])
    assert MIN_SNOW_SHARE == 0.10
