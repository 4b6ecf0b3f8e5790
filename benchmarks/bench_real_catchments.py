"""The nine real gauged catchments (tests/cwsc/real_catchments.py): calibration with and
without the snow store, the three formulations side by side, and fixed against calibrated
snow parameters.

``python -m benchmarks real_catchments`` prints three tables (docs/models.md has them):

1. per catchment and formulation: the best model's calibration and validation KGE, its sc,
   the share of calibration months with E > PET, and the label's quality flags, without and
   (where the package ships temperature) with the snow store;
2. the label rule and PET (issue 35), conserving: the models within the margin with their share
   of months E > PET, the label with every one of them (the rule before) and with only those
   that respect PET where one does (now), the validation KGE of the best model entering it;
3. the snow store's parameters fixed at the published values against calibrated by a grid
   search (3 x 3 x 3 values, the models re-calibrated at each): calibration and validation
   KGE on the catchments with temperature.

Downloads the packages' archives on first use (about 66 MB). ``CWSC_BENCH_QUICK=1``: fewer
SCE-UA evaluations and one restart.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "cwsc"))

QUICK = os.environ.get("CWSC_BENCH_QUICK") == "1"
FORMULATIONS = ("conserving", "bounded", "seed")


def _config(formulation: str, profile: bool = True):
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.sceua import SceuaSettings

    settings = SceuaSettings()
    if QUICK:
        settings.max_evaluations = 300
    kwargs = {} if profile else {"profile": None}
    return CalibrationConfig(
        formulation=formulation, restarts=1 if QUICK else 3, sceua=settings, seed=1, **kwargs
    )


def calibrate_catchment(c, formulation: str, snow, profile: bool = True):
    """The calibration result of one catchment (one cell) and its E > PET share. ``snow``:
    None (no store) or :class:`~cwsc.hydro.snow.SnowParameters`."""
    from cwsc.hydro.calibration.driver import calibrate
    from cwsc.hydro.models import simulate
    from cwsc.hydro.snow import liquid_water

    p = c.precipitation if snow is None else liquid_water(c.precipitation, c.temperature, snow)
    config = _config(formulation, profile)
    result = calibrate(p[None], c.pet[None], c.runoff[None], config, workers=1)
    best = max(result.models, key=lambda m: np.nan_to_num(result.models[m].kge_cal[0], nan=-9))
    labels = result.models[best]
    sim = simulate(
        best,
        p[None],
        c.pet[None],
        {k: v[:1] for k, v in labels.params.items()},
        formulation=formulation,
    )
    w, cal_end = config.periods(len(p))
    evap = np.asarray(sim.evap)[0, w:cal_end]
    above = float(np.mean(evap > c.pet[w:cal_end] * (1 + 1e-6)))
    return result, best, above


def formulation_table() -> list[str]:
    import real_catchments as rc

    from cwsc.hydro.snow import PUBLISHED

    lines = [
        "| catchment | snow store | formulation | best model | KGE cal | KGE val | sc (mm) | "
        "months E > PET | flags | label sc (mm) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for c in rc.all_catchments():
        for snow in (None, PUBLISHED) if c.temperature is not None else (None,):
            for formulation in FORMULATIONS:
                result, best, above = calibrate_catchment(c, formulation, snow)
                lab = result.models[best]
                lines.append(
                    f"| {c.title} | {'yes' if snow else 'no'} | {formulation} | {best} | "
                    f"{lab.kge_cal[0]:.3f} | {lab.kge_val[0]:.3f} | {lab.params['sc'][0]:.0f} | "
                    f"{100 * above:.0f} % | {int(result.flags[0])} | {result.cwsc[0]:.0f} |"
                )
                print(lines[-1], flush=True)
    return lines


def _best_val(result, names, ok) -> float:
    """The validation KGE of the best (calibration KGE) model entering the label."""
    entering = [m for i, m in enumerate(names) if ok[i, 0]]
    return float(result.models[max(entering, key=lambda m: result.models[m].kge_cal[0])].kge_val[0])


def pet_rule_table() -> list[str]:
    """The label rule with and without respecting PET, on the nine catchments (the store by
    its ramp where the package ships temperature)."""
    import real_catchments as rc

    from cwsc.hydro.calibration.driver import calibrate
    from cwsc.hydro.labels import ABOVE_PET_SHARE, label_rule
    from cwsc.hydro.snow import liquid_water

    config = _config("conserving")
    lines = [
        "| catchment | models within the margin (months E > PET) | label before -> now (mm) | "
        "validation KGE of the label's best model before -> now | flags now |",
        "|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    vals = []
    for c in rc.all_catchments():
        p = c.precipitation if c.temperature is None else liquid_water(c.precipitation, c.temperature)
        result = calibrate(p[None], c.pet[None], c.runoff[None], config, workers=1)
        names = list(result.models)
        kges = np.stack([result.models[m].kge_cal for m in names])
        scs = np.stack([result.models[m].params["sc"] for m in names])
        above = np.array([result.models[m].above_pet_fraction[0] for m in names])
        before, ok_before = label_rule(kges, scs, config.kge_threshold, config.kge_margin)
        now, ok_now = label_rule(
            kges, scs, config.kge_threshold, config.kge_margin, (above <= ABOVE_PET_SHARE)[:, None]
        )

        vals.append((_best_val(result, names, ok_before), _best_val(result, names, ok_now)))
        near = ", ".join(f"{m} ({100 * above[i]:.0f} %)" for i, m in enumerate(names) if ok_before[i, 0])
        lines.append(
            f"| {c.title} | {near} | {before[0]:.0f} -> {now[0]:.0f} | {vals[-1][0]:.3f} -> {vals[-1][1]:.3f} | "
            f"{int(result.flags[0])} |"
        )
        print(lines[-1], flush=True)
    v = np.array(vals)
    lines.append(f"| **median** | | | **{np.median(v[:, 0]):.3f} -> {np.median(v[:, 1]):.3f}** | |")
    print(lines[-1], flush=True)
    return lines


def snow_parameter_table() -> list[str]:
    """Fixed (published) against calibrated snow parameters (a grid; the models re-calibrated
    at each point, the point with the best calibration KGE kept)."""
    import real_catchments as rc

    from cwsc.hydro.snow import PUBLISHED, SnowParameters

    grid = [
        SnowParameters(t_snow=a, t_rain=b, melt_max=m)
        for a, b, m in itertools.product((-10.7, -5.0, -2.0), (1.0, 3.3, 6.0), (0.3, 0.47, 0.7))
    ]
    lines = [
        "| catchment | fixed: KGE cal | fixed: KGE val | calibrated: KGE cal | calibrated: KGE val | "
        "calibrated t_snow, t_rain, melt_max | sc fixed / calibrated (mm) |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for c in rc.all_catchments():
        if c.temperature is None:
            continue
        fixed, best_f, _ = calibrate_catchment(c, "conserving", PUBLISHED, profile=False)
        runs = []
        for prm in grid:
            result, best, _ = calibrate_catchment(c, "conserving", prm, profile=False)
            runs.append((float(result.models[best].kge_cal[0]), prm, result, best))
        kge_cal, prm, result, best = max(runs, key=lambda r: r[0])
        f = fixed.models[best_f]
        g = result.models[best]
        lines.append(
            f"| {c.title} | {f.kge_cal[0]:.3f} | {f.kge_val[0]:.3f} | {kge_cal:.3f} | {g.kge_val[0]:.3f} | "
            f"{prm.t_snow:g}, {prm.t_rain:g}, {prm.melt_max:g} | {f.params['sc'][0]:.0f} / {g.params['sc'][0]:.0f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    t0 = time.perf_counter()
    formulation_table()
    print(f"formulations: {time.perf_counter() - t0:.0f} s", flush=True)
    pet_rule_table()
    snow_parameter_table()
    print(f"all: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
