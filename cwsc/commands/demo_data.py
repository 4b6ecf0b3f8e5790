"""``python -m cwsc demo-data``: write the synthetic demo region (a twin experiment)."""

from __future__ import annotations

from cwsc.runtime import protocol
from cwsc.synthetic.demo_region import write_demo


def demo_data_command(args) -> None:
    manifest = write_demo(
        args.out, args.seed, formulation=args.formulation, snow=getattr(args, "snow", False)
    )
    protocol.result(
        outputs={"folder": str(args.out), **manifest["files"], "predictors": manifest["predictors"]},
        metrics={
            "land_cells": manifest["land_cells"],
            "failed_cells": manifest["failed_cells"],
            "months": manifest["months"],
            "seconds": manifest["seconds"],
        },
    )
