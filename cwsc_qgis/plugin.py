"""The plugin object QGIS creates: registers the Processing provider and, in the QGIS window,
offers *Set up the backend* when no backend environment is known yet."""

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
        if self.iface is not None:
            self.offer_setup()

    def offer_setup(self):
        """One message bar, when no backend interpreter can be found: what to do, and a button
        that opens *Set up the backend*. Nothing when one is found."""
        from qgis.core import QgsProcessingException

        from .interpreter import find_backend_python

        try:
            find_backend_python()
            return None
        except QgsProcessingException:
            pass
        from qgis.core import Qgis
        from qgis.PyQt.QtWidgets import QPushButton

        bar = self.iface.messageBar()
        item = bar.createMessage(
            "CWSC toolkit",
            "its backend (a Python environment with PyTorch) is not set up yet: run Set up the "
            "backend once, a few minutes, no terminal needed.",
        )
        button = QPushButton("Set up the backend", item)
        button.clicked.connect(self._open_setup)
        item.layout().addWidget(button)
        bar.pushWidget(item, Qgis.Info)
        return item

    def _open_setup(self):
        import processing

        processing.execAlgorithmDialog("cwsc:setup", {})

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
