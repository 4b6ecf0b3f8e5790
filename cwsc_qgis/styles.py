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

from qgis.core import QgsProcessingLayerPostProcessorInterface

from .compat import STAT_MAX
from .settings import resource_path, setting_scale_max

STYLES = {
    "cwsc": "cwsc.qml",
    "kge": "kge.qml",
    "uncertainty": "uncertainty.qml",
    "spread": "spread.qml",
    "bounded": "bounded.qml",
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
    """Write ``<raster>.qml`` from ``resources/styles``; return its path (None on failure).

    The template's ramp is rescaled in its XML, without opening the output as a layer: a
    layer opened here would get QGIS's default renderer first, whose contrast stretch of a
    many-band raster takes a histogram of each band, and GDAL refuses the histogram of a
    constant band (all-equal flags or widths) with "ERROR 5: dfMax should be strictly
    greater than dfMin" in the output of a successful run."""
    if not raster_path or not os.path.isfile(raster_path):
        return None
    template = style_file(style)
    target = sidecar_path(raster_path)
    try:
        top = None
        if style in SHARED_SCALE:
            top, unit = setting_scale_max(), SHARED_SCALE[style]
        elif style in ADAPTIVE:
            top, unit = _nice_ceiling(_band_maximum(raster_path)), ADAPTIVE[style]
        if not top or not _write_rescaled(template, target, 0.0, top, unit):
            shutil.copyfile(template, target)
        return target
    except OSError as exc:
        if feedback is not None:
            feedback.pushWarning("could not write the style sidecar {}: {}".format(target, exc))
        return None


def shared_scale_style(style, target):
    """A copy of ``style`` (one of :data:`SHARED_SCALE`) on the shared scale at ``target``,
    written away from the data (a file beside a demo folder's raster would be a stranger
    there); its path, or the template's when the copy cannot be written."""
    template = style_file(style)
    try:
        if _write_rescaled(template, target, 0.0, setting_scale_max(), SHARED_SCALE[style]):
            return target
    except OSError:
        pass
    return template


def _band_maximum(raster_path):
    """The maximum of band 1, from a data provider alone (no layer, no renderer)."""
    from qgis.core import QgsDataProvider, QgsProviderRegistry

    provider = QgsProviderRegistry.instance().createProvider(
        "gdal", raster_path, QgsDataProvider.ProviderOptions()
    )
    if provider is None or not provider.isValid():
        return None
    return provider.bandStatistics(1, STAT_MAX).maximumValue


def _write_rescaled(template, target, new_min, new_max, unit):
    """Write ``template`` (a single-band pseudocolour style) to ``target`` with its ramp
    stretched linearly onto ``new_min .. new_max`` and labelled in ``unit``. A degenerate
    range gets a width of 1 so that the ramp always rises. False when the template has no
    ramp."""
    import xml.etree.ElementTree as ET

    if not new_max > new_min:
        new_max = new_min + 1.0
    root = ET.parse(template).getroot()
    renderer = root.find(".//rasterrenderer")
    shader = root.find(".//rastershader/colorrampshader")
    items = list(shader.iter("item")) if shader is not None else []
    if renderer is None or not items:
        return False
    old_min, old_max = float(items[0].get("value")), float(items[-1].get("value"))
    span = (old_max - old_min) or 1.0
    for item in items:
        value = new_min + (float(item.get("value")) - old_min) / span * (new_max - new_min)
        item.set("value", repr(value))
        item.set("label", "{:g} {}".format(round(value, 6), unit))
    shader.set("minimumValue", repr(new_min))
    shader.set("maximumValue", repr(new_max))
    renderer.set("classificationMin", repr(new_min))
    renderer.set("classificationMax", repr(new_max))
    with open(target, "w", encoding="utf-8") as fh:
        fh.write("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n")
        fh.write(ET.tostring(root, encoding="unicode"))
    return True


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies a ``.qml`` to a layer QGIS has just loaded from an algorithm's output; with
    ``on_top``, the layer (the CWSC map) goes on top of the layer tree, above every other
    layer the same run loads (see :func:`stack`)."""

    _alive = []  # QGIS does not own Python post-processors: keep them referenced

    def __init__(self, qml, on_top=False):
        super().__init__()
        self.qml = qml
        self.on_top = on_top

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if layer is not None and layer.isValid() and self.qml and os.path.isfile(self.qml):
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()
        stack(layer, context, self.on_top)
        label_band(layer, context)

    @classmethod
    def create(cls, qml, on_top=False):
        processor = cls(qml, on_top)
        cls._alive.append(processor)
        return processor


def label_band(layer, context):
    """The legend of a colour ramp names its band as the layer does ("Band 1: CWSC (mm)"),
    not as QGIS 3.22 does from GDAL's colour interpretation ("Band 1: CWSC (mm) (Gray)", the
    interpretation every GeoTIFF's first band has and none can drop): the legend entry's
    label, set on the layer's nodes in the layer tree (saved with the project, and what a
    user's own renaming of that entry sets)."""
    from qgis.core import QgsMapLayerLegendUtils

    if layer is None or not layer.isValid() or context is None:
        return
    renderer = layer.renderer() if hasattr(layer, "bandCount") else None
    if renderer is None or renderer.type() != "singlebandpseudocolor":
        return
    project = context.project() or layer.project()
    if project is None:
        return
    node = project.layerTreeRoot().findLayer(layer.id())
    if node is None:
        return
    QgsMapLayerLegendUtils.setLegendNodeUserLabel(node, 0, layer.bandName(renderer.band()))
    layer.legend().itemsChanged.emit()  # the layer tree rebuilds the legend with the label


#: (the run's processing context, layer id) of the last map loaded on top; the context is
#: held (one at a time) so that no later run's context can take its place.
_TOP = {}


def stack(layer, context, on_top):
    """Keep the CWSC map on top of the layers a run loads. QGIS 3.22 loads a run's layers in
    the order of their file paths (random for temporary outputs), each one on top of the
    last: the map goes to the top of its group when it comes, a CWSC layer of the same run
    that comes after it goes just below it, and once the run's layers are all in (the next
    turn of the event loop) the map is put on top again, above layers of other providers."""
    if layer is None or not layer.isValid() or context is None:
        return
    project = context.project() or layer.project()
    if project is None:
        return
    root = project.layerTreeRoot()
    if on_top:
        _TOP["run"] = (context, layer.id())
        _move(root, layer.id(), None)
        from qgis.PyQt.QtCore import QTimer

        QTimer.singleShot(0, lambda layer_id=layer.id(): _move_later(project, layer_id))
        return
    run = _TOP.get("run")
    if run is not None and run[0] is context and run[1] != layer.id():
        _move(root, layer.id(), run[1])


def _move_later(project, layer_id):
    try:
        _move(project.layerTreeRoot(), layer_id, None)
    except RuntimeError:  # the project is gone
        pass


def _move(root, layer_id, below_id):
    """Move the node of ``layer_id`` to the top of its group, or just below ``below_id``
    when that layer is in the same group."""
    node = root.findLayer(layer_id)
    if node is None or node.parent() is None:
        return
    parent = node.parent()
    children = parent.children()
    index = 0
    if below_id is not None:
        above = root.findLayer(below_id)
        if above is None or above.parent() is not parent:
            return
        index = children.index(above) + 1
    current = children.index(node)
    if current == index:
        return
    clone = node.clone()
    parent.insertChildNode(index, clone)
    parent.removeChildNode(node)


def style_output(raster_path, style, context, feedback=None, name=None, on_top=False):
    """Sidecar + (when QGIS will load the output) a post-processor that applies it (and, with
    ``on_top``, puts the layer on top of the layer tree)."""
    qml = write_sidecar(raster_path, style, feedback)
    if qml is None:
        qml = style_file(style)
    if context is not None and context.willLoadLayerOnCompletion(raster_path):
        details = context.layerToLoadOnCompletionDetails(raster_path)
        details.setPostProcessor(StylePostProcessor.create(qml, on_top))
        if name:
            details.name = name
    return qml


class FirstBandPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Shows a stack of months (or any many-band raster) as its first band in grey, stretched
    to that band's range, instead of QGIS's default of bands 1-3 as false colour; and, with a
    group name, puts the layer into that group of the project's layer tree."""

    _alive = []

    def __init__(self, first_band=True, group=None, subgroup=None, qml=None):
        super().__init__()
        self.first_band = first_band
        self.group = group
        self.subgroup = subgroup
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if layer is None or not layer.isValid():
            return
        if self.qml and os.path.isfile(self.qml):
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()
        elif self.first_band and hasattr(layer, "bandCount") and layer.bandCount() > 1:
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
            if self.subgroup:
                # a subgroup keeps apart what must not be mixed up (monthly forcing and the
                # annual means among the predictors); it stays below the group's layers
                group = group.findGroup(self.subgroup) or group.addGroup(self.subgroup)
                group.setExpanded(False)
            node = root.findLayer(layer.id())
            if node is not None and node.parent() is not group:
                if hasattr(layer, "bandCount"):
                    group.addChildNode(node.clone())
                else:  # polygons (the demo's gauges) above the rasters, or they hide them
                    group.insertChildNode(0, node.clone())
                node.parent().removeChildNode(node)
        label_band(layer, context)

    @classmethod
    def create(cls, first_band=True, group=None, subgroup=None, qml=None):
        processor = cls(first_band, group, subgroup, qml)
        cls._alive.append(processor)
        return processor


def show_first_band(raster_path, context, name=None):
    """Have QGIS draw the output ``raster_path`` as its first band when it loads it."""
    if context is not None and context.willLoadLayerOnCompletion(raster_path):
        details = context.layerToLoadOnCompletionDetails(raster_path)
        details.setPostProcessor(FirstBandPostProcessor.create())
        if name:
            details.name = name


def load_on_completion(paths, context, group_name, names=None, subgroups=None, qmls=None):
    """Add files the algorithm wrote beyond its declared outputs (the predictors of a folder,
    the demo data) to the layers QGIS loads when the run ends, in the group ``group_name``;
    a many-band raster shows its first band. Per path, optionally: ``names`` its layer name
    (default: the file's stem), ``subgroups`` a group inside ``group_name``, ``qmls`` a style."""
    if context is None or context.project() is None:
        return
    from qgis.core import QgsProcessingContext

    names, subgroups, qmls = names or {}, subgroups or {}, qmls or {}
    for path in paths:
        if os.path.isfile(path):
            name = names.get(path) or os.path.splitext(os.path.basename(path))[0]
            details = QgsProcessingContext.LayerDetails(name, context.project(), name)
            details.setPostProcessor(
                FirstBandPostProcessor.create(True, group_name, subgroups.get(path), qmls.get(path))
            )
            context.addLayerToLoadOnCompletion(path, details)


#: The classes of the catchment scores (cwsc:evaluatecatchments): (lower, upper, colour,
#: label) of the validation KGE with sc fixed to the map, red below 0 to blue up to 1; the
#: first class holds the catchments not scored (their field is empty; see ``not_scored``).
NOT_SCORED = -1e30
KGE_CLASSES = (
    (NOT_SCORED, NOT_SCORED, "#bdbdbd", "not scored (see not_scored)"),
    (NOT_SCORED, 0.0, "#d7191c", "below 0"),
    (0.0, 0.25, "#fdae61", "0 - 0.25"),
    (0.25, 0.5, "#ffffbf", "0.25 - 0.5"),
    (0.5, 0.75, "#abd9e9", "0.5 - 0.75"),
    (0.75, 1.0, "#2c7bb6", "0.75 - 1"),
)


def catchment_renderer(field="kge_val_map"):
    """A graduated renderer of the polygons by ``field`` (a validation KGE)."""
    from qgis.core import QgsFillSymbol, QgsGraduatedSymbolRenderer, QgsRendererRange

    ranges = []
    for low, high, colour, label in KGE_CLASSES:
        symbol = QgsFillSymbol.createSimple(
            {"color": colour, "outline_color": "#4d4d4d", "outline_width": "0.26"}
        )
        ranges.append(QgsRendererRange(low, high, symbol, label))
    expression = 'coalesce("{}", {!r})'.format(field, NOT_SCORED)
    return QgsGraduatedSymbolRenderer(expression, ranges)


def style_catchments(gpkg_path, context, feedback=None, field="kge_val_map", layer=None, load=None):
    """The catchment scores: a ``.qml`` sidecar beside the GeoPackage (QGIS applies it when
    the file is opened) and, when QGIS loads the output, a post-processor that applies it.
    Scores written as the named ``layer`` of a GeoPackage that QGIS loads as ``load`` get no
    sidecar (it would style the file's other layers too): the style is applied on loading
    only. Returns the style file's path, None when it could not be written."""
    from qgis.core import QgsProcessingUtils, QgsVectorLayer

    source = "{}|layername={}".format(gpkg_path, layer) if layer else gpkg_path
    scores = QgsVectorLayer(source, "catchments", "ogr")
    if not scores.isValid() or scores.fields().indexOf(field) < 0:
        return None
    scores.setRenderer(catchment_renderer(field))
    target = (
        QgsProcessingUtils.generateTempFilename("catchment_scores.qml") if layer else sidecar_path(gpkg_path)
    )
    message, ok = scores.saveNamedStyle(target)
    del scores
    if not ok or not os.path.isfile(target):
        if feedback is not None:
            feedback.pushWarning("could not write the style sidecar {}: {}".format(target, message))
        return None
    loaded = load or gpkg_path
    if context is not None and context.willLoadLayerOnCompletion(loaded):
        details = context.layerToLoadOnCompletionDetails(loaded)
        details.setPostProcessor(StylePostProcessor.create(target))
    return target
