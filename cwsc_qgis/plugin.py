"""The plugin object QGIS creates: registers the Processing provider and, in the QGIS window,
offers *Set up the backend* when no backend environment is known yet."""

from qgis.core import QgsApplication


class CwscPlugin:
    """``initProcessing`` is called by QGIS (and ``qgis_process``); ``initGui`` calls it too."""

    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None
        #: the message bar item that offers the set-up, while it is shown
        self.setup_item = None

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
        from .installer import NOTICES

        if self.setup_item is None:
            NOTICES.backend_ready.connect(self.backend_ready)
        self.setup_item = item
        return item

    def backend_ready(self, python):
        """A set-up finished (from the button, the Toolbox or a script): the message that says
        the backend is not set up goes, and one line says which interpreter the algorithms use."""
        from qgis.core import Qgis

        if self.take_down_setup_offer():
            self.iface.messageBar().pushMessage(
                "CWSC toolkit", "the backend is set up: {}".format(python), Qgis.Success, 10
            )

    def take_down_setup_offer(self):
        """Remove the set-up message (if shown) and stop listening; True when there was one."""
        from .installer import NOTICES

        try:
            NOTICES.backend_ready.disconnect(self.backend_ready)
        except TypeError:  # not connected
            pass
        item, self.setup_item = self.setup_item, None
        if item is None or self.iface is None:
            return False
        try:
            self.iface.messageBar().popWidget(item)
        except RuntimeError:  # the bar (and its item) went already, e.g. with the window
            return False
        return True

    def _open_setup(self):
        import processing

        processing.execAlgorithmDialog("cwsc:setup", {})

    def unload(self):
        self.take_down_setup_offer()
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
