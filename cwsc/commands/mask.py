"""``python -m cwsc mask``: keep the CWSC labels whose calibration KGE exceeds a threshold
and whose quality flags (band 3 of calibrate's labels) hold none of the excluded bits."""

from __future__ import annotations

import numpy as np

from cwsc.commands.options import flags_band
from cwsc.errors import InputFileError, ParameterError
from cwsc.hydro.labels import mask_by_kge
from cwsc.hydro.options import FLAG_BITS
from cwsc.io import gate
from cwsc.io import rasters as io
from cwsc.io.rasters import raster_bytes
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs


def _kind(raster) -> str | None:
    """'labels' or 'kge' from band 1's description (as calibrate writes them), else from the
    values: a KGE is at most 1, a storage capacity is tens to hundreds of mm."""
    first = (raster.descriptions[0] if raster.descriptions else "") or ""
    if first.startswith("CWSC") or "(mm)" in first:
        return "labels"
    if "KGE" in first:
        return "kge"
    values = raster.read(bands=[0])[0]
    values = values[np.isfinite(values)]
    if values.size < 10:
        return None
    if values.max() <= 1.0 and values.min() < 0.0:
        return "kge"
    if np.median(values) > 5.0:
        return "labels"
    return None


def _check_not_swapped(labels, kge) -> None:
    kinds = (_kind(labels), _kind(kge))
    if kinds == ("kge", "labels") or (kinds[0] == "kge" and kinds[1] is None) or kinds == ("kge", "kge"):
        what = (
            "KGE values (at most 1)"
            if "KGE" not in (labels.descriptions[0] or "")
            else (f"a KGE band ('{labels.descriptions[0][:60]}')")
        )
        hint = (
            f"; KGE '{kge.path}' holds the CWSC labels: the two are swapped" if kinds[1] == "labels" else ""
        )
        raise ParameterError(
            f"LABELS: '{labels.path}' holds {what}, not CWSC labels in mm{hint}. Give calibrate's "
            "CWSC output as LABELS and its KGE output as KGE"
        )
    if kinds[1] == "labels":
        raise ParameterError(
            f"KGE: '{kge.path}' holds CWSC labels in mm, not a KGE; give calibrate's KGE output as KGE"
        )


def mask_command(args) -> None:
    exclude = int(args.exclude_flags)
    if exclude < 0 or exclude & ~sum(FLAG_BITS):
        raise ParameterError(
            f"EXCLUDE_FLAGS: {exclude} is not a sum of the flag bits "
            f"{', '.join(map(str, FLAG_BITS))} (0: exclude none)"
        )
    if args.threshold >= 1.0:
        raise ParameterError(
            f"THRESHOLD: {args.threshold:g} is not below 1, the highest KGE there is: every label would be masked"
        )
    outputs = Outputs({"OUTPUT": args.out}, inputs={"LABELS": args.labels, "KGE": args.kge})
    with outputs:
        with gate.open_input(args.labels, "LABELS") as labels, gate.open_input(args.kge, "KGE") as kge:
            io.check_same_grid([labels, kge])
            if kge.count < 1:
                raise InputFileError(f"KGE: '{kge.path}' has no band")
            _check_not_swapped(labels, kge)
            band = flags_band(list(labels.descriptions))
            if exclude and band is None:
                protocol.warning(
                    f"EXCLUDE_FLAGS: LABELS '{labels.path}' has no quality flags band (band 3 "
                    f"of the CWSC labels that Calibrate writes): masked by KGE only"
                )
                exclude = 0
            grid = labels.grid
            outputs.need({"OUTPUT": raster_bytes(grid.width, grid.height, labels.count)})
            protocol.progress(0.1, "masking labels")
            label_data = labels.read()
            kge_band = kge.read(bands=[0])[0]
            descriptions = list(labels.descriptions)
        flags = label_data[band] if band is not None else None
        by_kge = np.isfinite(mask_by_kge(label_data[0], kge_band, args.threshold))
        masked = np.stack([mask_by_kge(b, kge_band, args.threshold, flags, exclude) for b in label_data])
        valid = np.isfinite(label_data[0])
        kept = int(np.isfinite(masked[0]).sum())
        if kept == 0:  # a layer of nodata would replace last year's labels: refuse instead
            raise ParameterError(
                f"THRESHOLD: no cell has KGE > {args.threshold:g}"
                + (f" and none of the flags {exclude} (EXCLUDE_FLAGS)" if exclude else "")
                + f" of the {int(valid.sum()):,} labelled cells: every label would be masked, so nothing was written"
            )
        protocol.progress(0.6, "masking labels")
        rule = f"KGE > {args.threshold:g}" + (f", no flag of {exclude}" if exclude else "")
        io.write_raster(
            outputs.temporary("OUTPUT"),
            masked,
            grid,
            [f"{d} ({rule})" for d in descriptions],
            tags={"kge_threshold": args.threshold, "exclude_flags": exclude},
        )
    protocol.progress(1.0, "masking labels")
    protocol.result(
        outputs={"OUTPUT": str(args.out)},
        metrics={
            "kept_cells": kept,
            "masked_cells": int(valid.sum()) - kept,
            "masked_by_kge": int(valid.sum() - by_kge.sum()),
            "masked_by_flags": int(by_kge.sum()) - kept,
            "threshold": args.threshold,
            "exclude_flags": exclude,
        },
    )
