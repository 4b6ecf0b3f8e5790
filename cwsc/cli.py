"""Command-line parsing only: ``python -m cwsc <command> [options]``.

:data:`COMMANDS` is the table: each command's module in :mod:`cwsc.commands` and the
function that runs it. This file turns arguments into that call and hands it to
:func:`cwsc.runtime.protocol.run`, which owns the event stream and exit status. It imports only
the standard library (the QGIS plugin's contract test parses with it in QGIS's Python).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Sequence

from cwsc import __version__
from cwsc.commands.options import absent, help_for, refuse_contradictions
from cwsc.hydro.options import (
    DEFAULT_EXCLUDE_FLAGS,
    DEFAULT_KGE_MARGIN,
    DEFAULT_MAX_EVALUATIONS,
    DEFAULT_RESTARTS,
    FORMULATIONS,
    IDENTIFIABILITY_TOLERANCE,
    KGE_VERSIONS,
    MODELS,
    OBJECTIVES,
    PROFILE_EVALUATIONS,
)
from cwsc.ml.options import LEARN_BATCH_SIZE, LEARN_EPOCHS, LEARN_PRETRAIN_EPOCHS
from cwsc.runtime import protocol

#: command -> (module in cwsc.commands, function). Modules load only when their
#: command runs (torch takes a second to import).
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "info_command"),
    "prepare": ("prepare", "prepare_command"),
    "calibrate": ("calibrate", "calibrate_command"),
    "mask": ("mask", "mask_command"),
    "train": ("train", "train_command"),
    "learn": ("learn", "learn_command"),
    "predict": ("predict", "predict_command"),
    "evaluate": ("evaluate", "evaluate_command"),
    "evaluate-catchments": ("evaluate_catchments", "evaluate_catchments_command"),
    "demo-data": ("demo_data", "demo_data_command"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as a ``bad_input`` event (exit 2) for the plugin
    (``--json``), and as argparse does, in the words of the command line, for a person."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if not _wants_json(sys.argv[1:] if _ARGV is None else _ARGV):
            command = self.prog.split()[-1]
            self.print_usage(sys.stderr)
            message = _console_for(command, quiet=False).rename(message)
            self.exit(protocol.EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")
        protocol.emit("error", kind="bad_input", message=f"{self.prog}: {message}")
        sys.stderr.write(self.format_usage())
        sys.exit(protocol.EXIT_BAD_INPUT)


#: The arguments :func:`main` parses (None: ``sys.argv[1:]``), for :meth:`_Parser.error`.
_ARGV: list[str] | None = None


def _wants_json(argv: Sequence[str]) -> bool:
    """``--json`` anywhere before ``--``, or ``CWSC_JSON=1`` (the plugin sets it): events as
    JSON lines, the plugin's protocol."""
    from cwsc.machine.environment import json_events

    if json_events():
        return True
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def _output_mode(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """``--json`` and ``--quiet``, before the command or after it."""
    default = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--json",
        action="store_true",
        help="write the run's events as JSON lines on stdout (the protocol the QGIS plugin reads) "
        "instead of a progress bar and a summary",
        **default,
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar, no summary: warnings and errors only (for scripts)",
        **default,
    )


def _number(name: str):
    """A finite number (NaN and infinity refused), for the parameter ``name``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number, got {text!r}")
        return value

    return parse


def _count(name: str, minimum: int = 1):
    """A whole number of at least ``minimum``, for the parameter ``name``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be at least {minimum}, got {value}")
        return value

    return parse


def _forcing_options(parser: argparse.ArgumentParser) -> None:
    """How P, PET and Q are read: nodata, units and first month overrides, the period."""
    for key, name in (
        ("precip", "PRECIPITATION"),
        ("pet", "PET"),
        ("runoff", "RUNOFF"),
        ("temperature", "TEMPERATURE"),
    ):
        parser.add_argument(
            f"--{key}-nodata",
            type=_number(f"{name}_NODATA"),
            default=None,
            help="a value to read as nodata (when the file does not declare it)",
        )
        parser.add_argument(
            f"--{key}-units",
            default="auto",
            help=(
                "auto (from the file; none: degrees C), or C or K"
                if key == "temperature"
                else "auto (from the file; none: mm/month), or e.g. mm/month, mm/day, kg m-2 s-1, m"
            ),
        )
        parser.add_argument(
            f"--{key}-start",
            default=None,
            help="first month (YYYY-MM) of a file that does not say its months",
        )
    parser.add_argument("--period-start", default=None, help="first month used (YYYY-MM)")
    parser.add_argument("--period-end", default=None, help="last month used (YYYY-MM)")


