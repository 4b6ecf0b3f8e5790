"""``python -m cwsc evaluate-catchments``: a CWSC map scored at gauged catchments.

For every catchment (a polygon with an id, and monthly series in a CSV table): the map's
area-weighted mean sc and spread inside the polygon; the catchment's own calibration (the
label rule, the identifiable range, the quality flags); and the KGE over the calibration and
validation months with sc fixed to the map (the other parameters calibrated, in the models of
the catchment's label), free, and with a constant map (the median of the map's catchment
means). Precipitation, PET and temperature come from the table's columns or, where it has
none, from rasters averaged over each polygon with exact cell fractions; with temperature the
snow store runs ahead of the models.

A catchment that cannot be scored (no polygon, no series, too few months, off the rasters,
m3/s without an area) is listed with its reason in every output: nothing is dropped silently.

Writes ``--out`` (GeoPackage of the polygons with their scores), ``--out-table`` (CSV, the
same fields) and ``--out-report`` (HTML), committed together.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cwsc.errors import InputFileError, OutputRefused, ParameterError
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs

VARIABLE_LABELS = {"precipitation": "PRECIPITATION", "pet": "PET", "temperature": "TEMPERATURE"}
BASE_FIELDS = [
    ("id", "str"),
    ("area_km2", "float"),
    ("months", "int"),
    ("cwsc_map_mm", "float"),
    ("cwsc_map_sd_mm", "float"),
    ("sc_free_mm", "float"),
    ("sc_low_mm", "float"),
    ("sc_high_mm", "float"),
    ("flags", "int"),
    ("kge_cal_free", "float"),
    ("kge_val_free", "float"),
    ("kge_cal_map", "float"),
    ("kge_val_map", "float"),
    ("kge_val_constant", "float"),
    ("in_range_map", "int"),
    ("in_range_constant", "int"),
    ("models", "str"),
    ("snow", "float"),
    ("not_scored", "str"),
    ("notes", "str"),
]


def evaluate_catchments_command(args: argparse.Namespace) -> None:
    import rasterio

    from cwsc.commands.options import GDAL_CACHE_MB

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        _run(args)


def _names(args: argparse.Namespace) -> list[str]:
    import re

    maps = list(args.reference_maps or [])
    names = list(args.reference_names or [])
    if names and len(names) != len(maps):
        raise ParameterError(
            f"REFERENCE_MAPS: {len(maps)} maps but {len(names)} names; give one name per map or none"
        )
    names = names or [Path(m).stem for m in maps]
    clean = [
        re.sub(r"[^0-9a-zA-Z]+", "_", n).strip("_").lower() or f"map{i + 1}" for i, n in enumerate(names)
    ]
    if len(set(clean)) != len(clean) or {"map", "constant", "free"} & set(clean):
        raise ParameterError(
            f"REFERENCE_MAPS: the names {', '.join(clean)} must differ from each other and from "
            "map, constant and free"
        )
    taken = {name for name, _ in BASE_FIELDS}
    for n in clean:
        if f"cwsc_{n}_mm" in taken or f"kge_val_{n}" in taken:
            raise ParameterError(
                f"REFERENCE_NAMES: the name '{n}' would write the field cwsc_{n}_mm or kge_val_{n}, which the "
                "output already has for the map under test; give the reference map another name"
            )
    return clean


def _map_values(path: str, label: str, shapes, problems):
    """Each catchment's area-weighted mean and spread (mm) of a one-band map; catchments off
    the map are added to ``problems`` (once)."""
    from cwsc.io import catchments as C
    from cwsc.io import gate

    read = gate.read_map(path, label)
    values, notes, warnings, grid = read.values, read.notes, read.warnings, read.grid
    for line in notes:
        protocol.log(line)
    for line in warnings:
        protocol.warning(line)
    covers, off = C.cover_catchments(shapes, grid.transform, grid.crs, grid.shape, path)
    known = {p.id for p in problems}
    problems += [p for p in off if p.id not in known]
    means = {k: float(C.weighted_mean(values, c)[0]) for k, c in covers.items()}
    spreads = {k: C.weighted_spread(values, c) for k, c in covers.items()}
    return means, spreads


def _raster_series(path: str, label: str, variable, shapes, problems, args) -> dict[str, dict[int, float]]:
    """Each catchment's monthly series (month number -> value, mm/month or C) of a raster
    with one band per month, averaged over the polygon."""
    from cwsc.io import catchments as C
    from cwsc.io import gate

    override = getattr(args, "temperature_units", "auto") if label == "TEMPERATURE" else "auto"
    read = gate.read_dated(path, label, variable, override)
    data, months, grid, notes = read.data, read.months, read.grid, read.notes
    for line in notes:
        protocol.log(line)
    covers, off = C.cover_catchments(shapes, grid.transform, grid.crs, grid.shape, path)
    known = {p.id for p in problems}
    problems += [p for p in off if p.id not in known]
    return {k: dict(zip(months, C.weighted_mean(data, c))) for k, c in covers.items()}


def _bit(value: float) -> int | None:
    """1 / 0 from a 1.0 / 0.0 check, None where it could not be made."""
    return None if not np.isfinite(value) else int(value)


def _longest_run(ok: np.ndarray) -> slice:
    best, start, run = slice(0, 0), None, 0
    for i, good in enumerate(list(ok) + [False]):
        if good and start is None:
            start = i
        if not good and start is not None:
            if i - start > run:
                best, run = slice(start, i), i - start
            start = None
    return best


def _assemble(series, rasters: dict, area: float, args, min_months: int):
    """(months, P, PET, Q, T or None) of one catchment on its longest stretch of consecutive
    months with precipitation and PET (and temperature when there is one), or a reason."""
    from cwsc.io import catchments as C
    from cwsc.io import months as M

    numbers = series.month_numbers
    axis = list(range(min(numbers), max(numbers) + 1))
    index = {m: i for i, m in enumerate(axis)}

    def column(values):
        out = np.full(len(axis), np.nan)
        if values is not None:
            for m, v in zip(numbers, values):
                out[index[m]] = v
        return out

    try:
        q = C.runoff_in_mm(column(series.runoff), axis, args.runoff_units, area, id=series.id)
    except ParameterError as exc:
        return None, str(exc)
    data = {}
    for var in ("precipitation", "pet", "temperature"):
        values = getattr(series, var)
        if values is not None and np.isfinite(values).any():
            data[var] = column(values)
        elif series.id in rasters.get(var, {}):
            by_month = rasters[var][series.id]
            data[var] = np.array([by_month.get(m, np.nan) for m in axis])
    for var in ("precipitation", "pet"):
        if var not in data:
            return None, (
                f"catchment {series.id}: no {var} (the table has no such column for it and no "
                f"{VARIABLE_LABELS[var]} raster covers it)"
            )
    t = data.get("temperature")
    if t is not None and np.isfinite(t).any() and float(np.nanmax(t)) < 0.0:
        return None, (
            f"catchment {series.id}: its TEMPERATURE is below freezing in every month (at most "
            f"{float(np.nanmax(t)):.3g} degrees C): no rain and no melt would reach the models; is it the right "
            "series, or in another unit?"
        )
    ok = np.isfinite(data["precipitation"]) & np.isfinite(data["pet"])
    if t is not None:
        ok &= np.isfinite(t)
    run = _longest_run(ok)
    with_q = int(np.isfinite(q[run]).sum())
    if with_q < min_months:
        return None, (
            f"catchment {series.id}: {with_q} months with runoff, precipitation and PET together "
            f"(from {M.label(axis[0])} to {M.label(axis[-1])}); at least {min_months} are needed"
        )
    from cwsc.errors import PeriodError
    from cwsc.hydro.calibration.config import split_months

    span = run.stop - run.start
    try:
        split_months(span, args.warmup_months, args.calibration_fraction)
    except PeriodError:
        return None, (
            f"catchment {series.id}: {span} consecutive months (from {M.label(axis[run][0])} to "
            f"{M.label(axis[run][-1])}) are too short for WARMUP_MONTHS={args.warmup_months} and "
            f"CALIBRATION_FRACTION={args.calibration_fraction:g}: no calibration month would be left"
        )
    reason = _runoff_unit_mistake(
        series.id, q[run], data["precipitation"][run], axis[run], area, args.runoff_units
    )
    if reason:
        return None, reason
    months = [M.label(m) for m in axis[run]]
    return (
        months,
        data["precipitation"][run],
        data["pet"][run],
        q[run],
        None if t is None else t[run],
    ), None


#: Over a whole record runoff cannot be this many times the precipitation: beyond it the
#: runoff is in another unit (m3/s read as mm/month), not a leaky catchment.
RUNOFF_RATIO_IMPOSSIBLE = 2.0


def _runoff_unit_mistake(cid: str, q, p, months, area: float, units: str) -> str | None:
    """The reason a catchment's runoff (mm/month after RUNOFF_UNITS) cannot be in that unit:
    over the months with both it is more than :data:`RUNOFF_RATIO_IMPOSSIBLE` times the
    precipitation; names the unit that would fit (m3/s over the polygon's area) when one does."""
    from cwsc.io import catchments as C

    both = np.isfinite(q) & np.isfinite(p)
    sp, sq = float(p[both].sum()), float(q[both].sum())
    if not both.any() or sp <= 0 or sq <= RUNOFF_RATIO_IMPOSSIBLE * sp:
        return None
    hint = "is RUNOFF_UNITS right?"
    if " ".join(str(units).lower().split()) in ("mm/month", "mm month-1") and np.isfinite(area) and area > 0:
        as_m3s = C.runoff_in_mm(q, list(months), "m3/s", area, id=cid)
        ratio = float(as_m3s[both].sum()) / sp
        if ratio <= 1.0:
            hint = (
                f"read as m3/s over its {area:,.0f} km2 the ratio would be {ratio:.2f}: give RUNOFF_UNITS=m3/s "
                "if the table's runoff is a discharge"
            )
    return (
        f"catchment {cid}: its runoff is {sq / sp:.1f} times its precipitation over {int(both.sum())} months "
        f"(RUNOFF_UNITS={units}), which no catchment does; {hint}"
    )


def _worst_for_undefined(scores: dict) -> dict[str, str]:
    """Give every fit whose validation KGE is undefined (the model simulates no runoff under
    that sc, or a constant one) the worst validation KGE of the run, as cwsc:evaluate does, so
    a map that dries catchments out is not rewarded by their leaving the medians. Returns
    catchment id -> the note saying so (also logged)."""
    fits = [
        (cid, name, fit) for cid, sc in scores.items() for name, fit in [("free", sc.free), *sc.fixed.items()]
    ]
    finite = [fit.kge_val for _, _, fit in fits if np.isfinite(fit.kge_val)]
    if not finite or all(np.isfinite(fit.kge_val) for _, _, fit in fits):
        return {}
    worst = float(min(finite))
    notes: dict[str, list[str]] = {}
    for cid, name, fit in fits:
        if not np.isfinite(fit.kge_val):
            fit.kge_val = worst
            notes.setdefault(cid, []).append(name.removeprefix("ref:"))
    out = {
        cid: (
            f"validation KGE undefined with sc of {', '.join(names)} (the model simulates no runoff, or a constant "
            f"one): counted as the worst of the run, {worst:.3f}"
        )
        for cid, names in notes.items()
    }
    for cid, line in out.items():
        protocol.warning(f"catchment {cid}: {line}")
    return out


def _config(args, models):
    import torch

    from cwsc.commands.options import kge_margin
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.sceua import SceuaSettings

    settings = SceuaSettings()
    settings.max_evaluations = int(args.max_evaluations)
    return CalibrationConfig(
        models=tuple(models),
        objective=args.objective,
        formulation=args.formulation,
        warmup_months=args.warmup_months,
        calibration_fraction=args.calibration_fraction,
        restarts=int(args.restarts),
        sceua=settings,
        kge_margin=kge_margin(args),
        seed=int(args.seed),
        dtype=torch.float32,  # the C kernels' precision, as calibrate's default
        device="cpu",
    )


#: The layer the scores are written to when none is named.
SCORES_LAYER = "cwsc_scores"


def scores_layer(out: str, layer: str | None) -> tuple[str, str]:
    """(file, layer) of ``--out``: ``project.gpkg`` or QGIS's ``project.gpkg|layername=NAME``;
    ``--layer`` names the layer otherwise (default :data:`SCORES_LAYER`)."""
    path, _, options = str(out).partition("|")
    for option in options.split("|") if options else []:
        key, _, value = option.partition("=")
        if key.strip().lower() == "layername" and value.strip():
            layer = layer or value.strip()
    name = (layer or SCORES_LAYER).strip()
    if not name or name.lower().startswith(("gpkg_", "rtree_", "sqlite_")):
        raise OutputRefused(
            f"--layer: '{name}' cannot name a GeoPackage layer; give a name such as {SCORES_LAYER}"
        )
    return path, name


def _not_the_catchments_layer(out: str, layer: str, catchments: str) -> None:
    """The scores may go into the GeoPackage the catchments come from, as another layer: never
    over the layer the polygons are read from (its first)."""
    import os

    import fiona

    try:
        if not (os.path.exists(out) and os.path.samefile(out, catchments)):
            return
        layers = fiona.listlayers(out)
    except Exception:  # noqa: BLE001 - not readable here: the reader names the problem
        return
    if layers and layers[0] == layer:
        raise OutputRefused(
            f"OUTPUT: the layer '{layer}' of '{out}' holds the catchments (CATCHMENTS) the scores are "
            f"made from; write the scores to another layer (--layer, default {SCORES_LAYER})"
        )


def _run(args: argparse.Namespace) -> None:
    from cwsc.evaluation.catchments import score_catchment
    from cwsc.evaluation.maps import range_check
    from cwsc.hydro.balance import water_balance
    from cwsc.hydro.labels import FLAG_SNOW, FLAG_WATER_BALANCE
    from cwsc.hydro.metrics import finite_median
    from cwsc.hydro.options import parse_models
    from cwsc.hydro.snow import COLD_PET, liquid_water, snow_likely, snowfall_share, store_weight
    from cwsc.io import catchments as C
    from cwsc.io import gate
    from cwsc.reports.catchments import catchments_report

    t0 = time.perf_counter()
    models = parse_models(args.models)
    names = _names(args)
    if not 0.0 < args.calibration_fraction < 1.0:
        raise ParameterError(
            f"CALIBRATION_FRACTION: {args.calibration_fraction:g} must lie between 0 and 1 (exclusive): "
            "the validation months are the rest"
        )
    config = _config(args, models)
    inputs = {
        "CATCHMENTS": C.split_source(args.catchments)[0],  # path|layername=NAME: the file
        "SERIES": args.series,
        "CWSC": args.cwsc,
        "PRECIPITATION": args.precip,
        "PET": args.pet,
        "TEMPERATURE": args.temperature,
        "REFERENCE_MAPS": list(args.reference_maps or []),
    }
    gate.distinct(
        {
            **inputs,
            "PRECIPITATION": (args.precip, args.precip_var) if args.precip else None,
            "PET": (args.pet, args.pet_var) if args.pet else None,
            "TEMPERATURE": (args.temperature, args.temperature_var) if args.temperature else None,
        }
    )
    out, layer = scores_layer(args.out, getattr(args, "layer", None))
    _not_the_catchments_layer(out, layer, args.catchments)
    outputs = Outputs(
        {"OUTPUT": out, "OUTPUT_TABLE": args.out_table, "OUTPUT_REPORT": args.out_report},
        kinds={"OUTPUT": "vector", "OUTPUT_TABLE": "table", "OUTPUT_REPORT": "report"},
        inputs=inputs,
    )
    with outputs:
        protocol.progress(0.0, "reading the catchments and their series")
        shapes, problems = C.read_catchments(args.catchments, args.id_field)
        table = gate.read_series(args.series)
        problems += table.problems
        paired, unmatched = C.match_ids(shapes, table, known=problems)
        problems += unmatched
        areas = {s.id: C.area_km2(s.geometry, s.crs_wkt, f"catchment {s.id}") for s in shapes if s.geometry}
        usable = [s for s in shapes if s.id in set(paired)]
        rasters = {}
        for var, path, variable in (
            ("precipitation", args.precip, args.precip_var),
            ("pet", args.pet, args.pet_var),
            ("temperature", args.temperature, args.temperature_var),
        ):
            if path:
                rasters[var] = _raster_series(path, VARIABLE_LABELS[var], variable, usable, [], args)
        map_mean, map_sd = _map_values(args.cwsc, "CWSC", usable, problems)
        references = {
            name: _map_values(path, f"REFERENCE_MAPS ({name})", usable, problems)[0]
            for name, path in zip(names, args.reference_maps or [])
        }
        not_scored = {p.id: p.reason for p in problems}
        assembled = {}
        for cid in paired:
            if cid in not_scored:
                continue
            got, reason = _assemble(
                table.series[cid], rasters, areas.get(cid, float("nan")), args, C.MIN_MONTHS
            )
            if reason:
                not_scored[cid] = reason
            else:
                assembled[cid] = got
        constant = finite_median(np.array([map_mean[c] for c in assembled if c in map_mean]))
        protocol.log(
            f"{len(assembled)} of {len(set(paired) | set(not_scored))} catchments to score; constant map "
            f"{constant:.1f} mm (the median of the map over them); models {', '.join(models)}, "
            f"formulation {args.formulation}, {args.restarts} restart{'s' if args.restarts != 1 else ''}"
        )
        scores, hydro, snow = {}, {}, {}
        # The forcing's long-term balance per catchment (hydro/balance.py): where it cannot
        # balance, the labels come from a model compensating for it (quality bit 128).
        balance = {cid: water_balance(p, e, q) for cid, (_, p, e, q, _) in assembled.items()}
        unbalanced = sorted(cid for cid, b in balance.items() if b.bad)
        if unbalanced:
            from cwsc.hydro.balance import TOLERANCE

            protocol.warning(
                f"{len(unbalanced)} catchment{'s' if len(unbalanced) != 1 else ''} with forcing that cannot "
                "balance over the record (tolerance "
                f"{TOLERANCE:.0%}): "
                + "; ".join(
                    f"{cid}: Q/P {balance[cid].runoff_excess:.2f}, (P - Q)/PET {balance[cid].evaporation_excess:.2f}"
                    for cid in unbalanced[:20]
                )
                + ("; ..." if len(unbalanced) > 20 else "")
                + "; long-term runoff cannot exceed precipitation, nor P - Q the PET: their labels come from "
                "a model compensating for the forcing, check the series there (quality bit 128)"
            )
        for k, (cid, (months, p, e, q, t)) in enumerate(assembled.items()):
            protocol.progress(
                0.05 + 0.9 * k / max(len(assembled), 1),
                f"calibrating catchment {cid} ({k + 1:,} of {len(assembled):,})",
            )
            liquid = p if t is None else liquid_water(p, t)
            if t is not None:  # the share of P that passed through the snow store (0-1)
                snow[cid] = float(store_weight(snowfall_share(p, t)))
            maps = {"map": map_mean.get(cid, np.nan), "constant": constant}
            maps.update({f"ref:{n}": references[n].get(cid, np.nan) for n in names})
            if not np.isfinite(maps["map"]):
                not_scored[cid] = f"catchment {cid}: the map has no value inside its polygon"
                continue
            scores[cid] = score_catchment(liquid, e, q, maps, config)
            if balance[cid].bad:
                scores[cid].flags |= FLAG_WATER_BALANCE
            if t is None and snow_likely(p, e):  # snow falls there, the models let it run off
                scores[cid].flags |= FLAG_SNOW
            hydro[cid] = (months, q)
        snowy = sorted(cid for cid, sc in scores.items() if sc.flags & FLAG_SNOW)
        if snowy:
            protocol.warning(
                f"{len(snowy)} catchment{'s' if len(snowy) != 1 else ''} without temperature whose cold months "
                f"(PET below {COLD_PET:g} mm) hold much of their precipitation: {', '.join(snowy[:20])}"
                + (", ..." if len(snowy) > 20 else "")
                + "; snow falls there and the models let it run off at once: give a temperature column or "
                "TEMPERATURE (quality bit 32)"
            )
        for reason in not_scored.values():
            protocol.warning(f"not scored: {reason}")
        if not scores:
            raise InputFileError(
                f"no catchment could be scored ({len(not_scored)} not scored), so nothing was written: "
                + "; ".join(list(not_scored.values())[:5])
                + ("; ..." if len(not_scored) > 5 else "")
            )
        notes = _worst_for_undefined(scores)
        # Does the map's sc lie inside each catchment's identifiable range, and do its ranks
        # follow the catchments' own labels? (KGE with sc fixed cannot tell: issue 35.)
        ranked = list(scores)
        check = range_check(
            [map_mean[c] for c in ranked],
            [scores[c].label_mm for c in ranked],
            [scores[c].sc_low_mm for c in ranked],
            [scores[c].sc_high_mm for c in ranked],
            constant,
        )
        in_range = {
            cid: (check["in_range_map"][i], check["in_range_constant"][i]) for i, cid in enumerate(ranked)
        }

        records = []
        for s in shapes:
            cid = s.id
            rec = {"id": cid, "area_km2": areas.get(cid), "not_scored": not_scored.get(cid, "")}
            if cid in notes:
                rec["notes"] = notes[cid]
            if cid in map_mean:
                rec.update(cwsc_map_mm=map_mean[cid], cwsc_map_sd_mm=map_sd.get(cid))
            for n in names:
                rec[f"cwsc_{n}_mm"] = references[n].get(cid)
            sc = scores.get(cid)
            if sc is not None:
                months, _ = hydro[cid]
                rec.update(
                    months=len(months),
                    sc_free_mm=sc.label_mm,
                    sc_low_mm=sc.sc_low_mm,
                    sc_high_mm=sc.sc_high_mm,
                    flags=sc.flags,
                    kge_cal_free=sc.free.kge_cal,
                    kge_val_free=sc.free.kge_val,
                    models=",".join(sc.models),
                    snow=snow.get(cid),
                    in_range_map=_bit(in_range[cid][0]),
                    in_range_constant=_bit(in_range[cid][1]),
                )
                if "map" in sc.fixed:
                    rec.update(kge_cal_map=sc.fixed["map"].kge_cal, kge_val_map=sc.fixed["map"].kge_val)
                if "constant" in sc.fixed:
                    rec["kge_val_constant"] = sc.fixed["constant"].kge_val
                for n in names:
                    fit = sc.fixed.get(f"ref:{n}")
                    rec[f"kge_val_{n}"] = fit.kge_val if fit else None
            records.append(rec)
        # Ids in the table without a polygon: rows of the table (no geometry, so not in the
        # GeoPackage), with their reason.
        table_only = [{"id": cid, "not_scored": r} for cid, r in not_scored.items() if cid not in areas]
        fields = (
            BASE_FIELDS
            + [(f"cwsc_{n}_mm", "float") for n in names]
            + [(f"kge_val_{n}", "float") for n in names]
        )
        protocol.progress(0.96, "writing the outputs")
        # Into a copy of the GeoPackage already there: the user's other layers stay as they are.
        C.write_catchments(outputs.keep_other_layers("OUTPUT"), shapes, records, fields, layer=layer)
        C.write_table(outputs.temporary("OUTPUT_TABLE"), records + table_only, fields)
        medians = {
            key: finite_median(np.array([r.get(key) for r in records if r.get(key) is not None], dtype=float))
            for key in ("kge_val_map", "kge_val_free", "kge_val_constant")
        }
        settings = {
            "map": args.cwsc,
            "constant map (mm)": constant,
            "models": ", ".join(models),
            "formulation": args.formulation,
            "objective": args.objective.upper(),
            "restarts": int(args.restarts),
            "catchments with temperature given": len(snow),
            "catchments where the snow store ran (some precipitation through it)": sum(
                1 for v in snow.values() if v > 0
            ),
        }
        periods = {cid: config.periods(len(hydro[cid][0])) for cid in scores}
        catchments_report(
            outputs.temporary("OUTPUT_REPORT"),
            shapes,
            records + table_only,
            scores,
            hydro,
            medians,
            settings,
            periods,
            check,
        )
    metrics = {
        "catchments_scored": len(scores),
        "catchments_not_scored": len(not_scored),
        "median_kge_val_map": medians["kge_val_map"],
        "median_kge_val_free": medians["kge_val_free"],
        "median_kge_val_constant": medians["kge_val_constant"],
        "constant_map_mm": constant,
        "share_in_range_map": check["share_in_range_map"],
        "share_in_range_constant": check["share_in_range_constant"],
        "spearman_map_labels": check["spearman_map_labels"],
        "seconds": round(time.perf_counter() - t0, 2),
    }
    protocol.log(
        f"{len(scores)} catchments scored: median validation KGE with the map {medians['kge_val_map']:.3f}, "
        f"free {medians['kge_val_free']:.3f}, constant map {medians['kge_val_constant']:.3f}; the map lies "
        f"inside the identifiable range of sc at {check['share_in_range_map']:.0%} of them, the constant map "
        f"at {check['share_in_range_constant']:.0%}; rank correlation of the map with their own labels "
        f"{check['spearman_map_labels']:.2f}"
    )
    protocol.log(f"the catchment scores are the layer '{layer}' of '{out}' (its other layers as they were)")
    protocol.result({k: str(v) for k, v in outputs.paths().items()}, metrics)
