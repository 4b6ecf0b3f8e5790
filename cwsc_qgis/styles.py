"""Styled results: a ``.qml`` sidecar beside each output raster and a post-processor
that applies it when QGIS loads the layer.

The sidecar is named ``<raster basename>.qml``: QGIS applies it as the layer's default
style whenever the file is opened (also outputs made by ``qgis_process``). Every CWSC-valued
layer (labels, masked labels, per-model sc, predicted maps) gets one colour scale, 0 to the
provider setting *Top of the colour scale of every CWSC layer* (800 mm by default), so one
colour is one value across layers; spreads and uncertainty are stretched from 0 to a rounded
maximum of the data; the KGE ramp stays fixed at -1..1, centred on 0.
"""

import math
import os
import shutil

from qgis.core import QgsProcessingLayerPostProcessorInterface, QgsRasterLayer

from .compat import STAT_MAX
from .settings import resource_path, setting_scale_max

STYLES = {
    "cwsc": "cwsc.qml",
    "kge": "kge.qml",
    "uncertainty": "uncertainty.qml",
    "spread": "spread.qml",
}
#: styles whose ramp is rescaled to the data (0 .. rounded maximum)
ADAPTIVE = {"uncertainty": "mm", "spread": "mm"}
#: styles on the shared CWSC scale (0 .. the provider setting)
SHARED_SCALE = {"cwsc": "mm"}


def style_file(style):
    return resource_path("styles", STYLES[style])


def sidecar_path(raster_path):
    return os.path.splitext(raster_path)[0] + ".qml"


def _nice_ceiling(value):
    if not value or value <= 0 or not math.isfinite(value):
        return None
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp


def write_sidecar(raster_path, style, feedback=None):
    """Write ``<raster>.qml`` from ``resources/styles``; return its path (None on failure)."""
    if not raster_path or not os.path.isfile(raster_path):
        return None
    template = style_file(style)
    target = sidecar_path(raster_path)
    try:
        if style not in ADAPTIVE and style not in SHARED_SCALE:
            shutil.copyfile(template, target)
            return target
        layer = QgsRasterLayer(raster_path, "cwsc", "gdal")
        if not layer.isValid():
            shutil.copyfile(template, target)
            return target
        message, ok = layer.loadNamedStyle(template)
        renderer = layer.renderer()
        if ok and renderer is not None and renderer.type() == "singlebandpseudocolor":
            if style in SHARED_SCALE:
                _rescale(renderer, 0.0, setting_scale_max(), SHARED_SCALE[style])
            else:
                top = _nice_ceiling(layer.dataProvider().bandStatistics(1, STAT_MAX).maximumValue)
                if top:
                    _rescale(renderer, 0.0, top, ADAPTIVE[style])
            layer.saveNamedStyle(target)
        else:
            shutil.copyfile(template, target)
        return target
    except OSError as exc:
        if feedback is not None:
            feedback.pushWarning("could not write the style sidecar {}: {}".format(target, exc))
        return None


def _rescale(renderer, new_min, new_max, unit):
    shader = renderer.shader()
    function = shader.rasterShaderFunction()
    items = function.colorRampItemList()
    if not items:
        return
    old_min, old_max = items[0].value, items[-1].value
    span = (old_max - old_min) or 1.0
    for item in items:
        value = new_min + (item.value - old_min) / span * (new_max - new_min)
        item.value = value
        item.label = "{:g} {}".format(round(value, 6), unit)
    function.setColorRampItemList(items)
    function.setMinimumValue(new_min)
    function.setMaximumValue(new_max)
    shader.setMinimumValue(new_min)
    shader.setMaximumValue(new_max)
    renderer.setClassificationMin(new_min)
    renderer.setClassificationMax(new_max)


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies a ``.qml`` to a layer QGIS has just loaded from an algorithm's output."""

    _alive = []  # QGIS does not own Python post-processors: keep them referenced

    def __init__(self, qml):
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if layer is not None and layer.isValid() and self.qml and os.path.isfile(self.qml):
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()

    @classmethod
    def create(cls, qml):
        processor = cls(qml)
        cls._alive.append(processor)
        return processor


def style_output(raster_path, style, context, feedback=None, name=None):
    """Sidecar + (when QGIS will load the output) a post-processor that applies it."""
    qml = write_sidecar(raster_path, style, feedback)
    if qml is None:
        qml = style_file(style)
    if context is not None and context.willLoadLayerOnCompletion(raster_path):
        details = context.layerToLoadOnCompletionDetails(raster_path)
        details.setPostProcessor(StylePostProcessor.create(qml))
        if name:
            details.name = name
    return qml


class FirstBandPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Shows a stack of months (or any many-band raster) as its first band in grey, stretched
    to that band's range, instead of QGIS's default of bands 1-3 as false colour; and, with a
    group name, puts the layer into that group of the project's layer tree."""

    _alive = []

    def __init__(self, first_band=True, group=None):
        super().__init__()
        self.first_band = first_band
        self.group = group

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if layer is None or not layer.isValid():
            return
        if self.first_band and layer.bandCount() > 1:
            from qgis.core import QgsContrastEnhancement, QgsSingleBandGrayRenderer

            provider = layer.dataProvider()
            renderer = QgsSingleBandGrayRenderer(provider, 1)
            stats = provider.bandStatistics(1)
            enhancement = QgsContrastEnhancement(provider.dataType(1))
            enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
            enhancement.setMinimumValue(stats.minimumValue)
            enhancement.setMaximumValue(stats.maximumValue)
            renderer.setContrastEnhancement(enhancement)
            layer.setRenderer(renderer)
            layer.triggerRepaint()
        if self.group and context.project() is not None:
            root = context.project().layerTreeRoot()
            group = root.findGroup(self.group) or root.insertGroup(0, self.group)
            node = root.findLayer(layer.id())
            if node is not None and node.parent() is not group:
                group.addChildNode(node.clone())
                node.parent().removeChildNode(node)

    @classmethod
    def create(cls, first_band=True, group=None):
        processor = cls(first_band, group)
        cls._alive.append(processor)
        return processor


def show_first_band(raster_path, context, name=None):
    """Have QGIS draw the output ``raster_path`` as its first band when it loads it."""
    if context is not None and context.willLoadLayerOnCompletion(raster_path):
        details = context.layerToLoadOnCompletionDetails(raster_path)
        details.setPostProcessor(FirstBandPostProcessor.create())
        if name:
            details.name = name


def load_on_completion(paths, context, group_name):
    """Add files the algorithm wrote beyond its declared outputs (the predictors of a folder,
    the demo data) to the layers QGIS loads when the run ends, in the group ``group_name``;
    a many-band raster shows its first band."""
    if context is None or context.project() is None:
        return
    from qgis.core import QgsProcessingContext

    for path in paths:
        if os.path.isfile(path):
            name = os.path.splitext(os.path.basename(path))[0]
            details = QgsProcessingContext.LayerDetails(name, context.project(), name)
            details.setPostProcessor(FirstBandPostProcessor.create(True, group_name))
            context.addLayerToLoadOnCompletion(path, details)