def _forcing_inputs(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """P, PET and Q (GeoTIFF or NetCDF, one band per month), their NetCDF variables and how
    they are read."""
    for key, what in (
        ("precip", "monthly precipitation"),
        ("pet", "monthly potential evapotranspiration"),
        ("runoff", "monthly runoff"),
    ):
        parser.add_argument(
            f"--{key}",
            required=required,
            default=None,
            help=f"{what}: GeoTIFF or NetCDF (months and units from the file)",
        )
    parser.add_argument(
        "--temperature",
        default=None,
        help="monthly mean air temperature (optional; GeoTIFF or NetCDF, C or K): runs a snow store "
        "ahead of the models",
    )
    for key in ("precip", "pet", "runoff", "temperature"):
        parser.add_argument(f"--{key}-var", help="NetCDF variable, when the file holds several")
    parser.add_argument("--time-dim", help="NetCDF time dimension name, when it cannot be found")
    _forcing_options(parser)


def _extent(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--extent",
        default=None,
        help="xmin,xmax,ymin,ymax [CRS]: work on the cells of this region only (give it as --extent=...)",
    )


def _periods(parser: argparse.ArgumentParser) -> None:
    """The formulation and the calibration period, the same for calibrate and learn."""
    parser.add_argument("--formulation", default=FORMULATIONS[0], choices=FORMULATIONS)
    parser.add_argument(
        "--warmup-months",
        type=_count("WARMUP_MONTHS", 0),
        default=None,
        help="months the models run before the calibration period, to fill their stores",
    )
    parser.add_argument(
        "--calibration-fraction",
        type=_number("CALIBRATION_FRACTION"),
        default=0.75,
        help="calibration ends at this fraction of the months; validation is the rest",
    )


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="auto: CUDA when available, else CPU",
    )


