"""The Processing provider ``cwsc``: registers the algorithms and the provider settings."""

from qgis.core import QgsProcessingProvider
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
