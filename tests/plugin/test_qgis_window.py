"""The QGIS desktop on a virtual screen (Xvfb), driven by a script as a user would click:
every CWSC dialog opens with a readable help panel, fits its first size without a horizontal
scroll bar and shows its doubles with their decimals; Train and Predict run from their
dialogs, a Calibrate run is cancelled; the shipped workflow model opens in the graphical
modeler, is valid there and runs from it, its map on top; screenshots are saved as
artefacts."""

import json
import os
import re
import shutil
import subprocess

import pytest
from plugin_testing import ROOT

DRIVER = ROOT / "tests" / "plugin" / "gui" / "drive_qgis.py"
pytestmark = [
    pytest.mark.gui,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("xvfb-run") is None or shutil.which("qgis") is None,
        reason="needs xvfb-run and the QGIS desktop",
    ),
]


@pytest.fixture(scope="module")
def window_run(qp_env, demo_region, tmp_path_factory):
    out = tmp_path_factory.mktemp("qgis window")
    env = dict(qp_env, CWSC_GUI_OUT=str(out), CWSC_GUI_REGION=str(demo_region))
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
        timeout=1200,  # the workflow model runs at its defaults (a few minutes)
    )
    report = out / "result.json"
    assert report.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    # Screenshots stay as artefacts of the run (not committed): CWSC_GUI_ARTEFACTS keeps them.
    keep = os.environ.get("CWSC_GUI_ARTEFACTS")
    if keep:
        shutil.copytree(out, keep, dirs_exist_ok=True)
    return json.loads(report.read_text(encoding="utf-8")), out


def test_every_dialog_opens_with_a_help_panel_without_hard_line_breaks(window_run):
    result, _ = window_run
    assert not result["errors"], result["errors"]
    assert len(result["dialogs"]) >= 9, sorted(result["dialogs"])
    for alg_id, d in result["dialogs"].items():
        assert os.path.getsize(d["screenshot"]) > 5000, alg_id
        assert not d["help_has_line_breaks"] and not d["help_has_br"], alg_id
        assert d["help_shown"] > 200, alg_id


def test_train_and_predict_run_from_their_dialogs_and_the_map_comes_in_on_the_shared_scale(window_run):
    result, out = window_run
    for name in ("train", "predict"):
        run = result["runs"][name]
        assert run["finished"] and run["ok"], run["log"][-2000:]
        assert "Traceback" not in run["log"] and "Execution failed" not in run["log"], run["log"]
    assert (out / "model.pt").is_file() and (out / "cwsc.tif").is_file()
    assert "epoch" in result["runs"]["train"]["log"]
    ramps = [layer.get("ramp") for layer in result["layers_after_predict"]]
    assert [0.0, 800.0] in ramps, result["layers_after_predict"]


def test_cancel_in_the_dialog_is_one_line_and_leaves_nothing(window_run):
    result, _ = window_run
    run = result["runs"]["calibrate_cancelled"]
    assert run["finished"], run["log"][-2000:]
    log = run["log"]
    assert "cancelled: no output written" in log
    # QGIS 3.22 itself closes every cancelled threaded algorithm with "Execution failed after
    # N seconds" (its task returns false when cancelled); what the plugin adds is one line.
    for bad in (
        "Traceback",
        "BackendCancelled",
        "CRITICAL",
        "Task failed",
        "HTML output has been generated",
        "Loading resulting layers\nLoading",
    ):
        assert bad not in log, (bad, log[-2000:])
    assert log.count("cancelled: no output written") == 1
    assert run["stop_seconds"] is not None and run["stop_seconds"] < 10
    assert result["left_after_cancel"] == []


def test_every_dialog_fits_its_first_size_without_a_horizontal_scroll_bar(window_run):
    """At the size a dialog first opens (QGIS's default), the parameters panel needs no
    horizontal scroll bar, with the Advanced section collapsed and expanded."""
    result, _ = window_run
    wide = {}
    for alg_id, d in result["dialogs"].items():
        assert any(a["in"] == "ParametersPanel" for a in d["scroll_collapsed"]), alg_id
        for state in ("scroll_collapsed", "scroll_expanded"):
            for area in d.get(state, []):
                if area["horizontal_bar"]:
                    wide[(alg_id, state, area["in"])] = (area["content_width"], area["viewport_width"])
    assert wide == {}
    expanded = [alg_id for alg_id, d in result["dialogs"].items() if d.get("scroll_expanded")]
    assert {"cwsc:calibrate", "cwsc:evaluate", "cwsc:learnfromrunoff", "cwsc:train"} <= set(expanded)
    for alg_id in expanded:
        assert os.path.getsize(result["dialogs"][alg_id]["screenshot_expanded"]) > 5000, alg_id


def test_double_parameters_show_a_few_decimals_not_six(window_run):
    """QGIS 3.22 reads {"widget_wrapper": {"decimals": N}}: 0.75, not 0.750000."""
    result, _ = window_run
    doubles = {
        (alg_id, name): v for alg_id, d in result["dialogs"].items() for name, v in d["doubles"].items()
    }
    assert ("cwsc:calibrate", "CALIBRATION_FRACTION") in doubles
    for key, v in doubles.items():
        assert v["wanted"] is not None and v["decimals"] == v["wanted"] <= 4, (key, v)
        assert not v["text"].endswith("0000"), (key, v)
    assert doubles[("cwsc:calibrate", "CALIBRATION_FRACTION")]["text"] == "0.75"
    assert doubles[("cwsc:train", "TEST_FRACTION")]["text"] == "0.30"


def test_the_workflow_model_is_valid_in_the_modeler_and_runs_from_it_with_the_map_on_top(window_run):
    result, _ = window_run
    modeler = result["modeler"]
    assert os.path.getsize(modeler["screenshot"]) > 20000
    assert modeler["valid"] and modeler["issues"] == []
    assert modeler["children"] == ["calibrate", "mask", "predict", "train"]
    run = modeler["run"]
    assert run["ok"], run["log"][-3000:]
    assert "Traceback" not in run["log"] and "Execution failed" not in run["log"], run["log"][-3000:]
    tree = [layer["name"] for layer in modeler["layer_tree"]]
    # Every raster output of the model is loaded, named by its role and, being a temporary
    # output, the run's time ("CWSC map (20:10:47)"); the CWSC map on top of the others.
    assert all(re.fullmatch(r".+ \(\d\d:\d\d:\d\d\)", name) for name in tree), tree
    roles = [name.rsplit(" (", 1)[0] for name in tree]
    assert sorted(roles) == ["CWSC labels", "CWSC map", "Calibration KGE", "Masked CWSC labels"], tree
    assert roles[0] == "CWSC map", tree


def test_gauged_catchments_at_the_dialogs_defaults_end_without_a_red_line(window_run):
    """Evaluate CWSC with gauges on the demo's gauges with its default temporary
    outputs and an empty id field: the GeoPackage QGIS loads is the one written (no "The
    following layers were not correctly generated"), the id field is found from the table."""
    result, _ = window_run
    run = result["runs"]["gauges"]
    assert run["finished"] and run["ok"], run["log"][-2000:]
    assert "not correctly generated" not in run["log"], run["log"][-2000:]
    assert "ID_FIELD: 'gauge', whose values are 12 of the table's 12 ids" in run["log"]
    names = [layer["name"] for layer in result["layers_after_gauges"]]
    assert any(n.startswith("Catchment scores (") for n in names), names
