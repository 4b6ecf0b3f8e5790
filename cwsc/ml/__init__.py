"""The learning half of the workflow: predictor patches, the ResNet, training, the model
file and prediction.

- :mod:`cwsc.ml.patches`: predictor stacks, sample selection, splits, scaling, patches.
- :mod:`cwsc.ml.network`: :class:`~cwsc.ml.network.ResNetConfig`, ``build_network``.
- :mod:`cwsc.ml.training`: :class:`~cwsc.ml.training.TrainConfig`, recipes,
  ``train_from_arrays``.
- :mod:`cwsc.ml.baseline`: the tree baseline scored beside the network on its split
  (``fit_baseline``, neighbourhood-mean features).
- :mod:`cwsc.ml.physics`: :class:`~cwsc.ml.physics.LearnConfig`, ``learn_from_arrays``
  (the models' parameters learned from runoff through the month loop).
- :mod:`cwsc.ml.modelfile`: ``save_model`` / ``load_model`` (``weights_only`` loading).
- :mod:`cwsc.ml.predict`: ``predict_raster``.
- :mod:`cwsc.ml.metrics`: regression metrics of a map against labels.
"""
