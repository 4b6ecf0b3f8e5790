"""Physics-guided parameter learning: the network learns the models' parameters from runoff.

Beside the label route (calibrate, mask, train), the ResNet maps each cell's predictor patch
to the parameters of the chosen water balance models (squashed into their bounds, see
:class:`~cwsc.ml.physics.head.ParameterHead`); the models run from month 0 on the cell's
forcing (:func:`cwsc.hydro.models.runoff_with_gradients`) and the loss is the mean of 1 - KGE
(or 1 - NSE) over the calibration months of the training cells, so the gradient flows from
the runoff misfit back through every month into the network (Tsai et al. 2021).

Learning starts from a per-cell calibration of the training cells
(:func:`~cwsc.ml.physics.prior.calibrate_prior`): the network is first fitted to those
parameters (:func:`~cwsc.ml.physics.prior.pretrain`, ``LearnConfig.pretrain_epochs``), because
gradient descent from the models' initial parameters does not find what SCE-UA finds per cell
(sc moves off to make up for the other parameters); learning from runoff then goes on from
there at a fraction of the rate. Validation and held-out cells are never calibrated.

The network also predicts, per model, the calibration KGE that model reaches in the cell
(its "fit", regressed on the detached simulated KGE): the joint CWSC of a cell follows the
label rule (:func:`cwsc.hydro.labels.label_rule`) on these fits, so a map can be made
where no runoff is known. ``learn_from_arrays`` is the whole step on arrays; no file I/O.

Shapes: predictors ``(C, rows, cols)``; precipitation, PET and runoff ``(months, rows, cols)``
in mm/month, NaN = nodata.

- :mod:`cwsc.ml.physics.head`: :class:`~cwsc.ml.physics.head.ParameterHead` (network outputs
  -> parameters and fits), ``joint_cwsc``.
- :mod:`cwsc.ml.physics.losses`: ``fit_loss``, ``combine`` (over the models),
  ``kge_mask_weight``.
- :mod:`cwsc.ml.physics.prior`: :class:`~cwsc.ml.physics.prior.Prior`, ``calibrate_prior``
  and the pretraining on it.
- :mod:`cwsc.ml.physics.learning`: :class:`~cwsc.ml.physics.learning.LearnConfig`,
  :class:`~cwsc.ml.physics.learning.LearnResult`, the cells that take part,
  ``learn_from_arrays``.
"""

from cwsc.ml.physics.head import LOG_SC_FLOOR, ParameterHead, joint_cwsc
from cwsc.ml.physics.learning import (
    CELL_COUNTS,
    CORRECTION_LR,
    CORRECTION_WEIGHT,
    MASK_AFTER_EPOCHS,
    MAX_RUNOFF_COEFFICIENT,
    MIN_CALIBRATION_MONTHS,
    PRETRAINED_LR_FACTOR,
    Cells,
    LearnConfig,
    LearnResult,
    learn_from_arrays,
)
from cwsc.ml.physics.losses import FIT_WEIGHT, SOFT_MIN_WIDTH, combine, fit_loss, kge_mask_weight
from cwsc.ml.physics.prior import (
    PRETRAIN_LR,
    PRETRAIN_SC_WEIGHT,
    Prior,
    calibrate_prior,
)

__all__ = [
    "CELL_COUNTS",
    "CORRECTION_LR",
    "CORRECTION_WEIGHT",
    "FIT_WEIGHT",
    "LOG_SC_FLOOR",
    "MASK_AFTER_EPOCHS",
    "MAX_RUNOFF_COEFFICIENT",
    "MIN_CALIBRATION_MONTHS",
    "PRETRAINED_LR_FACTOR",
    "PRETRAIN_LR",
    "PRETRAIN_SC_WEIGHT",
    "SOFT_MIN_WIDTH",
    "Cells",
    "LearnConfig",
    "LearnResult",
    "ParameterHead",
    "Prior",
    "calibrate_prior",
    "combine",
    "fit_loss",
    "joint_cwsc",
    "kge_mask_weight",
    "learn_from_arrays",
]
