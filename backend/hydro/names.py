"""The names the user chooses among (models, formulations, objectives), without torch.

The command line (:mod:`backend.cli`) offers these as choices and the QGIS plugin's enums
must match them (``tests/plugin/test_contract.py``), so they live in a module that imports
only the standard library.
"""

from __future__ import annotations

from backend.protocol import BadInput

MODELS = ("DWBM", "SWBM", "TVGM")
FORMULATIONS = ("conserving", "seed")
OBJECTIVES = ("kge", "nse")
KGE_VERSIONS = ("2009", "2012")


def parse_models(text: str, label: str = "MODELS") -> list[str]:
    """``"dwbm, TVGM"`` -> ``["DWBM", "TVGM"]`` (order kept, duplicates dropped); an unknown
    or empty list is a ``BadInput`` naming ``label``."""
    names = [m.strip().upper() for m in str(text).split(",") if m.strip()]
    bad = [m for m in names if m not in MODELS]
    if not names or bad:
        raise BadInput(f"{label}: unknown model(s) {', '.join(bad) or '(none)'}; "
                       f"use a subset of {', '.join(MODELS)}")
    return list(dict.fromkeys(names))
