"""``python -m backend mask``: keep the CWSC labels whose calibration KGE exceeds a threshold."""

from __future__ import annotations

import numpy as np

from backend import io, protocol
from backend.hydro.labels import mask_by_kge
from backend.outputs import Outputs, raster_bytes


def mask_command(args) -> None:
    outputs = Outputs({"OUTPUT": args.out}, inputs={"LABELS": args.labels, "KGE": args.kge})
    with outputs:
        with io.open_raster(args.labels, "LABELS") as labels, io.open_raster(args.kge, "KGE") as kge:
            io.check_same_grid([labels, kge])
            if kge.count < 1:
                raise protocol.BadInput(f"KGE: '{kge.path}' has no band")
            grid = labels.grid
            outputs.need({"OUTPUT": raster_bytes(grid.width, grid.height, labels.count)})
            protocol.progress(0.1, "masking labels")
            label_data = labels.read()
            kge_band = kge.read(bands=[0])[0]
        masked = np.stack([mask_by_kge(b, kge_band, args.threshold) for b in label_data])
        valid = np.isfinite(label_data[0])
        kept = int(np.isfinite(masked[0]).sum())
        masked_cells = int(valid.sum()) - kept
        if kept == 0:
            protocol.warning(f"no cell has KGE > {args.threshold:g}: the output holds nodata only")
        protocol.progress(0.6, "masking labels")
        descriptions = [f"{d} (KGE > {args.threshold:g})" for d in labels.descriptions]
        io.write_raster(outputs.temporary("OUTPUT"), masked, grid, descriptions,
                        tags={"kge_threshold": args.threshold})
    protocol.progress(1.0, "masking labels")
    protocol.result(outputs={"OUTPUT": str(args.out)},
                    metrics={"kept_cells": kept, "masked_cells": masked_cells,
                             "threshold": args.threshold})
