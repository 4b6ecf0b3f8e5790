"""``python -m backend predict``: a model file and predictors in, the CWSC map out."""

from __future__ import annotations

import time

from backend import protocol
from backend.outputs import Outputs


def predict_command(args) -> None:
    from backend.devices import resolve_device
    from backend.ml.modelfile import load_model
    from backend.ml.predict import predict_raster

    t0 = time.perf_counter()
    outputs = Outputs({"OUTPUT": args.out, "OUTPUT_UNCERTAINTY": args.out_uncertainty},
                      inputs={"MODEL": args.model, "PREDICTORS": list(args.predictors)})
    with outputs:
        resolve_device(args.device)
        bundle = load_model(args.model)
        k = len(bundle.members)
        protocol.log(f"model: recipe {bundle.recipe.get('name')}, ensemble of {k}, "
                     f"{len(bundle.channels)} channels, patch {bundle.patch_size}")
        if k == 1 and args.out_uncertainty:
            protocol.warning("OUTPUT_UNCERTAINTY: the model has one member, so no uncertainty "
                             "is written")
        out = predict_raster(bundle, args.predictors, outputs.temporary("OUTPUT"),
                             outputs.temporary("OUTPUT_UNCERTAINTY") if k > 1 else None,
                             args.device, args.batch_size,
                             on_progress=lambda f: protocol.progress(f, "predict"),
                             reserve=outputs.need, allow_shift=args.allow_shift,
                             extent=args.extent)
        if k == 1 and outputs.temporary("OUTPUT_UNCERTAINTY"):
            outputs.drop("OUTPUT_UNCERTAINTY")
    result = {"OUTPUT": str(args.out)}
    if k > 1 and args.out_uncertainty:
        result["OUTPUT_UNCERTAINTY"] = str(args.out_uncertainty)
    protocol.result(outputs=result, metrics={"cells_predicted": out["cells_predicted"],
                                             "seconds": round(time.perf_counter() - t0, 3)})
