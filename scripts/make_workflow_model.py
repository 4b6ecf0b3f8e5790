"""Write resources/models/cwsc_workflow.model3: the CWSC workflow as a Processing model.

    QT_HASH_SEED=0 QT_QPA_PLATFORM=offscreen python3 scripts/make_workflow_model.py   # QGIS's Python

(``QT_HASH_SEED=0`` keeps Qt's order of the XML attributes, so the diff shows only what changed.)

calibrate -> mask by KGE -> train -> predict, with the common parameters exposed: the three
forcings, the predictors, the models, the epochs, the seed, and the outputs (labels, KGE,
masked labels, model file, training report, CWSC map). The provider registers it as
``cwsc:workflow``; the file opens in the graphical modeler for editing. Regenerate it after a
change of the algorithms' parameters (a test checks that it still matches them).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "resources" / "models" / "cwsc_workflow.model3"
NAME = "Forcing to CWSC map"


def build_model():
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterEnum,
        QgsProcessingParameterMultipleLayers,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.core import QgsProcessingModelChildParameterSource as Source
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm(NAME, "CWSC", "cwsc")
    model.setHelpContent(
        {
            "ALG_DESC": "The whole CWSC workflow in one run: calibrates the water balance models on "
            "every cell, masks the labels whose calibration KGE is not above 0, trains the "
            "CWSC ResNet on the predictors at the kept cells and predicts the CWSC map. "
            "Every step uses its defaults except the parameters shown here; open the model "
            "in the graphical modeler to change more. QGIS 3.22 runs a model in the "
            "foreground: the window waits until it ends (about a minute per thousand cells "
            "on a laptop); run the steps one by one to keep working meanwhile.",
        }
    )
    y = 60.0

    def parameter(definition):
        nonlocal y
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(120.0, y))
        model.addModelParameter(definition, component)
        y += 70.0

    parameter(
        QgsProcessingParameterRasterLayer(
            "PRECIPITATION", "Monthly precipitation (mm/month, one band per month)"
        )
    )
    parameter(QgsProcessingParameterRasterLayer("PET", "Monthly potential evapotranspiration (mm/month)"))
    parameter(QgsProcessingParameterRasterLayer("RUNOFF", "Monthly runoff (mm/month)"))
    parameter(
        QgsProcessingParameterRasterLayer(
            "TEMPERATURE", "Monthly air temperature (adds a snow store)", optional=True
        )
    )
    parameter(
        QgsProcessingParameterMultipleLayers(
            "PREDICTORS", "Predictor rasters (climate, terrain, soil, vegetation)", 3
        )
    )
    parameter(
        QgsProcessingParameterEnum(
            "MODELS",
            "Water balance models",
            options=["DWBM", "SWBM", "TVGM"],
            allowMultiple=True,
            defaultValue=[0, 1, 2],
        )
    )
    parameter(
        QgsProcessingParameterNumber(
            "EPOCHS", "Training epochs", QgsProcessingParameterNumber.Integer, 40, False, 1
        )
    )
    parameter(
        QgsProcessingParameterNumber("SEED", "Random seed", QgsProcessingParameterNumber.Integer, 0, False, 0)
    )

    from qgis.core import QgsApplication, QgsProcessingDestinationParameter, QgsProcessingParameterDefinition

    steps = [0]

    def child(child_id, algorithm, description, x, sources, outputs):
        """One step, down a diagonal so that boxes and their outputs never touch. Every
        parameter the step does not take from the model gets its default as a value: the
        modeler then finds nothing missing (QGIS 3.22 reports a mandatory parameter without a
        value even where it has a default)."""
        c = QgsProcessingModelChildAlgorithm(algorithm)
        c.setChildId(child_id)
        c.setDescription(description)
        y_step = 140.0 + 170.0 * steps[0]
        c.setPosition(QPointF(x, y_step))
        for name, source in sources.items():
            c.addParameterSources(name, [source])
        definitions = QgsApplication.processingRegistry().algorithmById(algorithm).parameterDefinitions()
        for definition in definitions:
            if definition.name() in sources or isinstance(definition, QgsProcessingDestinationParameter):
                continue
            if (
                definition.flags() & QgsProcessingParameterDefinition.FlagOptional
                and definition.defaultValue() is None
            ):
                continue
            if definition.defaultValue() is not None:
                c.addParameterSources(definition.name(), [Source.fromStaticValue(definition.defaultValue())])
        model_outputs = {}
        for k, (out_name, (child_output, description)) in enumerate(outputs.items()):
            o = QgsProcessingModelOutput(out_name, description)
            o.setChildId(child_id)
            o.setChildOutputName(child_output)
            o.setDescription(description)
            o.setPosition(QPointF(x + 260.0, y_step + 55.0 * k))
            model_outputs[out_name] = o
        c.setModelOutputs(model_outputs)
        model.addChildAlgorithm(c)
        steps[0] += 1

    param = Source.fromModelParameter
    out = Source.fromChildOutput
    child(
        "calibrate",
        "cwsc:calibrate",
        "Calibrate models per cell",
        460.0,
        {
            "PRECIPITATION": param("PRECIPITATION"),
            "PET": param("PET"),
            "RUNOFF": param("RUNOFF"),
            "TEMPERATURE": param("TEMPERATURE"),
            "MODELS": param("MODELS"),
            "SEED": param("SEED"),
        },
        {
            "CWSC labels": ("OUTPUT_CWSC", "CWSC labels (mm)"),
            "Calibration KGE": ("OUTPUT_KGE", "Calibration KGE"),
        },
    )
    child(
        "mask",
        "cwsc:maskbykge",
        "Mask labels by KGE",
        560.0,
        {
            "LABELS": out("calibrate", "OUTPUT_CWSC"),
            "KGE": out("calibrate", "OUTPUT_KGE"),
            "THRESHOLD": Source.fromStaticValue(0.0),
        },
        {"Masked CWSC labels": ("OUTPUT", "Masked CWSC labels (mm)")},
    )
    child(
        "train",
        "cwsc:train",
        "Train CWSC ResNet",
        660.0,
        {
            "PREDICTORS": param("PREDICTORS"),
            "LABELS": out("mask", "OUTPUT"),
            "KGE": out("calibrate", "OUTPUT_KGE"),
            "EPOCHS": param("EPOCHS"),
            "SEED": param("SEED"),
        },
        {
            "Model file": ("OUTPUT_MODEL", "Model file (.pt)"),
            "Training report": ("OUTPUT_REPORT", "Training report (.html)"),
        },
    )
    child(
        "predict",
        "cwsc:predict",
        "Predict CWSC",
        760.0,
        {"MODEL": out("train", "OUTPUT_MODEL"), "PREDICTORS": param("PREDICTORS")},
        {"CWSC map": ("OUTPUT", "CWSC map (mm)")},
    )
    # The dialog lists the inputs in the workflow's order (by default QGIS sorts them by id).
    model.setParameterOrder(
        ["PRECIPITATION", "PET", "RUNOFF", "TEMPERATURE", "PREDICTORS", "MODELS", "EPOCHS", "SEED"]
    )
    return model


def main() -> int:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, str(ROOT))
    from cwsc_qgis.plugin import CwscPlugin

    plugin = CwscPlugin(None)
    plugin.initProcessing()
    model = build_model()
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    ok = model.toFile(str(TARGET))
    print(f"{'wrote' if ok else 'could not write'} {TARGET}")
    plugin.unload()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
