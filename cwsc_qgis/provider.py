"""The Processing provider ``cwsc``: registers the algorithms and the provider settings."""

import os

from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from . import settings
from .algorithms import ALGORITHMS


class CwscProvider(QgsProcessingProvider):

    def id(self):
        return "cwsc"

    def name(self):
        return "CWSC (catchment water storage capacity)"

    def longName(self):  # noqa: N802
        return "CWSC toolkit: catchment water storage capacity from water balance models and a ResNet"

    def icon(self):
        return QIcon(settings.icon_path())

    def svgIconPath(self):  # noqa: N802
        return settings.icon_path()

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]  # the backend writes tiled, compressed GeoTIFFs

    def defaultRasterFileExtension(self):  # noqa: N802
        return "tif"

    def load(self):
        settings.register_settings(self.icon())
        self.refreshAlgorithms()
        return True

    def unload(self):
        settings.unregister_settings()

    def loadAlgorithms(self):  # noqa: N802
        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
        workflow = load_workflow()
        if workflow is not None:
            self.addAlgorithm(workflow)


WORKFLOW_FILE = ("models", "cwsc_workflow.model3")


class WorkflowModel(QgsProcessingModelAlgorithm):
    """The shipped model ``resources/models/cwsc_workflow.model3`` as ``cwsc:workflow``: a
    model's id is its name, so the name is fixed here and the title is its display name."""

    def name(self):
        return "workflow"

    def displayName(self):  # noqa: N802
        return "CWSC workflow: calibrate, mask, train, predict"

    def group(self):
        return "CWSC workflow"

    def groupId(self):  # noqa: N802
        return "workflow"

    def icon(self):
        return QIcon(settings.icon_path())

    def svgIconPath(self):  # noqa: N802
        return settings.icon_path()

    def createInstance(self):  # noqa: N802
        return load_workflow()


def load_workflow():
    """The workflow model, or None when its file is missing or unreadable."""
    path = settings.resource_path(*WORKFLOW_FILE)
    model = WorkflowModel()
    if not os.path.isfile(path) or not model.fromFile(path):
        return None
    return model
