"""The learning half of the workflow: predictor patches, the ResNet, training, the model
file and prediction.

- :mod:`backend.ml.patches`: predictor stacks, sample selection, splits, scaling, patches.
- :mod:`backend.ml.network`: :class:`~backend.ml.network.ResNetConfig`, ``build_network``.
- :mod:`backend.ml.training`: :class:`~backend.ml.training.TrainConfig`, recipes,
  ``train_from_arrays``.
- :mod:`backend.ml.physics`: :class:`~backend.ml.physics.LearnConfig`, ``learn_from_arrays``
  (the models' parameters learned from runoff through the month loop).
- :mod:`backend.ml.modelfile`: ``save_model`` / ``load_model`` (``weights_only`` loading).
- :mod:`backend.ml.predict`: ``predict_raster``.
- :mod:`backend.ml.metrics`: regression metrics of a map against labels.
"""
