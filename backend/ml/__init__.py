"""The learning half of the workflow: patches, network, training, model file, prediction.

Public entry points:

- :func:`backend.ml.patches.build_samples` / :func:`backend.ml.patches.extract_patches`
- :class:`backend.ml.network.ResNetConfig`, :func:`backend.ml.network.build_network`
- :class:`backend.ml.training.TrainConfig`, :func:`backend.ml.training.train_model`
- :func:`backend.ml.modelfile.save_model` / :func:`backend.ml.modelfile.load_model`
- :func:`backend.ml.predict.predict_raster`
- :func:`backend.ml.command.train_command` / :func:`backend.ml.command.predict_command`
"""
