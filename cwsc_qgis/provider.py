"""The Processing provider ``cwsc``: registers the algorithms and the provider settings."""

import os

from qgis.core import QgsApplication, QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtCore import QUrl
from qgis.PyQt.QtGui import QIcon

from . import settings
from .algorithms import ALGORITHMS


class CwscProvider(QgsProcessingProvider):
    def id(self):
        return "cwsc"

    def name(self):
        return "CWSC"

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

    def supportedOutputVectorLayerExtensions(self):  # noqa: N802
        return ["gpkg"]  # the backend writes GeoPackages (cwsc:evaluatecatchments)

    def defaultVectorFileExtension(self, hasGeometry=True):  # noqa: N802, N803, ARG002
        return "gpkg"

    def load(self):
        settings.register_settings(self.icon())
        self.refreshAlgorithms()
        # The workflow's outputs come from its child algorithms, which the registry finds only
        # once this provider is registered: read the model again then.
        QgsApplication.processingRegistry().providerAdded.connect(self._registered)
        return True

    def _registered(self, provider_id):
        if provider_id != self.id():
            return
        QgsApplication.processingRegistry().providerAdded.disconnect(self._registered)
        workflow = self.algorithm("workflow")
        if workflow is not None:
            workflow.fromFile(settings.resource_path(*WORKFLOW_FILE))

    def unload(self):
        try:
            QgsApplication.processingRegistry().providerAdded.disconnect(self._registered)
        except TypeError:
            pass  # already disconnected once registered
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
        return "Forcing to CWSC map"

    def group(self):
        return "CWSC workflow"

    def groupId(self):  # noqa: N802
        return "workflow"

    def icon(self):
        return QIcon(settings.icon_path())

    def svgIconPath(self):  # noqa: N802
        return settings.icon_path()

    def shortHelpString(self):  # noqa: N802
        # QGIS builds a model's help as HTML with line breaks, which 3.22's panel turns into
        # empty paragraphs: the description and each input's help, as paragraphs.
        content = self.helpContent()
        parts = ["<p>{}</p>".format(content.get("ALG_DESC", ""))]
        for definition in self.parameterDefinitions():
            text = content.get(definition.name())
            if text:
                parts.append("<p><b>{}</b>: {}</p>".format(definition.description(), text))
        parts.append(
            "<p><b>To change more</b>: <i>Processing &gt; Graphical Modeler...</i>, then <i>Open "
            "Model...</i> (the folder button) and choose <code>{}</code>; save your version with "
            "<i>Save Model As...</i> outside the plugin's folder, which the next update of the "
            "plugin replaces.</p>".format(settings.resource_path(*WORKFLOW_FILE))
        )
        return " ".join("".join(parts).split())

    def helpUrl(self):  # noqa: N802
        """The workflow's page of the documentation site shipped with the plugin (the Help
        button), as the algorithms' pages."""
        from .algorithms.base import DOCS_FOLDERS

        for parts in DOCS_FOLDERS:
            page = os.path.join(settings.PLUGIN_DIR, *parts, "workflow.html")
            if os.path.isfile(page):
                return QUrl.fromLocalFile(os.path.normpath(page)).toString()
        return ""

    def createInstance(self):  # noqa: N802
        return load_workflow()


def load_workflow():
    """The workflow model, or None when its file is missing or unreadable."""
    path = settings.resource_path(*WORKFLOW_FILE)
    model = WorkflowModel()
    if not os.path.isfile(path) or not model.fromFile(path):
        return None
    return model
