"""Runs inside the QGIS desktop (``qgis --code drive_qgis.py``) on a virtual screen: opens
every CWSC dialog, runs Train and Predict from their dialogs, cancels a Calibrate run, saves
screenshots, and writes what it saw to $CWSC_GUI_OUT/result.json, then quits QGIS.

Steps run from a QTimer so that QGIS's event loop (and the Processing tasks) keep running.
"""

import json
import os
import time
import traceback

from qgis.core import QgsApplication, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QTextBrowser, QTextEdit

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
        result["dialogs"][alg.id()] = {
            "screenshot": shot(dialog, "dialog_" + alg.name()),
            "help_has_line_breaks": "\n" in alg.shortHelpString(),
            "help_has_br": "<br" in html.lower(),
            "help_shown": len(help_panel.toPlainText()) if help_panel is not None else 0,
        }
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