def _margin(text: str) -> float | str:
    if text.strip().lower() in ("none", "off", ""):
        return "none"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def _parallel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_count("WORKERS"),
        default=None,
        help="worker processes (default: CWSC_WORKERS, else every core)",
    )
    parser.add_argument(
        "--dask-scheduler",
        default=None,
        help="address of a running dask.distributed scheduler that runs the shards (tcp://host:8786)",
    )
    parser.add_argument(
        "--shard-cells",
        type=_count("SHARD_CELLS"),
        default=None,
        help="land cells per shard (default 1024 on CPU, 65536 on CUDA); part "
        "of the result's definition, like the seed",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cwsc",
        description="CWSC toolkit: catchment water storage capacity from monthly water balance "
        "models and a deep residual network. Each command shows a progress bar and ends with a "
        "summary of what it wrote; with --json it writes JSON-lines events on stdout instead. "
        "'cwsc COMMAND --help' lists a command's options with their defaults.",
    )
    parser.add_argument("--version", action="version", version=f"cwsc {__version__}")
    _output_mode(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    sub.add_parser("info", help="versions, devices, and the interpreter")

    p = sub.add_parser(
        "prepare", help="forcing from real products onto one grid in mm/month, and climate predictors"
    )
    _forcing_inputs(p)
    p.add_argument(
        "--target-grid", default=None, help="a raster whose grid the outputs take (default: the runoff's)"
    )
    p.add_argument("--extent", default=None, help="xmin,xmax,ymin,ymax [CRS] to cut the target grid to")
    p.add_argument("--out-precip", required=True)
    p.add_argument("--out-pet", required=True)
    p.add_argument("--out-runoff", required=True)
    p.add_argument("--out-temperature", default=None)
    p.add_argument("--out-predictors", default=None, help="a folder for the climate predictors")

    p = sub.add_parser("calibrate", help="calibrate DWBM/SWBM/TVGM per cell: CWSC labels and KGE")
    _forcing_inputs(p)
    _extent(p)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of DWBM,SWBM,TVGM")
    p.add_argument("--objective", default=OBJECTIVES[0], choices=OBJECTIVES)
    p.add_argument("--kge-form", default=KGE_VERSIONS[0], choices=KGE_VERSIONS)
    _periods(p)
    p.add_argument(
        "--restarts",
        type=_count("RESTARTS"),
        default=DEFAULT_RESTARTS,
        help="independent SCE-UA runs per cell",
    )
    p.add_argument(
        "--max-evaluations",
        type=_count("MAX_EVALUATIONS"),
        default=DEFAULT_MAX_EVALUATIONS,
        help="SCE-UA evaluations per cell and run",
    )
    p.add_argument(
        "--kge-threshold",
        type=_number("MODEL_KGE_THRESHOLD"),
        default=0.0,
        help="models with calibration KGE above this enter the joint CWSC label",
    )
    p.add_argument(
        "--kge-margin",
        type=_margin,
        default=DEFAULT_KGE_MARGIN,
        help="and only models whose calibration KGE is within this of the cell's "
        "best model ('none': every model above the threshold)",
    )
    p.add_argument(
        "--identifiability-tolerance",
        type=_number("IDENTIFIABILITY_TOLERANCE"),
        default=IDENTIFIABILITY_TOLERANCE,
        help="KGE distance from the best inside the identifiable range of sc",
    )
    p.add_argument(
        "--profile-evaluations",
        type=_count("PROFILE_EVALUATIONS", 0),
        default=PROFILE_EVALUATIONS,
        help="SCE-UA evaluations per point of the sc profile (0: no range)",
    )
    p.add_argument("--seed", type=_count("SEED", 0), default=0)
    _parallel(p)
    p.add_argument(
        "--work-dir",
        default=None,
        help="save every finished shard here; a rerun with the same inputs and "
        "settings continues from them (removed on success)",
    )
    p.add_argument("--keep-work", action="store_true", help="keep the work folder on success")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument(
        "--compile",
        default="auto",
        choices=("auto", "on", "off"),
        help="fuse each model month into one kernel with torch.compile (auto: large runs "
        "when a compiler is present)",
    )
    _device(p)
    p.add_argument("--out-cwsc", required=True)
    p.add_argument("--out-kge", required=True)
    p.add_argument("--out-details", default=None)

    p = sub.add_parser("mask", help="keep labels whose KGE exceeds a threshold")
    p.add_argument("--labels", required=True)
    p.add_argument("--kge", required=True)
    p.add_argument("--threshold", type=_number("THRESHOLD"), default=0.0)
    p.add_argument(
        "--exclude-flags",
        type=_count("EXCLUDE_FLAGS", 0),
        default=DEFAULT_EXCLUDE_FLAGS,
        help="mask cells whose quality flags hold any of these bits (0: none)",
    )
    p.add_argument("--out", required=True)

    p = sub.add_parser("train", help="train the CWSC ResNet on predictor patches")
    p.add_argument("--predictors", nargs="+", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--kge", default=None)
    p.add_argument("--kge-threshold", type=_number("KGE_THRESHOLD"), default=0.0)
    p.add_argument("--patch-size", type=_count("PATCH_SIZE"), default=5)
    p.add_argument("--test-fraction", type=_number("TEST_FRACTION"), default=0.3)
    p.add_argument("--split", default="random", choices=("random", "blocks"))
    p.add_argument(
        "--block-size", type=_count("BLOCK_SIZE"), default=None, help="cells per side of a spatial block"
    )
    p.add_argument("--epochs", type=_count("EPOCHS"), default=None, help="passes over the training cells")
    p.add_argument("--batch-size", type=_count("BATCH_SIZE"), default=None, help="patches per step")
    p.add_argument("--recipe", default="default", choices=("default", "seed"))
    p.add_argument("--ensemble", type=_count("ENSEMBLE"), default=1)
    p.add_argument(
        "--trees",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="average the network with the gradient-boosted trees better on the validation cells, "
        "stored in the model file (--no-trees: the network alone)",
    )
    p.add_argument(
        "--position",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give the network each cell's latitude and longitude (sine and cosine) as four more "
        "channels, on a grid with a CRS (--no-position: the predictors alone)",
    )
    _extent(p)
    p.add_argument(
        "--blocks", type=_count("BLOCKS"), default=None, help="residual blocks per stage (n of 6n+2)"
    )
    p.add_argument("--widths", default=None, help="stage widths, e.g. 16,32,128")
    p.add_argument("--seed", type=_count("SEED", 0), default=0)
    _device(p)
    p.add_argument("--out-model", required=True)
    p.add_argument("--out-report", default=None)

    p = sub.add_parser(
        "learn",
        help="learn the models' parameters from runoff through the models "
        "(physics-guided): a model file for predict",
    )
    p.add_argument("--predictors", nargs="+", required=True)
    _forcing_inputs(p)
    _extent(p)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of DWBM,SWBM,TVGM")
    p.add_argument("--objective", default=OBJECTIVES[0], choices=OBJECTIVES)
    _periods(p)
    p.add_argument(
        "--kge-margin",
        type=_margin,
        default=DEFAULT_KGE_MARGIN,
        help="models whose fit is within this of the cell's best enter its CWSC",
    )
    p.add_argument(
        "--model-loss",
        default="best",
        choices=("best", "mean"),
        help="how the models' losses of a cell combine: a soft minimum, or the mean",
    )
    p.add_argument("--patch-size", type=_count("PATCH_SIZE"), default=11)
    p.add_argument("--test-fraction", type=_number("TEST_FRACTION"), default=0.3)
    p.add_argument("--split", default="random", choices=("random", "blocks"))
    p.add_argument(
        "--block-size", type=_count("BLOCK_SIZE"), default=None, help="cells per side of a spatial block"
    )
    p.add_argument(
        "--epochs",
        type=_count("EPOCHS"),
        default=LEARN_EPOCHS,
        help="a maximum: learning stops early when validation stops improving",
    )
    p.add_argument(
        "--batch-size", type=_count("BATCH_SIZE", 2), default=LEARN_BATCH_SIZE, help="cells per step"
    )
    p.add_argument(
        "--shared-sc",
        action="store_true",
        help="one sc for every model (they differ in their other parameters only)",
    )
    p.add_argument(
        "--pretrain-epochs",
        type=_count("PRETRAIN_EPOCHS", 0),
        default=LEARN_PRETRAIN_EPOCHS,
        help="epochs of pretraining the network on a per-cell calibration of the "
        "training cells before learning from runoff (0: none)",
    )
    p.add_argument(
        "--checkpoint-months",
        type=_count("CHECKPOINT_MONTHS", 0),
        default=0,
        help="recompute the month loop in blocks of this many months in the "
        "backward pass (less memory, more time; 0: keep every month)",
    )
    p.add_argument(
        "--blocks", type=_count("BLOCKS"), default=None, help="residual blocks per stage (n of 6n+2)"
    )
    p.add_argument("--widths", default=None, help="stage widths, e.g. 16,32,64")
    p.add_argument(
        "--labels",
        default=None,
        help="calibrate's CWSC labels (optional): the report compares the learned map",
    )
    p.add_argument("--seed", type=_count("SEED", 0), default=0)
    _device(p)
    p.add_argument("--out-model", required=True)
    p.add_argument("--out-report", default=None)

    p = sub.add_parser("predict", help="CWSC raster from a model file and predictors")
    p.add_argument("--model", required=True)
    p.add_argument("--predictors", nargs="+", required=True)
    p.add_argument("--batch-size", type=_count("BATCH_SIZE"), default=None)
    _extent(p)
    p.add_argument(
        "--allow-shift",
        action="store_true",
        help="predict even where predictors lie far outside the training distribution",
    )
    _device(p)
    p.add_argument("--out", required=True)
    p.add_argument(
        "--out-netcdf",
        default=None,
        help="also write the map as CF-1.8 NetCDF (.nc), with the ensemble spread",
    )
    p.add_argument("--out-uncertainty", default=None)
    p.add_argument("--out-flags", default=None)

    p = sub.add_parser("evaluate", help="compare a CWSC map with a reference and with free calibration")
    p.add_argument("--cwsc", required=True)
    p.add_argument("--reference", default=None)
    _forcing_inputs(p, required=False)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--restarts", type=_count("RESTARTS"), default=DEFAULT_RESTARTS)
    p.add_argument(
        "--max-cells", type=_count("MAX_CELLS"), default=2000, help="cells sampled for the simulation check"
    )
    p.add_argument(
        "--details", default=None, help="calibrate's details raster: which models make each cell's label"
    )
    p.add_argument("--labels", default=None, help="calibrate's CWSC labels: a breakdown by quality flag")
    p.add_argument(
        "--model", default=None, help="the model file: score the network's held-out test cells only"
    )
    p.add_argument("--formulation", default=FORMULATIONS[0], choices=FORMULATIONS)
    p.add_argument(
        "--max-evaluations",
        type=_count("MAX_EVALUATIONS"),
        default=DEFAULT_MAX_EVALUATIONS,
        help="SCE-UA evaluations per cell and run",
    )
    p.add_argument("--seed", type=_count("SEED", 0), default=0)
    _device(p)
    p.add_argument("--out-report", required=True)

    p = sub.add_parser(
        "evaluate-catchments", help="score a CWSC map at gauged catchments against their own calibration"
    )
    p.add_argument(
        "--catchments",
        required=True,
        help="catchment polygons (GeoPackage, Shapefile, GeoJSON; path|layername=NAME picks a layer)",
    )
    p.add_argument("--id-field", required=True, help="the polygons' field holding the catchment id")
    p.add_argument(
        "--series",
        required=True,
        help="CSV of monthly series: id, month (YYYY-MM), runoff[, precipitation, pet, temperature]",
    )
    p.add_argument(
        "--runoff-units",
        default="mm/month",
        choices=("mm/month", "mm/day", "m3/s"),
        help="units of the table's runoff (m3/s: converted with the polygon's area on the ellipsoid)",
    )
    for key, what in (
        ("precip", "monthly precipitation"),
        ("pet", "monthly potential evapotranspiration"),
        ("temperature", "monthly mean air temperature"),
    ):
        p.add_argument(
            f"--{key}",
            default=None,
            help=f"{what} raster, averaged over each polygon where the table has no such column",
        )
        p.add_argument(f"--{key}-var", help="NetCDF variable, when the file holds several")
    p.add_argument(
        "--temperature-units", default="auto", help="auto (from the file; none: degrees C), or C or K"
    )
    p.add_argument("--cwsc", required=True)
    p.add_argument("--reference-maps", nargs="*", default=[], help="other CWSC maps (mm) scored side by side")
    p.add_argument("--reference-names", nargs="*", default=[], help="a name for each reference map")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--objective", default=OBJECTIVES[0], choices=OBJECTIVES)
    _periods(p)
    p.add_argument("--restarts", type=_count("RESTARTS"), default=DEFAULT_RESTARTS)
    p.add_argument(
        "--max-evaluations",
        type=_count("MAX_EVALUATIONS"),
        default=DEFAULT_MAX_EVALUATIONS,
        help="SCE-UA evaluations per catchment, model and run",
    )
    p.add_argument("--seed", type=_count("SEED", 0), default=0)
    p.add_argument(
        "--out",
        required=True,
        help="the catchments with their scores: a layer of this GeoPackage (.gpkg), its other layers kept",
    )
    p.add_argument(
        "--layer",
        default=None,
        help="the layer of --out the scores are written to (default cwsc_scores; only that layer is replaced)",
    )
    p.add_argument("--out-table", required=True, help="the same scores as a table (.csv)")
    p.add_argument("--out-report", required=True)

    p = sub.add_parser("demo-data", help="write the synthetic twin-experiment region")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=_count("SEED", 0), default=42)
    p.add_argument(
        "--formulation",
        default=FORMULATIONS[0],
        choices=FORMULATIONS,
        help="the model formulation that makes the demo's runoff",
    )
    p.add_argument(
        "--snow",
        action="store_true",
        help="the snowy variant: monthly air temperature (temperature.tif), and runoff made through a "
        "snow store, so that the mountains and the north need TEMPERATURE",
    )
    _complete_help(sub)
    return parser


class _HelpFormatter(argparse.HelpFormatter):
    """Adds the default to every option's help line that does not say it already (options
    whose default is no value say what leaving them out means: :func:`_complete_help`)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            not (default is None or default is False or default == [] or default == argparse.SUPPRESS)
            and "(default" not in text
        ):
            text += " (default: %(default)s)"
        return text


def _complete_help(sub: argparse._SubParsersAction) -> None:
    """Every option's help from :mod:`cwsc.commands.options` where the parser gives none; each
    command's help opens with what it does (its line in ``cwsc --help``)."""
    said = {action.dest: action.help for action in sub._choices_actions}
    for command, parser in sub.choices.items():
        _output_mode(parser)
        parser.formatter_class = _HelpFormatter
        if parser.description is None and said.get(command):
            text = said[command]
            parser.description = text[0].upper() + text[1:] + "."
        for action in parser._actions:
            flag = next((f for f in action.option_strings if f.startswith("--")), None)
            if flag and flag != "--help" and not action.help:
                action.help = help_for(command, flag)
            if (
                flag
                and action.default in (None, [])
                and not action.required
                # a switch left out is no value; one with --no- is a choice left to the data
                and (action.nargs != 0 or isinstance(action, argparse.BooleanOptionalAction))
                and "(default" not in (action.help or "")
            ):
                action.help = f"{action.help or ''} (default: {absent(command, flag)})".strip()


def command_options(command: str) -> dict[str, dict]:
    """The options of ``command`` as the parser defines them: ``{"--seed": {"dest": "seed",
    "default": 0, "choices": None, "required": False}, ...}`` (for the plugin's contract test
    and for documentation)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for action in sub.choices[command]._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                out[flag] = {
                    "dest": action.dest,
                    "default": action.default,
                    "choices": tuple(action.choices) if action.choices else None,
                    "required": action.required,
                    "help": action.help,
                }
    return out


def _dispatch(args: argparse.Namespace) -> None:
    import importlib

    module, function = COMMANDS[args.command]
    getattr(importlib.import_module(f"cwsc.commands.{module}"), function)(args)


def _start(args: argparse.Namespace) -> None:
    from cwsc.machine.devices import prepare_process

    # A first event before the heavy imports (torch takes ~1 s): the user sees the run start.
    protocol.progress(0.0, f"starting {args.command}")
    prepare_process()
    refuse_contradictions(args)  # every command: options no run can honour, by name
    _dispatch(args)


def _console_for(command: str, quiet: bool):
    """The console that renders ``command``'s events for a person, naming the options the user
    typed (``--precip``) where the backend's messages name the plugin's parameters."""
    from cwsc.commands.options import AMBIGUOUS_NAMES, option_of
    from cwsc.runtime.console import Console

    flags = set(command_options(command)) if command in COMMANDS else set()

    def option(name: str) -> str | None:
        flag = option_of(name)
        return flag if flag in flags else None

    return Console(command, quiet=quiet, option=option, ambiguous=AMBIGUOUS_NAMES)


def _extent_words(argv: list[str]) -> list[str]:
    """``--extent`` as its help shows it, ``xmin,xmax,ymin,ymax [CRS]``, typed without quotes
    (``--extent=-10,5,40,50 [EPSG:4326]``, ``--extent 0,5,2,8 [EPSG:4326]``): the shell makes
    the CRS a word of its own, joined here to the extent it belongs to."""
    out: list[str] = []
    for word in argv:
        joined = (
            out and word.startswith("[") and (out[-1].startswith("--extent=") or out[-2:-1] == ["--extent"])
        )
        if joined and "[" not in out[-1]:
            out[-1] = f"{out[-1]} {word}"
        else:
            out.append(word)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status (0, 1, 2 or 3). Events go
    to a person (progress bar, summary) unless ``--json`` asks for the plugin's JSON lines."""
    global _ARGV
    _ARGV = _extent_words(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(_ARGV)
    if not (getattr(args, "json", False) or _wants_json(())):
        protocol.use_console(_console_for(args.command, quiet=getattr(args, "quiet", False)))
    return protocol.run(lambda: _start(args))


def _release_semaphores() -> None:
    """Unlink the worker pool's semaphores before the quick exit: without it the resource
    tracker warns of "leaked semaphore objects" under the run's last line. Only finalizers that
    do not wait (exit priority 0 and above: semaphores, queue closes) run here."""
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None:
        return
    try:
        mp_util._run_finalizers(0)
    except Exception:  # noqa: BLE001 - a stopped run must exit whatever this does
        pass


def run() -> None:
    """The ``cwsc`` console command and ``python -m cwsc``: :func:`main`, then exit with its
    status."""
    try:
        code = main()
    except KeyboardInterrupt:
        # Ctrl-C before the run's own handler is in place (while Python starts): one line, as
        # a stop later on gives, not a traceback.
        if _wants_json(sys.argv[1:]):
            protocol.emit("error", kind="cancelled", message="stopped by signal SIGINT")
        else:
            sys.stderr.write("cwsc: stopped (Ctrl-C) before the run began; nothing was written.\n")
        code = protocol.EXIT_CANCELLED
    if code == protocol.EXIT_CANCELLED:
        # Everything the run made is already removed (its contexts unwound before the event);
        # skip the interpreter's teardown (a second with torch loaded) so Cancel is quick.
        _release_semaphores()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
