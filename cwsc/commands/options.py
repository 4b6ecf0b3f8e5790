"""What the commands share: the help line of every command-line option (its meaning, unit and
default, written once: :mod:`cwsc.cli` uses it, and the plugin's contract test checks that every
option has one), and the helpers that turn parsed options into the library's settings.

Imports only the standard library at module level: the plugin's contract test reads it in
QGIS's Python.
"""

from __future__ import annotations

import argparse

from cwsc.errors import ParameterError
from cwsc.ml.options import POSITION_MIN_CELLS

#: GDAL's block cache (MB). Its default (5 % of RAM) alone took about 1 GB of peak RSS on a
#: 720 x 360 x 360-month input; reading strip by strip needs little cache.
GDAL_CACHE_MB = 256


def kge_margin(args: argparse.Namespace) -> float | None:
    """The label rule's margin from ``--kge-margin``: the default when absent, None for
    'none' (every model above the threshold)."""
    from cwsc.hydro.options import DEFAULT_KGE_MARGIN

    margin = getattr(args, "kge_margin", None)
    if margin is None:
        return DEFAULT_KGE_MARGIN
    if margin == "none":
        return None
    if margin < 0:
        raise ParameterError(f"MODEL_KGE_MARGIN must be 0 or more, got {margin:g}")
    return margin


def forcing_options(args: argparse.Namespace):
    """The :class:`~cwsc.io.forcing.ForcingOptions` of the command line (calibrate and
    evaluate share them)."""
    from cwsc.io import months
    from cwsc.io.forcing import ForcingOptions

    keys = {"PRECIPITATION": "precip", "PET": "pet", "RUNOFF": "runoff", "TEMPERATURE": "temperature"}

    def month(name: str, value):
        return None if value in (None, "") else months.parse(value, name)

    return ForcingOptions(
        variables={k: getattr(args, f"{v}_var", None) for k, v in keys.items()},
        time_dim=getattr(args, "time_dim", None),
        nodata={k: getattr(args, f"{v}_nodata", None) for k, v in keys.items()},
        units={k: getattr(args, f"{v}_units", "auto") for k, v in keys.items()},
        starts={k: month(f"{k}_START", getattr(args, f"{v}_start", None)) for k, v in keys.items()},
        period_start=month("PERIOD_START", getattr(args, "period_start", None)),
        period_end=month("PERIOD_END", getattr(args, "period_end", None)),
        extent=getattr(args, "extent", None),
    )


