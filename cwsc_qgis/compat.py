"""Enum names that moved between QGIS 3.22 (Qt5) and newer Qt6 builds (scoped ``Qgis`` enums).

Each name is looked up the new way first and falls back to the 3.22 spelling, so the same
code runs on QGIS 3.22 and on Qt6 builds (``supportsQt6=True``).
"""

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterNumber,
    QgsRasterBandStats,
    QgsRasterDataProvider,
    QgsRasterFileWriter,
)


def _pick(new_scope, new_name, old_owner, old_name):
    scope = getattr(Qgis, new_scope, None)
    if scope is not None and hasattr(scope, new_name):
        return getattr(scope, new_name)
    return getattr(old_owner, old_name)


FLAG_ADVANCED = _pick("ProcessingParameterFlag", "Advanced", QgsProcessingParameterDefinition, "FlagAdvanced")
FLAG_OPTIONAL = _pick("ProcessingParameterFlag", "Optional", QgsProcessingParameterDefinition, "FlagOptional")
INTEGER = _pick("ProcessingNumberParameterType", "Integer", QgsProcessingParameterNumber, "Integer")
DOUBLE = _pick("ProcessingNumberParameterType", "Double", QgsProcessingParameterNumber, "Double")
TYPE_RASTER = _pick("ProcessingSourceType", "Raster", QgsProcessing, "TypeRaster")
STAT_MAX = _pick("RasterBandStatistic", "Max", QgsRasterBandStats, "Max")
CAPABILITY_SIZE = _pick("RasterInterfaceCapability", "Size", QgsRasterDataProvider, "Size")
WRITER_OK = _pick("RasterFileWriterResult", "Success", QgsRasterFileWriter, "NoError")
