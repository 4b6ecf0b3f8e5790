"""``python -m backend predict``: a model file and predictors in, the CWSC map out."""

from __future__ import annotations

import time
from pathlib import Path

from backend import io, protocol
from backend.protocol import BadInput


def predict_command(args) -> None:
    from backend.devices import resolve_device
    from backend.ml.modelfile import load_model
    from backend.ml.predict import predict_raster

    t0 = time.perf_counter()
    io.check_output_path(args.out, "OUTPUT")
    if args.out_uncertainty:
        io.check_output_path(args.out_uncertainty, "OUTPUT_UNCERTAINTY")
        if Path(args.out_uncertainty).resolve() == Path(args.out).resolve():
            raise BadInput("OUTPUT_UNCERTAINTY: must differ from OUTPUT")
    resolve_device(args.device)
    bundle = load_model(args.model)
    k = len(bundle.members)
    protocol.log(f"model: recipe {bundle.recipe.get('name')}, ensemble of {k}, "
                 f"{len(bundle.channels)} channels, patch {bundle.patch_size}")
    if k == 1 and args.out_uncertainty:
        protocol.warning("OUTPUT_UNCERTAINTY: the model has one member, so no uncertainty is written")
    out = predict_raster(bundle, args.predictors, args.out,
                         args.out_uncertainty if k > 1 else None, args.device, args.batch_size,
                         on_progress=lambda f: protocol.progress(f, "predict"))
    outputs = {"OUTPUT": str(args.out)}
    if k > 1 and args.out_uncertainty:
        outputs["OUTPUT_UNCERTAINTY"] = str(args.out_uncertainty)
    protocol.result(outputs=outputs, metrics={"cells_predicted": out["cells_predicted"],
                                              "seconds": round(time.perf_counter() - t0, 3)})
