"""Runs inside the QGIS desktop (``qgis --code drive_qgis.py``) on a virtual screen: opens
every CWSC dialog, runs Train and Predict from their dialogs, cancels a Calibrate run, saves
screenshots, and writes what it saw to $CWSC_GUI_OUT/result.json, then quits QGIS.

Steps run from a QTimer so that QGIS's event loop (and the Processing tasks) keep running.
"""

import json
import os
import time
import traceback

from qgis.core import QgsApplication, QgsProcessingParameterNumber, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import (
    QApplication,
    QDoubleSpinBox,
    QGroupBox,
    QMessageBox,
    QScrollArea,
    QTextBrowser,
    QTextEdit,
)

OUT = os.environ["CWSC_GUI_OUT"]
REGION = os.environ["CWSC_GUI_REGION"]
PREDICTORS = sorted(
    os.path.join(REGION, "predictors", f)
    for f in os.listdir(os.path.join(REGION, "predictors"))
    if f.endswith(".tif")
)
result = {"dialogs": {}, "runs": {}, "errors": []}


def shot(widget, name):
    path = os.path.join(OUT, name + ".png")
    widget.grab().save(path)
    return path


def log_text(dialog):
    for cls in (QTextBrowser, QTextEdit):
        w = dialog.findChild(cls, "txtLog")
        if w is not None:
            return w.toPlainText()
    return ""


def scroll_bars(dialog):
    """Every scroll area the dialog shows (the parameters panel's among them): whether its
    horizontal scroll bar is visible."""
    found = []
    for area in dialog.findChildren(QScrollArea):
        if area.isVisible():
            found.append(
                {
                    "in": area.parent().metaObject().className() if area.parent() is not None else "",
                    "horizontal_bar": area.horizontalScrollBar().isVisible(),
                    "viewport_width": area.viewport().width(),
                    "content_width": area.widget().sizeHint().width() if area.widget() is not None else 0,
                }
            )
    return found


def advanced_box(dialog):
    from qgis.gui import QgsCollapsibleGroupBox

    try:
        from qgis.PyQt import sip
    except ImportError:  # pragma: no cover
        import sip
    box = dialog.findChild(QGroupBox, "grpAdvanced")
    if box is None or not box.isVisibleTo(dialog):
        return None
    return sip.cast(box, QgsCollapsibleGroupBox)


def spin_boxes(dialog, alg):
    """Decimals and shown text of the spin box of every double parameter."""
    panel = dialog.mainWidget()
    wrappers = getattr(panel, "wrappers", {})
    found = {}
    for d in alg.parameterDefinitions():
        if (
            not isinstance(d, QgsProcessingParameterNumber)
            or d.dataType() != QgsProcessingParameterNumber.Double
        ):
            continue
        wrapper = wrappers.get(d.name())
        widget = wrapper.wrappedWidget() if wrapper is not None else None
        spin = (
            widget
            if isinstance(widget, QDoubleSpinBox)
            else (widget.findChild(QDoubleSpinBox) if widget else None)
        )
        found[d.name()] = {
            "decimals": spin.decimals() if spin is not None else None,
            "text": spin.text() if spin is not None else None,
            "wanted": (d.metadata().get("widget_wrapper") or {}).get("decimals"),
        }
    return found


def layer_tree():
    """The project's layers from the top of the layer tree down (name, source)."""
    return [
        {"name": n.layer().name(), "source": n.layer().source()}
        for n in QgsProject.instance().layerTreeRoot().findLayers()
        if n.layer() is not None
    ]


