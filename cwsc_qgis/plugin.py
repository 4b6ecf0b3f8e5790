"""The plugin object QGIS creates: registers the Processing provider, nothing else."""

from qgis.core import QgsApplication


class CwscPlugin:
    """``initProcessing`` is called by QGIS (and ``qgis_process``); ``initGui`` calls it too."""

    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 - QGIS API
        if self.provider is not None:
            return
        from .provider import CwscProvider

        self.provider = CwscProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 - QGIS API
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
