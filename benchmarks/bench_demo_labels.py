"""Where the demo's truth recovery is lost: each model's calibrated sc against the true CWSC.

The demo region (``cwsc.synthetic.demo_region``, seed 42) makes each cell's runoff with one of DWBM, SWBM
and TVGM from the true CWSC. This benchmark calibrates all three models on a sample of the
cells whose runoff is not replaced by noise and prints, per generating model, the median
ratio of each model's calibrated sc to the truth, the correlation of their logarithms, the
median calibration KGE, and the same for the joint label (default rule: the KGE-weighted
mean of the models within 0.02 KGE of the cell's best). A model that recovers the sc of its own runoff but not of the
others' shows up as ratio ~1 and r ~1 on the diagonal only.

Then the joint label against the truth for several KGE margins (``MODEL_KGE_MARGIN``: only
models within the margin of the best enter; "all models" is the first release's rule), and
the same sample calibrated on the runoff before noise, which splits the label's error into
structure (noise-free label against the truth) and noise (noisy against noise-free).

``CWSC_BENCH_QUICK=1``: 90 cells instead of 300.
"""

from __future__ import annotations

import os
import time

import numpy as np

QUICK = os.environ.get("CWSC_BENCH_QUICK") == "1"


def cross_model_table(cells: int, max_evaluations: int = 1000, seed: int = 42) -> None:
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.calibration.driver import calibrate
    from cwsc.hydro.models import MODELS
    from cwsc.hydro.sceua import SceuaSettings
    from cwsc.synthetic.demo_region import DemoRegion, make_demo

    data = make_demo(DemoRegion(), seed)
    land = np.flatnonzero(data["land"].ravel())
    months = data["precip_series"].shape[0]
    series = [
        data[k].reshape(months, -1)[:, land].T for k in ("precip_series", "pet_series", "runoff_series")
    ]
    truth = data["true_cwsc"].ravel()[land]
    generator = data["generator"].ravel()[land]
    ok = np.flatnonzero(data["failed"].ravel()[land] == 0)
    pick = np.sort(np.random.default_rng(0).choice(ok, min(cells, ok.size), replace=False))
    t0 = time.perf_counter()
    res = calibrate(
        *(s[pick] for s in series), CalibrationConfig(sceua=SceuaSettings(max_evaluations=max_evaluations))
    )
    print(
        f"demo region seed {seed}: {pick.size} cells with model-made runoff, 3 models, "
        f"{max_evaluations} evaluations: calibrated in {time.perf_counter() - t0:.0f} s"
    )
    print(
        "runoff made by | "
        + " | ".join(f"{m}: sc/truth, r(log), KGE" for m in MODELS)
        + " | joint label: sc/truth, r"
    )
    tr, gen = truth[pick], generator[pick]
    for g, name in enumerate(MODELS):
        sel = gen == g
        if sel.sum() < 3:
            continue
        cols = []
        for m in MODELS:
            sc = res.models[m].params["sc"][sel]
            r = np.corrcoef(np.log(np.maximum(sc, 0.1)), np.log(tr[sel]))[0, 1]
            cols.append(
                f"{np.median(sc / tr[sel]):.2f}, {r:+.2f}, {np.nanmedian(res.models[m].kge_cal[sel]):.3f}"
            )
        joint = res.cwsc[sel]
        fin = np.isfinite(joint)
        r = np.corrcoef(joint[fin], tr[sel][fin])[0, 1]
        print(
            f"{name} ({sel.sum()} cells) | "
            + " | ".join(cols)
            + f" | {np.nanmedian(joint / tr[sel]):.2f}, {r:+.2f}"
        )

    # The label rule: every model above KGE 0 against only those near the best (default 0.02).
    from cwsc.hydro.labels import joint_labels
    from cwsc.hydro.options import DEFAULT_KGE_MARGIN

    rules = []
    for margin in (None, 0.1, 0.05, 0.02, 0.0):
        label, _, _, kge = joint_labels(res.models, 0.0, margin)
        label = np.where(kge > 0, label, np.nan)  # as the mask at its defaults
        name = "all models" if margin is None else f"margin {margin:g}"
        name += " (default)" if margin == DEFAULT_KGE_MARGIN else ""
        rules.append(f"{name}: R2 {_r2(label, tr):.3f}, r {_r(label, tr):.3f}")
    print("joint label vs truth by rule (MODEL_KGE_MARGIN): " + "; ".join(rules))

    # Structure or noise? The same calibration on the models' runoff before noise: its joint
    # label against the truth is the error no amount of data removes (the models' sc differ
    # by structure); the noisy label against it is what the noise adds.
    clean = calibrate(
        series[0][pick],
        series[1][pick],
        data["runoff_noise_free"][pick],
        CalibrationConfig(sceua=SceuaSettings(max_evaluations=max_evaluations)),
    )
    print(
        f"joint label on noise-free runoff vs truth: R2 {_r2(clean.cwsc, tr):.3f} "
        f"(r {_r(clean.cwsc, tr):.3f}); noisy label vs noise-free label: "
        f"R2 {_r2(res.cwsc, clean.cwsc):.3f} (r {_r(res.cwsc, clean.cwsc):.3f})"
    )


def _r2(pred: np.ndarray, ref: np.ndarray) -> float:
    ok = np.isfinite(pred) & np.isfinite(ref)
    p, r = pred[ok], ref[ok]
    return float(1.0 - ((p - r) ** 2).sum() / ((r - r.mean()) ** 2).sum())


def _r(pred: np.ndarray, ref: np.ndarray) -> float:
    ok = np.isfinite(pred) & np.isfinite(ref)
    return float(np.corrcoef(pred[ok], ref[ok])[0, 1])


def main() -> None:
    cross_model_table(90 if QUICK else 300)


if __name__ == "__main__":
    main()
