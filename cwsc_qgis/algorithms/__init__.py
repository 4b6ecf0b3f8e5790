"""One module per algorithm; ``ALGORITHMS`` lists them for the provider."""

from .calibrate import CalibrateAlgorithm
from .demodata import DemoDataAlgorithm
from .evaluate import EvaluateAlgorithm
from .evaluatecatchments import EvaluateCatchmentsAlgorithm
from .info import InfoAlgorithm
from .learnfromrunoff import LearnFromRunoffAlgorithm
from .maskbykge import MaskByKgeAlgorithm
from .predict import PredictAlgorithm
from .prepare import PrepareAlgorithm
from .setup import SetupAlgorithm
from .train import TrainAlgorithm

ALGORITHMS = [
    PrepareAlgorithm,
    CalibrateAlgorithm,
    MaskByKgeAlgorithm,
    TrainAlgorithm,
    LearnFromRunoffAlgorithm,
    PredictAlgorithm,
    EvaluateAlgorithm,
    EvaluateCatchmentsAlgorithm,
    DemoDataAlgorithm,
    SetupAlgorithm,
    InfoAlgorithm,
]
