"""A QGIS project (.qgz) with the demo's layers grouped and styled, and a PNG map of CWSC.

Runs headless in QGIS's Python (QT_QPA_PLATFORM=offscreen). Styles come from the
``.qml`` sidecars the plugin writes beside each output raster.
"""

from __future__ import annotations

from pathlib import Path

_app = None


def _qgis():
    global _app
    from qgis.core import QgsApplication

    if QgsApplication.instance() is None:
        QgsApplication.setPrefixPath("/usr", True)
        _app = QgsApplication([], False)
        _app.initQgis()


def _drop_band_line(model, tree_layer) -> None:
    """Keep the colour ramp, drop the raster legend's "Band 1: ... (Gray)" line: the layer
    name above it already says what the ramp shows."""
    from qgis.core import QgsMapLayerLegendUtils
    from qgis.PyQt.QtCore import Qt

    nodes = model.layerLegendNodes(tree_layer)
    keep = [i for i, node in enumerate(nodes) if not str(node.data(Qt.DisplayRole) or "").startswith("Band ")]
    if nodes and len(keep) < len(nodes):
        QgsMapLayerLegendUtils.setLegendNodeOrder(tree_layer, keep)
        model.refreshLayerLegend(tree_layer)


def build_project(folder: Path, data: Path, title: str) -> None:
    _qgis()
    from qgis.core import (
        QgsLayoutExporter,
        QgsLayoutItemLabel,
        QgsLayoutItemLegend,
        QgsLayoutItemMap,
        QgsLayoutItemScaleBar,
        QgsLayoutPoint,
        QgsLayoutSize,
        QgsPrintLayout,
        QgsProject,
        QgsRasterLayer,
        QgsReferencedRectangle,
        QgsUnitTypes,
    )
    from qgis.PyQt.QtGui import QFont

    project = QgsProject.instance()
    project.clear()
    project.setTitle("CWSC demo (synthetic twin experiment)")
    root = project.layerTreeRoot()
    groups = [
        ("Result", [("cwsc.tif", "CWSC predicted (mm)")]),
        (
            "Calibration",
            [
                ("cwsc_labels_masked.tif", "CWSC labels, masked (mm)"),
                ("cwsc_labels.tif", "CWSC labels (mm)"),
                ("kge.tif", "KGE (best model)"),
                ("calibration_details.tif", "Calibration details"),
            ],
        ),
        (
            "Inputs",
            [("data/true_cwsc.tif", "True CWSC (mm, synthetic)")]
            + [
                (f"data/predictors/{p.name}", p.stem.replace("_", " "))
                for p in sorted((data / "predictors").glob("*.tif"))
            ],
        ),
    ]
    cwsc_layer = None
    for gname, items in groups:
        group = root.addGroup(gname)
        for rel, name in items:
            path = folder / rel
            if not path.exists():
                continue
            layer = QgsRasterLayer(str(path), name)
            if not layer.isValid():
                continue
            qml = path.with_suffix(".qml")
            if qml.exists():
                layer.loadNamedStyle(str(qml))
            elif rel.startswith("data/true_cwsc") and (folder / "cwsc.qml").exists():
                layer.loadNamedStyle(str(folder / "cwsc.qml"))
            project.addMapLayer(layer, False)
            node = group.addLayer(layer)
            if gname == "Inputs" or rel == "calibration_details.tif":
                node.setItemVisibilityChecked(False)
            if rel == "cwsc.tif":
                cwsc_layer = layer
        group.setExpanded(gname != "Inputs")
    if cwsc_layer is not None:
        project.setCrs(cwsc_layer.crs())
        # Opens on the map, not on an empty canvas.
        project.viewSettings().setDefaultViewExtent(
            QgsReferencedRectangle(cwsc_layer.extent(), cwsc_layer.crs())
        )

        layout = QgsPrintLayout(project)
        layout.initializeDefaults()
        layout.setName("CWSC map")
        page = layout.pageCollection().page(0)
        page.setPageSize(QgsLayoutSize(280, 160, QgsUnitTypes.LayoutMillimeters))
        label = QgsLayoutItemLabel(layout)
        label.setText(title)
        label.setFont(QFont("Sans", 15))
        label.attemptMove(QgsLayoutPoint(8, 5, QgsUnitTypes.LayoutMillimeters))
        label.attemptResize(QgsLayoutSize(245, 12, QgsUnitTypes.LayoutMillimeters))
        layout.addLayoutItem(label)
        map_item = QgsLayoutItemMap(layout)
        map_item.attemptMove(QgsLayoutPoint(8, 20, QgsUnitTypes.LayoutMillimeters))
        extent = cwsc_layer.extent()
        map_h = min(130.0, 200.0 * extent.height() / max(extent.width(), 1e-9))
        map_item.attemptResize(QgsLayoutSize(200, map_h, QgsUnitTypes.LayoutMillimeters))
        map_item.setLayers([cwsc_layer])
        map_item.setExtent(extent)
        map_item.setFrameEnabled(True)
        layout.addLayoutItem(map_item)
        legend = QgsLayoutItemLegend(layout)
        legend.setLinkedMap(map_item)
        legend.setAutoUpdateModel(False)
        legend.model().rootGroup().clear()
        tree_layer = legend.model().rootGroup().addLayer(cwsc_layer)
        _drop_band_line(legend.model(), tree_layer)
        legend.setTitle("Legend")
        legend.attemptMove(QgsLayoutPoint(212, 20, QgsUnitTypes.LayoutMillimeters))
        layout.addLayoutItem(legend)
        scale = QgsLayoutItemScaleBar(layout)
        scale.setLinkedMap(map_item)
        scale.setStyle("Single Box")
        scale.setNumberOfSegments(2)
        scale.setNumberOfSegmentsLeft(0)
        if cwsc_layer.crs().isGeographic():
            # On a latitude-longitude map a km bar holds at one latitude only: degrees hold.
            scale.setUnits(QgsUnitTypes.DistanceDegrees)
            scale.setUnitLabel("°")
            scale.setUnitsPerSegment(5)
        else:
            scale.setUnits(QgsUnitTypes.DistanceKilometers)
            scale.setUnitLabel("km")
            scale.setUnitsPerSegment(250)
        scale.attemptMove(QgsLayoutPoint(10, 24 + map_h, QgsUnitTypes.LayoutMillimeters))
        layout.addLayoutItem(scale)
        project.layoutManager().addLayout(layout)
        exporter = QgsLayoutExporter(layout)
        settings = QgsLayoutExporter.ImageExportSettings()
        settings.dpi = 110
        # QGIS tries to georeference the PNG through GDAL, whose PNG driver cannot update
        # files: a harmless "ERROR 6" on the console that is kept quiet here.
        try:
            from osgeo import gdal

            gdal.PushErrorHandler("CPLQuietErrorHandler")
        except ImportError:
            gdal = None
        try:
            result = exporter.exportToImage(str(folder / "cwsc_map.png"), settings)
        finally:
            if gdal is not None:
                gdal.PopErrorHandler()
        if result != QgsLayoutExporter.Success:
            raise RuntimeError(f"the PNG map could not be rendered (layout export code {result})")
    if not project.write(str(folder / "cwsc_demo.qgz")):
        raise RuntimeError("the QGIS project could not be written")
    project.clear()
