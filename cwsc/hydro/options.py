"""What the user chooses among (models, formulations, objectives) and the defaults the
calibration starts from, without torch.

The command line (:mod:`cwsc.cli`) offers these as choices and defaults, and the QGIS
plugin's enums and defaults must match them (``tests/plugin/test_contract.py``), so they live
in a module that imports only the standard library.
"""

from __future__ import annotations

from cwsc.errors import ParameterError

MODELS = ("DWBM", "SWBM", "TVGM")
FORMULATIONS = ("conserving", "seed", "bounded")
OBJECTIVES = ("kge", "nse")
KGE_VERSIONS = ("2009", "2012")

#: Independent SCE-UA runs per cell. Measured (benchmarks/bench_calibrate.py, restarts
#: part): one run's median calibration KGE is within 0.005 of the best of ten for DWBM and
#: TVGM (docs/performance.md has the figures).
DEFAULT_RESTARTS = 1

#: SCE-UA's budget of model evaluations per cell, model and restart (the original code's maxn).
DEFAULT_MAX_EVALUATIONS = 1000

#: Only models whose calibration KGE is within this of the cell's best model enter the joint
#: CWSC label (None: every model above the threshold, the rule of the first release). Why:
#: the three models' sc differ by structure (DWBM's is 2-3x SWBM's or TVGM's on the same
#: runoff, and poorly identified on runoff it did not make), so a mean over every model that
#: fits at all mixes scales; on the demo twin the margin decides whether the labels recover
#: the truth at all (README, "How the CWSC label is made"). 0.02 is 20-50x the KGE that one
#: SCE-UA run leaves on the table, so models that fit equally well are averaged, not picked by
#: optimiser noise.
DEFAULT_KGE_MARGIN = 0.02

#: The identifiable range of sc holds the sc values whose best objective (the other
#: parameters re-optimised) lies within this of the best: 0.01 in KGE.
IDENTIFIABILITY_TOLERANCE = 0.01
#: SCE-UA evaluations per point of that profile (9 grid points, 3 bisections per edge).
PROFILE_EVALUATIONS = 100

#: Bits of the quality flags (band 3 of the CWSC labels), and what each means.
FLAG_BITS = {
    1: "sc within 1 % of a bound of its range in a model entering the label",
    2: "the models entering the label disagree on sc by more than a factor 1.5",
    4: "fewer than 24 valid calibration months",
    8: "identifiable range of sc wider than the label itself",
    16: "the conserving limits emptied the store in more than 10 % of calibration months",
    32: "cold months (PET below 5 mm) hold more than 15 % of the precipitation and no temperature was given",
    64: "the label rests on a model that evaporates more than PET in more than 10 % of calibration months",
    128: "the forcing does not balance: long-term runoff above precipitation, or P - Q above PET",
}


#: Flags that ``mask`` excludes by default:
#:
#: - 1, labels at a bound of sc, which are censored values rather than estimates (Tamaulipas'
#:   0.09 mm): on the demo twin 1.1 % of the kept labels, and excluding them lifts the labels'
#:   R2 against the truth from 0.879 to 0.887 (``python -m benchmarks label_quality``);
#: - 64, labels that rest on a model evaporating above PET: such a model fits by compensating
#:   (issue 35: 1.5-1.9 x PET in 98-99 % of months where PET is too low), so the label is not
#:   a property of the catchment. On the nine real catchments one label carries it (Au
#:   Saumon); on the demo twin 57 % do, because the twin's runoff is itself made by SWBM and
#:   TVGM evaporating above PET (the mask then keeps 116 of 271 labels, R2 0.872 against
#:   0.879): docs/science.md, "Evaporation above PET";
#: - 128, forcing that cannot balance over the record (none of the real catchments, no cell
#:   of the twin): a label there is the model's answer to the forcing's error.
#:
#: The other bits cost more labels than they gain (8: 10 % for +0.014) or lose truth (16: the
#: twin's own physics), so they are the user's choice.
DEFAULT_EXCLUDE_FLAGS = 1 | 64 | 128


def flag_legend() -> str:
    """``1 = ..., 2 = ...``: the flag bits in words, for band descriptions and help."""
    return "; ".join(f"{bit} = {text}" for bit, text in FLAG_BITS.items())


def parse_models(text: str, label: str = "MODELS") -> list[str]:
    """``"dwbm, TVGM"`` -> ``["DWBM", "TVGM"]`` (order kept, duplicates dropped); an unknown
    or empty list is a ``BadInput`` naming ``label``."""
    names = [m.strip().upper() for m in str(text).split(",") if m.strip()]
    bad = [m for m in names if m not in MODELS]
    if not names or bad:
        raise ParameterError(
            f"{label}: unknown model(s) {', '.join(bad) or '(none)'}; use a subset of {', '.join(MODELS)}"
        )
    return list(dict.fromkeys(names))
