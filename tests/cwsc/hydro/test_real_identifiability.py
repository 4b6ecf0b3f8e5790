"""The identifiable range of sc on the nine real catchments (first ten years of each, with
the snow store where the package ships temperature) against a brute-force profile, and its
stability over the number of restarts (issue 14's checks, on real data)."""

from __future__ import annotations

import numpy as np
import pytest

from cwsc.hydro.calibration.config import CalibrationConfig
from cwsc.hydro.calibration.shard import calibrate_model
from cwsc.hydro.sceua import SceuaSettings
from cwsc.hydro.snow import liquid_water

pytestmark = [pytest.mark.network, pytest.mark.slow]
MONTHS = 120
POINTS = 41


@pytest.fixture(scope="module")
def forcing():
    import real_catchments as rc

    try:
        cs = rc.all_catchments()
    except rc.DataUnavailable as exc:
        pytest.skip(f"real catchment data unavailable (no package registry reachable?): {exc}")
    p = np.stack(
        [
            liquid_water(c.precipitation[:MONTHS], c.temperature[:MONTHS])
            if c.temperature is not None
            else c.precipitation[:MONTHS]
            for c in cs
        ]
    )
    return p, np.stack([c.pet[:MONTHS] for c in cs]), np.stack([c.runoff[:MONTHS] for c in cs])


def _iou(model, p, e, q):
    """IoU of each catchment's identifiable range with the brute-force one: sc fixed on 41
    points around the best (three range widths, at least 60 mm, either side), full SCE-UA
    runs for the other parameters, the points within 0.01 of the best objective."""
    lab = calibrate_model(model, p, e, q, CalibrationConfig(models=(model,), seed=2))
    sc, width = lab.params["sc"], lab.sc_high - lab.sc_low
    half = np.maximum(3 * width, 60.0)
    grids = np.stack([np.linspace(max(s - h, 0), min(s + h, 1000), POINTS) for s, h in zip(sc, half)])
    n = p.shape[0]
    rep = lambda a: np.repeat(a, POINTS, 0)  # noqa: E731
    config = CalibrationConfig(
        models=(model,), profile=None, sceua=SceuaSettings(max_evaluations=600), seed=3
    )
    f = calibrate_model(model, rep(p), rep(e), rep(q), config, fixed={"sc": grids.ravel()}).objective
    f = f.reshape(n, POINTS)
    best = np.fmin(np.nanmin(np.where(np.isfinite(f), f, np.inf), 1), lab.objective)
    inside = np.isfinite(f) & (f <= best[:, None] + 0.01)
    step = grids[:, 1] - grids[:, 0]
    low = np.where(inside, grids, np.inf).min(1) - step / 2
    high = np.where(inside, grids, -np.inf).max(1) + step / 2
    inter = np.clip(np.minimum(high, lab.sc_high) - np.maximum(low, lab.sc_low), 0, None)
    return inter / (np.maximum(high, lab.sc_high) - np.minimum(low, lab.sc_low)), width, high - low


def test_the_identifiable_range_overlaps_a_brute_force_profile_on_real_catchments(forcing):
    ious = []
    for model in ("DWBM", "SWBM", "TVGM"):
        iou, width, brute = _iou(model, *forcing)
        print(
            f"\n{model} on real catchments: IoU {np.round(iou, 2).tolist()}, range {np.round(width).tolist()} mm, "
            f"brute force {np.round(brute).tolist()} mm"
        )
        assert np.median(iou) >= 0.45
        ious.append(iou)
    assert np.median(np.concatenate(ious)) >= 0.55


def test_the_range_does_not_follow_the_number_of_restarts_on_real_catchments(forcing):
    ratios = []
    for model in ("DWBM", "SWBM", "TVGM"):
        widths = [
            np.maximum(lab.sc_high - lab.sc_low, 1.0)
            for lab in (
                calibrate_model(model, *forcing, CalibrationConfig(models=(model,), restarts=r, seed=2))
                for r in (1, 3)
            )
        ]
        ratios.append(np.median(widths[1] / widths[0]))
    print(f"\nrange width, 3 restarts / 1, per model: {np.round(ratios, 2).tolist()}")
    assert all(0.75 <= r <= 1.25 for r in ratios)
