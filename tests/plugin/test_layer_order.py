"""The CWSC map goes on top of the layers its run loads, whatever order QGIS 3.22 loads them
in (the order of their file paths: random for temporary outputs)."""

import itertools

import pytest
from qgis.core import QgsProcessingContext, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication

from cwsc_qgis import styles

NAMES = ["CWSC labels", "Calibration KGE", "Masked CWSC labels", "CWSC map"]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4)))[::5])
def test_the_map_ends_on_top_of_the_layers_of_its_run(provider, data_dir, order):  # noqa: ARG001
    project = QgsProject.instance()
    project.removeAllMapLayers()
    other = QgsRasterLayer(str(data_dir / "kge.tif"), "loaded before", "gdal")
    project.addMapLayer(other)
    context = QgsProcessingContext()
    context.setProject(project)
    qml = styles.style_file("cwsc")
    for i in order:  # as Postprocessing.handleAlgorithmResults: add the layer, then post-process
        layer = QgsRasterLayer(str(data_dir / "labels.tif"), NAMES[i], "gdal")
        project.addMapLayer(layer)
        styles.StylePostProcessor.create(qml, on_top=NAMES[i] == "CWSC map").postProcessLayer(
            layer, context, None
        )
    QCoreApplication.processEvents()
    tree = [n.layer().name() for n in project.layerTreeRoot().findLayers()]
    assert tree[0] == "CWSC map", tree
    assert sorted(tree[:4]) == sorted(NAMES) and tree[4] == "loaded before", tree
    # A later run that loads no map puts its layers on top, as QGIS does.
    later = QgsRasterLayer(str(data_dir / "kge.tif"), "later run", "gdal")
    project.addMapLayer(later)
    styles.StylePostProcessor.create(styles.style_file("kge")).postProcessLayer(
        later, QgsProcessingContext(), None
    )
    assert project.layerTreeRoot().findLayers()[0].layer().name() == "later run"
    project.removeAllMapLayers()
