"""The learning half of the workflow: patches, network, training, model file, prediction.

Public entry points:

- :func:`backend.ml.patches.build_samples` / :func:`backend.ml.patches.extract_patches`
- :class:`backend.ml.network.ResNetConfig`, :func:`backend.ml.network.build_network`
- :class:`backend.ml.training.TrainConfig`, :func:`backend.ml.training.train_model`
- :func:`backend.ml.modelfile.save_model` / :func:`backend.ml.modelfile.load_model`
- :func:`backend.ml.predict.predict_raster`
- :func:`backend.ml.command.train_command` / :func:`backend.ml.command.predict_command`
"""

import os as _os

# libgomp's default busy-waiting makes every torch thread spin between small kernels; on a
# shared or oversubscribed CPU two spinning threads ran small networks 7x slower than one
# (measured on the 2-core dev machine). Passive waiting keeps all-cores speed when the CPU
# is free and loses little when it is not. Only effective before torch is first imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
