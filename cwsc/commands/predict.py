"""``python -m cwsc predict``: a model file and predictors in, the CWSC map out."""

from __future__ import annotations

import time

from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs


def predict_command(args) -> None:
    from cwsc.machine.devices import resolve_device
    from cwsc.ml.modelfile import load_model
    from cwsc.ml.predict import predict_raster

    t0 = time.perf_counter()
    outputs = Outputs(
        {
            "OUTPUT": args.out,
            "OUTPUT_UNCERTAINTY": args.out_uncertainty,
            "OUTPUT_NETCDF": args.out_netcdf,
            "OUTPUT_FLAGS": getattr(args, "out_flags", None),
        },
        kinds={"OUTPUT_NETCDF": "netcdf"},
        inputs={"MODEL": args.model, "PREDICTORS": list(args.predictors)},
    )
    with outputs:
        resolve_device(args.device)
        bundle = load_model(args.model)
        # How many predictions make the map: the network's members, and its trees when it has them.
        k = bundle.predictions
        trees = (
            f", averaged with {bundle.trees_info.get('name', 'gradient-boosted trees')}"
            if bundle.trees is not None
            else ""
        )
        protocol.log(
            f"model: recipe {bundle.recipe.get('name')}, ensemble of {len(bundle.members)}{trees}, "
            f"{len(bundle.channels)} channels, patch {bundle.patch_size}"
        )
        if k == 1 and args.out_uncertainty:
            protocol.warning(
                "OUTPUT_UNCERTAINTY: the model is one network without trees, so no uncertainty is written"
            )
        out = predict_raster(
            bundle,
            args.predictors,
            outputs.temporary("OUTPUT"),
            outputs.temporary("OUTPUT_UNCERTAINTY") if k > 1 else None,
            args.device,
            args.batch_size,
            on_progress=lambda f: protocol.progress(f, "predicting CWSC"),
            reserve=outputs.need,
            allow_shift=args.allow_shift,
            extent=args.extent,
            out_flags=outputs.temporary("OUTPUT_FLAGS"),
        )
        if k == 1 and outputs.temporary("OUTPUT_UNCERTAINTY"):
            outputs.drop("OUTPUT_UNCERTAINTY")
        if outputs.temporary("OUTPUT_NETCDF"):
            _write_netcdf(outputs, bundle, two_bands=len(bundle.members) > 1 and not args.out_uncertainty)
    result = {"OUTPUT": str(args.out)}
    if k > 1 and args.out_uncertainty:
        result["OUTPUT_UNCERTAINTY"] = str(args.out_uncertainty)
    if args.out_netcdf:
        result["OUTPUT_NETCDF"] = str(args.out_netcdf)
    if getattr(args, "out_flags", None):
        result["OUTPUT_FLAGS"] = str(args.out_flags)
    protocol.result(
        outputs=result,
        metrics={
            "cells_predicted": out["cells_predicted"],
            "cells_bounded": out["cells_bounded"],
            "seconds": round(time.perf_counter() - t0, 3),
        },
    )


def _write_netcdf(outputs: Outputs, bundle, two_bands: bool) -> None:
    """The map (and the ensemble's spread) as CF-1.8 NetCDF, from the GeoTIFF(s) written."""
    from cwsc.io.map_files import write_cf_netcdf

    cwsc = outputs.temporary("OUTPUT")
    layers = [(cwsc, 1, "cwsc", "catchment water storage capacity", "mm")]
    members = bundle.predictions
    spread = "standard deviation of the CWSC ensemble members"
    if bundle.trees is not None:
        spread = "standard deviation of the network members and the trees around the map, weighted as in it"
    if two_bands:
        layers.append((cwsc, 2, "cwsc_uncertainty", spread, "mm"))
    elif members > 1 and outputs.temporary("OUTPUT_UNCERTAINTY"):
        layers.append((outputs.temporary("OUTPUT_UNCERTAINTY"), 1, "cwsc_uncertainty", spread, "mm"))
    write_cf_netcdf(
        outputs.temporary("OUTPUT_NETCDF"),
        layers,
        f"CWSC predicted by the CWSC ResNet (ensemble of {len(bundle.members)})"
        + (" averaged with gradient-boosted trees" if bundle.trees is not None else ""),
    )