def parse_widths(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    try:
        w = tuple(int(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        w = ()
    if len(w) != 3 or min(w) < 1:
        raise ParameterError(f"WIDTHS: '{text}' must be three positive integers such as 16,32,128")
    return w  # type: ignore[return-value]


FLAGS_BAND_PREFIX = "quality flags"


def flags_band(descriptions: list[str]) -> int | None:
    """The 0-based band of the quality flags in a label raster, or None."""
    for i, d in enumerate(descriptions):
        if (d or "").startswith(FLAGS_BAND_PREFIX):
            return i
    return None


#: Seeds are drawn into 64-bit generators (torch, numpy) together with a shard's number.
MAX_SEED = 2**63 - 1


def refuse_contradictions(args: argparse.Namespace) -> None:
    """Options that no run can honour, refused by name before any work (one sentence each):
    a non-finite number (``--kge-margin nan``), a seed beyond 64 bits, ``BLOCK_SIZE`` with the
    random split, a reversed period. Called for every command by :mod:`cwsc.cli`."""
    import math

    for dest, value in sorted(vars(args).items()):
        if isinstance(value, float) and not math.isfinite(value):
            name = {"kge_margin": "MODEL_KGE_MARGIN"}.get(dest, dest.upper())
            raise ParameterError(f"{name} must be a finite number, got {value}")
    seed = getattr(args, "seed", None)
    if isinstance(seed, int) and not 0 <= seed <= MAX_SEED:
        raise ParameterError(
            f"SEED: {seed} does not fit in 63 bits; give a whole number from 0 to {MAX_SEED}"
        )
    if getattr(args, "split", None) == "random" and getattr(args, "block_size", None) is not None:
        raise ParameterError(
            f"BLOCK_SIZE: {args.block_size} is given with SPLIT=random, which holds out single cells, not "
            "blocks; give SPLIT=blocks to hold out blocks of that size, or leave BLOCK_SIZE out"
        )
    start, end = getattr(args, "period_start", None), getattr(args, "period_end", None)
    if start not in (None, "") and end not in (None, ""):
        from cwsc.errors import PeriodError
        from cwsc.io import months

        first, last = months.parse(start, "PERIOD_START"), months.parse(end, "PERIOD_END")
        if first > last:
            raise PeriodError(f"PERIOD_START {start} is after PERIOD_END {end}: the period is reversed")


#: Help lines of the options that mean the same in every command that has them (their unit
#: and what the default means; the parser adds the default's value). :data:`COMMAND_HELP`
#: holds those whose meaning depends on the command.
HELP: dict[str, str] = {
    "--objective": "what calibration maximises: kge (Kling-Gupta efficiency) or nse (Nash-Sutcliffe)",
    "--kge-form": "the KGE's form: 2009 (Gupta et al.) or 2012 (Kling et al., variability as CV ratio)",
    "--formulation": "the models' equations: conserving (water balance closed), seed (as published), "
    "or bounded (evaporation bounded by PET)",
    "--models": "comma-separated subset of DWBM,SWBM,TVGM",
    "--seed": "one number that drives every random choice; same seed, same bytes",
    "--dtype": "floating point precision of the model runs",
    "--device": "auto: CUDA when available, else CPU",
    "--patch-size": "cells per side of the square patch around each cell (odd)",
    "--test-fraction": "fraction of the labelled cells held out for the test (0 to below 1)",
    "--split": "how test cells are held out: random cells, or blocks of cells (spatial)",
    "--block-size": "cells per side of a spatial block (default: a tenth of the grid's shorter side)",
    "--recipe": "the training settings: default (this toolkit's) or seed (the original paper's)",
    "--ensemble": "number of networks trained with different seeds; the network's prediction is their mean",
    "--out-report": "the HTML report (.html)",
    "--out-model": "the model file (.pt) that predict reads",
    "--kge-threshold": "KGE above which a cell's label is used",
    "--labels": "calibrate's CWSC labels raster (mm)",
    "--kge": "calibrate's KGE raster",
    "--predictors": "predictor rasters (GeoTIFF), one channel each, in the order of training",
    "--restarts": "independent SCE-UA runs per cell and model; the best is kept",
    "--out-precip": "precipitation in mm/month on the target grid (GeoTIFF)",
    "--out-pet": "potential evapotranspiration in mm/month on the target grid (GeoTIFF)",
    "--out-runoff": "runoff in mm/month on the target grid (GeoTIFF)",
    "--out-temperature": "air temperature in degrees C on the target grid (GeoTIFF; with --temperature)",
}

#: Help lines that depend on the command: ``(command, option) -> help``.
COMMAND_HELP: dict[tuple[str, str], str] = {
    (
        "calibrate",
        "--out-cwsc",
    ): "the CWSC labels (GeoTIFF, mm): label, identifiable range width, quality flags",
    ("calibrate", "--out-kge"): "the best model's calibration KGE per cell (GeoTIFF)",
    ("calibrate", "--out-details"): "every model's parameters and KGE per cell (GeoTIFF, optional)",
    ("mask", "--threshold"): "KGE at or below which a label is masked",
    ("mask", "--out"): "the masked labels (GeoTIFF, mm)",
    ("train", "--labels"): "CWSC labels (mm), masked or not: the training targets",
    ("train", "--kge"): "calibrate's KGE raster (optional): cells at or below KGE_THRESHOLD are left out",
    ("predict", "--model"): "a model file (.pt) written by train or learn",
    ("predict", "--batch-size"): "cells predicted at once (default: as many as memory allows)",
    ("predict", "--out"): "the CWSC map (GeoTIFF, mm)",
    ("predict", "--out-uncertainty"): (
        "the spread of the maps averaged (network members, and trees): their standard deviation "
        "around the map, weighted as in it (GeoTIFF, mm; optional)"
    ),
    ("predict", "--out-flags"): (
        "per cell 1 where the map was raised to the training labels' lowest value, 2 where "
        "lowered to their highest, 0 within (GeoTIFF; optional)"
    ),
    ("evaluate", "--cwsc"): "the CWSC map under test (mm)",
    ("evaluate", "--reference"): "a reference CWSC map on the same grid (mm; optional)",
    ("evaluate", "--out-report"): "the evaluation report (.html)",
    ("learn", "--out-report"): "the learning report (.html; optional)",
    ("train", "--out-report"): "the training report (.html; optional)",
    ("demo-data", "--out"): "a folder for the demo region's rasters (created)",
    ("evaluate-catchments", "--cwsc"): "the CWSC map under test (mm)",
    ("evaluate-catchments", "--out-report"): "the report (.html): table, map, hydrographs, sc against sc",
    ("demo-data", "--seed"): "the demo region's seed",
}


def help_for(command: str, option: str) -> str | None:
    """The help line of ``option`` in ``command``, or None when none is written."""
    return COMMAND_HELP.get((command, option)) or HELP.get(option)


#: What an option left out means, for the options whose default is no value (``--help`` shows
#: it as the default). ``tests/cwsc/test_cli.py`` holds the numbers to the library's.
ABSENT: dict[str, str] = {
    "--time-dim": "found in the file",
    "--period-start": "the first month every input has",
    "--period-end": "the last month every input has",
    "--extent": "the whole grid",
    "--temperature": "none: no snow store",
    "--dask-scheduler": "none: worker processes on this machine",
    "--work-dir": "none: a stopped run starts afresh",
    "--warmup-months": "min(months / 8, 24)",
    "--block-size": "a tenth of the labelled cells' longer side, at least 4",
    "--labels": "none",
    "--out-report": "none: no report",
    "--out-details": "none: not written",
    "--out-temperature": "none: not written",
    "--out-predictors": "none: no climate predictors",
    "--out-netcdf": "none: not written",
    "--out-uncertainty": "none: not written",
    "--out-flags": "none: not written (the log counts the cells)",
    "--reference-maps": "none",
    "--workers": "CWSC_WORKERS, else one per core",
}
for _key in ("precip", "pet", "runoff", "temperature"):
    ABSENT[f"--{_key}-var"] = "the file's one data variable"
    ABSENT[f"--{_key}-nodata"] = "the file's own nodata value"
    ABSENT[f"--{_key}-start"] = "the file's own dates"

#: :data:`ABSENT` for one command: ``(command, option) -> meaning``.
COMMAND_ABSENT: dict[tuple[str, str], str] = {
    ("train", "--kge"): "none: every labelled cell",
    ("train", "--epochs"): "40; 150 with --recipe seed",
    (
        "train",
        "--batch-size",
    ): "64, growing to 128 or 256 with tens of thousands of training cells; 32 with --recipe seed",
    ("train", "--position"): f"on with {POSITION_MIN_CELLS:,} labelled cells or more, on a grid with a CRS",
    ("train", "--blocks"): "2; 5 with --recipe seed",
    ("train", "--widths"): "16,32,64; 16,32,128 with --recipe seed",
    ("learn", "--blocks"): "2",
    ("learn", "--widths"): "16,32,64",
    ("learn", "--labels"): "none: no comparison in the report",
    ("predict", "--batch-size"): "as many cells as memory allows",
    ("evaluate", "--reference"): "none: no agreement with a reference",
    ("evaluate", "--details"): "none",
    ("evaluate", "--labels"): "none: no breakdown by flag",
    ("evaluate", "--model"): "none: every cell",
    ("evaluate", "--precip"): "none: no free vs fixed calibration",
    ("evaluate", "--pet"): "none: no free vs fixed calibration",
    ("evaluate", "--runoff"): "none: no free vs fixed calibration",
    ("evaluate-catchments", "--precip"): "the table's precipitation column",
    ("evaluate-catchments", "--pet"): "the table's pet column",
    ("evaluate-catchments", "--temperature"): "the table's temperature column, else no snow store",
    ("evaluate-catchments", "--reference-names"): "the maps' file names",
    ("prepare", "--target-grid"): "the runoff's grid",
}


def absent(command: str, option: str) -> str:
    """What leaving ``option`` out of ``command`` means (``--help`` shows it as the default)."""
    return COMMAND_ABSENT.get((command, option)) or ABSENT.get(option) or "none"


#: Parameter names that are also words of the trade: a message names the parameter only where
#: it leads a clause (``PET: ...``), not in ``P, PET and Q``.
AMBIGUOUS_NAMES = {"PET", "KGE", "CWSC", "MODEL", "MODELS", "LABELS", "DEVICE", "OUTPUT"}


def option_of(parameter: str) -> str:
    """The command-line option of the QGIS parameter ``parameter``: ``RESTARTS`` ->
    ``--restarts``, ``PRECIPITATION`` -> ``--precip``, ``PET_VARIABLE`` -> ``--pet-var``,
    ``OUTPUT_CWSC`` -> ``--out-cwsc``, ``MODEL_KGE_THRESHOLD`` -> ``--kge-threshold``. Whether a
    command has it is the parser's to say (:func:`cwsc.cli.command_options`); the page
    ``docs/cli.md`` lists every parameter with its option, and ``tests/plugin/test_cli_names.py``
    holds it to what the plugin passes."""
    words = parameter.lower().split("_")
    if words[0] == "output":
        words[0] = "out"
    if words[:2] == ["model", "kge"]:
        words = words[1:]
    words = [{"precipitation": "precip", "variable": "var"}.get(w, w) for w in words]
    return "--" + "-".join(words)
