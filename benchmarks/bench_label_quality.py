"""What the label's quality measures do on the demo twin, and what they cost.

1. Formulations: the demo region's runoff made with the conserving and with the bounded
   formulation, each calibrated with conserving, bounded and seed: median calibration and
   validation KGE, the joint label's R2 against the true CWSC (cells with KGE > 0, as the
   mask at its defaults), and the share of months where a model evaporates more than PET.
2. Quality flags: how many labels carry each bit, and the label's R2 against the truth when
   the mask excludes that bit (EXCLUDE_FLAGS): the evidence for the mask's default.
3. Cost of the identifiable range: calibration time with and without the profile
   (PROFILE_EVALUATIONS 0), as a ratio measured in this run.

``CWSC_BENCH_QUICK=1``: 90 cells instead of 300.
"""

from __future__ import annotations

import os
import time

import numpy as np

QUICK = os.environ.get("CWSC_BENCH_QUICK") == "1"


def _r2(label: np.ndarray, truth: np.ndarray) -> float:
    ok = np.isfinite(label) & np.isfinite(truth)
    if ok.sum() < 3:
        return float("nan")
    return float(np.corrcoef(label[ok], truth[ok])[0, 1] ** 2)


def _sample(formulation: str, cells: int, seed: int = 42):
    from cwsc.synthetic.demo_region import DemoRegion, make_demo

    data = make_demo(DemoRegion(), seed, formulation)
    land = np.flatnonzero(data["land"].ravel())
    months = data["precip_series"].shape[0]
    series = [
        data[k].reshape(months, -1)[:, land].T for k in ("precip_series", "pet_series", "runoff_series")
    ]
    truth = data["true_cwsc"].ravel()[land]
    pick = np.sort(np.random.default_rng(0).choice(land.size, min(cells, land.size), replace=False))
    return [s[pick] for s in series], truth[pick]


def _evaporation_above_pet(res, series, formulation: str) -> float:
    """Share of (cell, month) pairs of SWBM and TVGM whose E exceeds PET by 1 %."""
    from cwsc.hydro.models import simulate

    p, e, _ = series
    above, total = 0, 0
    for m in ("SWBM", "TVGM"):
        lab = res.models[m]
        ok = np.isfinite(lab.params["sc"])
        sim = simulate(
            m,
            p[ok].astype(np.float64),
            e[ok].astype(np.float64),
            {k: v[ok] for k, v in lab.params.items()},
            formulation=formulation,
        )
        above += int((sim.evap > 1.01 * e[ok] + 1e-6).sum())
        total += sim.evap.size
    return above / max(total, 1)


def formulations(cells: int) -> None:
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.calibration.driver import calibrate

    print(
        "runoff made by | calibrated with | KGE cal | KGE val | label R2 vs truth | "
        "E > PET (SWBM, TVGM months) | seconds"
    )
    for made in ("conserving", "bounded"):
        series, truth = _sample(made, cells)
        for form in ("conserving", "bounded", "seed"):
            t0 = time.perf_counter()
            res = calibrate(*series, CalibrationConfig(formulation=form), workers=1)
            seconds = time.perf_counter() - t0
            best = [m for m in res.models]
            kcal = np.nanmedian(np.fmax.reduce([res.models[m].kge_cal for m in best]))
            kval = np.nanmedian(np.fmax.reduce([res.models[m].kge_val for m in best]))
            label = np.where(res.kge > 0, res.cwsc, np.nan)
            print(
                f"{made} | {form} | {kcal:.3f} | {kval:.3f} | {_r2(label, truth):.3f} | "
                f"{_evaporation_above_pet(res, series, form):.1%} | {seconds:.0f}",
                flush=True,
            )


def flags_and_cost(cells: int) -> None:
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.calibration.driver import calibrate
    from cwsc.hydro.labels import mask_by_kge
    from cwsc.hydro.options import FLAG_BITS

    series, truth = _sample("conserving", cells)
    t0 = time.perf_counter()
    plain = calibrate(*series, CalibrationConfig(profile=None), workers=1)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = calibrate(*series, CalibrationConfig(), workers=1)
    t_range = time.perf_counter() - t0
    print(
        f"calibration of {truth.size} cells x 3 models: {t_plain:.1f} s without the "
        f"identifiable range, {t_range:.1f} s with it: ratio {t_range / t_plain:.2f} "
        f"(target <= 2)"
    )
    np.testing.assert_array_equal(plain.cwsc, res.cwsc)  # the range never moves the label
    bits = np.where(np.isfinite(res.flags), res.flags, 0).astype(int)
    base = mask_by_kge(res.cwsc, res.kge, 0.0)
    # The label rule before it respected PET (issue 35): every model within the margin.
    from cwsc.hydro.labels import label_rule

    names = list(res.models)
    before, _ = label_rule(
        np.stack([res.models[m].kge_cal for m in names]),
        np.stack([res.models[m].params["sc"] for m in names]),
        0.0,
        CalibrationConfig().kge_margin,
    )
    before = mask_by_kge(before, res.kge, 0.0)
    print(
        f"label rule without respecting PET: {np.isfinite(before).sum()} labels, R2 vs truth "
        f"{_r2(before, truth):.3f}; "
        + ", ".join(
            f"{m} above PET in > 10 % of months at {np.mean(res.models[m].above_pet_fraction > 0.1):.0%} of cells"
            for m in names
        )
    )
    print(
        f"mask at KGE > 0, no flag excluded: {np.isfinite(base).sum()} labels, R2 vs truth "
        f"{_r2(base, truth):.3f}"
    )
    for bit, text in FLAG_BITS.items():
        kept = mask_by_kge(res.cwsc, res.kge, 0.0, res.flags, bit)
        share = float(((bits & bit) > 0)[np.isfinite(base)].mean()) if np.isfinite(base).any() else 0
        print(
            f"EXCLUDE_FLAGS {bit} ({text}): {share:.1%} of the kept labels carry it; "
            f"excluding them leaves {np.isfinite(kept).sum()} labels, R2 vs truth "
            f"{_r2(kept, truth):.3f}"
        )
    width = res.cwsc_range[np.isfinite(base)]
    print(
        f"identifiable range width of the kept labels: median {np.median(width):.0f} mm, "
        f"90th percentile {np.percentile(width, 90):.0f} mm; median label "
        f"{np.nanmedian(base):.0f} mm"
    )


def main() -> None:
    cells = 90 if QUICK else 300
    formulations(cells)
    flags_and_cost(cells)


if __name__ == "__main__":
    main()