def finish():
    with open(os.path.join(OUT, "result.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
    QgsProject.instance().setDirty(False)
    os._exit(0)


def steps():
    import processing

    deadline = time.monotonic() + 60
    while QgsApplication.processingRegistry().providerById("cwsc") is None:
        if time.monotonic() > deadline:
            result["errors"].append("the cwsc provider did not load")
            return
        yield 0.5
    provider = QgsApplication.processingRegistry().providerById("cwsc")
    for alg in provider.algorithms():
        dialog = processing.createAlgorithmDialog(alg.id())
        dialog.show()
        yield 0.5
        help_panel = dialog.findChild(QTextBrowser, "textShortHelp")
        html = help_panel.toHtml() if help_panel is not None else ""
        QApplication.processEvents()
        entry = result["dialogs"][alg.id()] = {
            "screenshot": shot(dialog, "dialog_" + alg.name()),
            "help_has_line_breaks": "\n" in alg.shortHelpString(),
            "help_has_br": "<br" in html.lower(),
            "help_shown": len(help_panel.toPlainText()) if help_panel is not None else 0,
            "size": [dialog.width(), dialog.height()],
            "scroll_collapsed": scroll_bars(dialog),
            "doubles": spin_boxes(dialog, alg),
        }
        box = advanced_box(dialog)
        entry["has_advanced"] = box is not None
        if box is not None:
            entry["advanced_was_collapsed"] = box.isCollapsed()
            box.setCollapsed(False)
            QApplication.processEvents()
            yield 0.3
            QApplication.processEvents()
            entry["scroll_expanded"] = scroll_bars(dialog)
            entry["screenshot_expanded"] = shot(dialog, "dialog_" + alg.name() + "_advanced")
            box.setCollapsed(True)
        dialog.close()
        yield 0.1

    def run(alg_id, params, name, cancel_after=None, timeout=240):
        dialog = processing.createAlgorithmDialog(alg_id, params)
        dialog.show()
        done = {}
        dialog.algorithmFinished.connect(lambda ok, res: done.update(ok=ok, results=dict(res)))
        t0 = time.monotonic()
        dialog.runAlgorithm()
        cancelled_at = None
        while not done and time.monotonic() - t0 < timeout:
            if cancel_after is not None and cancelled_at is None and time.monotonic() - t0 > cancel_after:
                shot(dialog, name + "_running")
                dialog.cancelButton().click()
                cancelled_at = time.monotonic()
            yield 0.2
        text = log_text(dialog)
        result["runs"][name] = {
            "finished": bool(done),
            "ok": done.get("ok"),
            "results": {k: str(v) for k, v in (done.get("results") or {}).items()},
            "seconds": round(time.monotonic() - t0, 2),
            "stop_seconds": None if cancelled_at is None else round(time.monotonic() - cancelled_at, 2),
            "log": text,
            "screenshot": shot(dialog, name),
        }
        dialog.close()

    model = os.path.join(OUT, "model.pt")
    yield from run(
        "cwsc:train",
        {
            "PREDICTORS": PREDICTORS,
            "LABELS": os.path.join(REGION, "true_cwsc.tif"),
            "EPOCHS": 2,
            "OUTPUT_MODEL": model,
            "OUTPUT_REPORT": os.path.join(OUT, "report.html"),
        },
        "train",
    )
    QgsProject.instance().removeAllMapLayers()
    yield from run(
        "cwsc:predict",
        {"MODEL": model, "PREDICTORS": PREDICTORS, "OUTPUT": os.path.join(OUT, "cwsc.tif")},
        "predict",
    )
    layers = []
    for layer in QgsProject.instance().mapLayers().values():
        entry = {"name": layer.name(), "source": layer.source()}
        renderer = layer.renderer()
        if renderer is not None and renderer.type() == "singlebandpseudocolor":
            items = renderer.shader().rasterShaderFunction().colorRampItemList()
            entry["ramp"] = [items[0].value, items[-1].value]
        layers.append(entry)
    result["layers_after_predict"] = layers
    yield from run(
        "cwsc:calibrate",
        {
            "PRECIPITATION": os.path.join(REGION, "precipitation.tif"),
            "PET": os.path.join(REGION, "pet.tif"),
            "RUNOFF": os.path.join(REGION, "runoff.tif"),
            "MAX_EVALUATIONS": 100000,
            "OUTPUT_CWSC": os.path.join(OUT, "cancelled_labels.tif"),
            "OUTPUT_KGE": os.path.join(OUT, "cancelled_kge.tif"),
        },
        "calibrate_cancelled",
        cancel_after=6.0,
        timeout=90,
    )
    result["left_after_cancel"] = sorted(
        f for f in os.listdir(OUT) if f.startswith("cancelled") or ".part" in f
    )
    # The demo's gauges at the dialog's defaults: temporary outputs and an empty id field.
    QgsProject.instance().removeAllMapLayers()
    yield from run(
        "cwsc:evaluatecatchments",
        {
            "CATCHMENTS": os.path.join(REGION, "gauges.gpkg"),
            "SERIES": os.path.join(REGION, "gauges.csv"),
            "PRECIPITATION": os.path.join(REGION, "precipitation.tif"),
            "PET": os.path.join(REGION, "pet.tif"),
            "CWSC": os.path.join(REGION, "true_cwsc.tif"),
            "MODELS": [0],
            "MAX_EVALUATIONS": 100,
        },
        "gauges",
        timeout=300,
    )
    yield 1.0
    result["layers_after_gauges"] = layer_tree()
    yield from run_model_in_the_modeler()


def run_model_in_the_modeler():
    """The shipped workflow model in the graphical modeler: a screenshot, its validation there,
    and a run from the modeler's Run button on the demo region; then the layer tree."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from processing.modeler.ModelerDialog import ModelerDialog

    QgsProject.instance().removeAllMapLayers()
    workflow = QgsApplication.processingRegistry().algorithmById("cwsc:workflow")
    modeler = ModelerDialog.create(workflow)
    modeler.resize(1500, 950)
    modeler.show()
    yield 1.0
    modeler.view().fitInView(modeler.view().scene().itemsBoundingRect(), 1)  # Qt.KeepAspectRatio
    yield 0.5
    valid, issues = modeler.model().validate()
    entry = result["modeler"] = {
        "screenshot": shot(modeler, "modeler_workflow"),
        "valid": valid,
        "issues": list(issues),
        "children": sorted(modeler.model().childAlgorithms()),
    }
    # The model at its defaults (every model, 40 epochs) on the demo region: a few minutes.
    params = {
        "PRECIPITATION": os.path.join(REGION, "precipitation.tif"),
        "PET": os.path.join(REGION, "pet.tif"),
        "RUNOFF": os.path.join(REGION, "runoff.tif"),
        "PREDICTORS": PREDICTORS,
    }
    state = {}

    def drive_run_dialog(tries=[0]):  # noqa: B006 - a counter across the timer's calls
        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, QMessageBox):  # "This model is not valid ...": refuse to run
            result["errors"].append("the modeler asked: " + dialog.text() + " " + dialog.detailedText())
            dialog.button(QMessageBox.Cancel).click()
            return
        if not isinstance(dialog, AlgorithmDialog):
            tries[0] += 1
            if tries[0] < 100:
                QTimer.singleShot(200, drive_run_dialog)
            else:
                result["errors"].append("the modeler's run dialog did not open")
            return
        try:
            dialog.algorithmFinished.connect(lambda ok, res: state.update(ok=ok))
            dialog.setParameters(params)
            state["t0"] = time.monotonic()
            dialog.runAlgorithm()  # a model runs in the foreground in QGIS 3.22
        except Exception:  # noqa: BLE001 - reported to the test
            result["errors"].append(traceback.format_exc())
            dialog.close()
            return
        wait_for_the_run(dialog)

    def wait_for_the_run(dialog):
        if "ok" not in state and time.monotonic() - state["t0"] < 600:
            QTimer.singleShot(200, lambda: wait_for_the_run(dialog))
            return
        state["seconds"] = round(time.monotonic() - state["t0"], 2)
        state["log"] = log_text(dialog)
        state["screenshot"] = shot(dialog, "modeler_run")
        dialog.close()

    QTimer.singleShot(500, drive_run_dialog)
    modeler.actionRun().trigger()  # runModel(): validates, then exec_() of the run dialog
    yield 0.5  # the layers loaded, and what the post-processors left for the event loop
    entry["run"] = {"ok": state.get("ok"), "seconds": state.get("seconds"), "log": state.get("log", "")}
    entry["run_screenshot"] = state.get("screenshot")
    entry["layer_tree"] = layer_tree()
    modeler.hide()  # not closed: a changed model would ask whether to save it


def drive():
    gen = steps()

    def tick():
        try:
            delay = next(gen)
        except StopIteration:
            finish()
            return
        except Exception:  # noqa: BLE001 - reported to the test, which fails on it
            result["errors"].append(traceback.format_exc())
            finish()
            return
        QTimer.singleShot(int(delay * 1000), tick)

    QTimer.singleShot(3000, tick)


drive()
