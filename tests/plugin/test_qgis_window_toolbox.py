"""The QGIS desktop on a virtual screen (Xvfb), as a user first meets the plugin: the
Processing Toolbox's CWSC names (whole at the Toolbox's default width, in workflow order),
Create demo data from its dialog (the true CWSC on the CWSC scale, legends that say what
they show), and the next steps' dialogs with the demo's layers in the project (each layer
input shows the layer named for it, or nothing). Screenshots are saved as artefacts
(CWSC_GUI_ARTEFACTS keeps them)."""

import json
import os
import shutil
import subprocess

import pytest
from plugin_testing import ROOT

DRIVER = ROOT / "tests" / "plugin" / "gui" / "drive_toolbox.py"
pytestmark = [
    pytest.mark.gui,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("xvfb-run") is None or shutil.which("qgis") is None,
        reason="needs xvfb-run and the QGIS desktop",
    ),
]


@pytest.fixture(scope="module")
def toolbox_run(qp_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("qgis toolbox")
    env = dict(qp_env, CWSC_GUI_OUT=str(out))
    env.pop("QT_QPA_PLATFORM", None)  # a real (virtual) screen, not offscreen
    done = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 1600x1000x24",
            "qgis",
            "--nologo",
            "--noversioncheck",
            "--code",
            str(DRIVER),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = out / "result.json"
    assert report.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    keep = os.environ.get("CWSC_GUI_ARTEFACTS")
    if keep:
        shutil.copytree(out, keep, dirs_exist_ok=True)
    return json.loads(report.read_text(encoding="utf-8")), out


def test_every_cwsc_name_is_whole_in_the_toolbox_and_each_group_in_workflow_order(toolbox_run):
    """#37 item 22: "Evaluate CWSC at gauged ..." was cut, and Learn sorted before Train. The
    text of each name, in the Toolbox tree's font, fits between its item's left edge (icon
    and margins taken off) and the tree's right edge at the Toolbox's default width; QGIS
    sorts a group by name, so the names make the workflow's order."""
    result, _ = toolbox_run
    assert not result["errors"], result["errors"]
    toolbox = result["toolbox"]
    assert os.path.getsize(toolbox["screenshot"]) > 5000
    groups = toolbox["groups"]
    cut = {
        n["name"]: (n["text_width"], n["room"])
        for g in groups.values()
        for n in g
        if n["text_width"] > n["room"]
    }
    assert cut == {}, (toolbox["dock_width"], cut)
    names = {group: [n["name"] for n in items] for group, items in groups.items()}
    assert names["1 Calibration"] == ["Calibrate models per cell", "Mask labels by KGE"]
    assert names["2 Learning"] == ["Train CWSC ResNet", "Train CWSC ResNet on runoff"]
    assert names["4 Evaluation"] == ["Evaluate CWSC map", "Evaluate CWSC with gauges"]
    assert sum(len(items) for items in names.values()) == 12  # 11 algorithms and the workflow model


def test_the_demos_true_cwsc_is_on_the_cwsc_scale_and_no_coloured_legend_says_gray(toolbox_run):
    """#37 item 16: the true CWSC loads on the 0-800 mm scale of every CWSC layer, and the
    legend of a colour ramp names its band ("Band 1: true CWSC (mm)"), not "... (Gray)"."""
    result, _ = toolbox_run
    assert result["demodata_ok"], result
    layers = {layer["name"]: layer for layer in result["layers"]}
    true_cwsc = layers["true CWSC (mm)"]
    assert true_cwsc["renderer"] == "singlebandpseudocolor" and true_cwsc["ramp"] == [0.0, 800.0], true_cwsc
    assert true_cwsc["legend"][0] == "Band 1: true CWSC (mm)", true_cwsc
    coloured = [layer for layer in result["layers"] if layer["renderer"] == "singlebandpseudocolor"]
    assert coloured and not any("(Gray)" in line for layer in coloured for line in layer["legend"]), coloured
    assert os.path.getsize(result["layers_screenshot"]) > 5000


def test_the_next_steps_dialogs_show_the_layer_named_for_each_input_or_none(toolbox_run):
    """#37 item 15: with the demo loaded and the true CWSC the active layer, Calibrate shows
    the monthly forcing in its three inputs (not "true CWSC" three times), Mask by KGE and
    Train show their inputs empty (no calibration yet), Evaluate takes the true CWSC as its
    reference only."""
    result, _ = toolbox_run
    dialogs = {alg_id: d["inputs"] for alg_id, d in result["dialogs"].items()}
    calibrate = dialogs["cwsc:calibrate"]
    assert calibrate["PRECIPITATION"].startswith("precipitation (monthly)"), calibrate
    assert calibrate["PET"].startswith("PET (monthly)"), calibrate
    assert calibrate["RUNOFF"].startswith("runoff (monthly)"), calibrate
    assert not dialogs["cwsc:maskbykge"]["LABELS"].strip() and not dialogs["cwsc:maskbykge"]["KGE"].strip()
    assert not dialogs["cwsc:train"]["LABELS"].strip()
    evaluate = dialogs["cwsc:evaluate"]
    assert evaluate["REFERENCE"].startswith("true CWSC (mm)") and not evaluate["CWSC"].strip(), evaluate
    shown = [text for inputs in dialogs.values() for name, text in inputs.items() if name != "REFERENCE"]
    assert not any(text.startswith("true CWSC") for text in shown), dialogs
    for d in result["dialogs"].values():
        assert os.path.getsize(d["screenshot"]) > 5000


def test_the_gauges_scores_go_into_a_layer_of_a_geopackage_from_the_dialog(toolbox_run):
    """Save to GeoPackage... on the demo's gauges.gpkg with the layer name "scores": the run
    ends without "not correctly generated", the scores layer of that file loads styled, and
    the gauges layer is still there."""
    result, out = toolbox_run
    run = result["gauges_run"]
    assert run["ok"], run["log"][-2000:]
    assert "not correctly generated" not in run["log"], run["log"][-2000:]
    assert run["output"].endswith("gauges.gpkg|layername=scores"), run["output"]
    scores = [layer for layer in run["layers"] if layer["source"].endswith("|layername=scores")]
    assert scores and scores[0]["renderer"] == "graduatedSymbol", run["layers"]
    gauges = [layer for layer in run["layers"] if layer["name"].startswith("gauges (catchments")]
    assert gauges and gauges[0]["features"] == 12, run["layers"]  # reopened, still the gauges
    assert os.path.getsize(run["screenshot"]) > 5000
