"""The demo region's snowy variant: monthly temperature, runoff made through the snow store,
and the default demo unchanged by it."""

from __future__ import annotations

import numpy as np
import pytest

from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.calibration.driver import calibrate
from cwsc.hydro.snow import SNOW_SHARE_RAMP, liquid_water, snowfall_share
from cwsc.synthetic.demo_region import DemoRegion, make_demo

ALPS = DemoRegion(west=5.0, east=12.0, south=44.0, north=48.0, years=8, failed_fraction=0.0)


def test_the_snowy_variant_adds_temperature_and_leaves_the_rest_of_the_demo_as_it_was():
    plain = make_demo(ALPS, seed=3)
    snowy = make_demo(ALPS, seed=3, snow=True)
    assert "temperature_series" not in plain
    for key in ("precip_series", "pet_series", "true_cwsc", "elevation"):
        np.testing.assert_array_equal(plain[key], snowy[key])
    t = snowy["temperature_series"]
    land = plain["land"]
    assert t.shape == plain["precip_series"].shape and np.isfinite(t[:, land]).all()
    assert np.nanmin(t) < -5 and np.nanmax(t) > 15


@pytest.mark.slow
def test_alpine_cells_need_the_temperature_to_calibrate_well():
    snowy = make_demo(ALPS, seed=3, snow=True)
    land = snowy["land"].ravel()
    months = snowy["precip_series"].shape[0]
    flat = lambda k: snowy[k].reshape(months, -1)[:, land].T  # noqa: E731
    p, e, t = flat("precip_series"), flat("pet_series"), flat("temperature_series")
    q = snowy["runoff_noise_free"]
    share = snowfall_share(p, t)
    cells = np.argsort(share)[-12:]  # the snowiest cells
    assert share[cells].min() > SNOW_SHARE_RAMP[1]  # the whole store runs there
    config = CalibrationConfig(models=("DWBM", "SWBM", "TVGM"), profile=None, seed=1)
    config.sceua.max_evaluations = 400
    without = calibrate(p[cells], e[cells], q[cells], config, workers=1).kge
    with_t = calibrate(liquid_water(p[cells], t[cells]), e[cells], q[cells], config, workers=1).kge
    assert np.median(with_t) > 0.9 and np.median(with_t) > np.median(without) + 0.1
