"""The plugin from the command line: ``make deploy`` into a throw-away HOME, then
``qgis_process --json run cwsc:... -- NAME=value`` as a scripting user would."""

import os
import subprocess
from pathlib import Path

import pytest
from plugin_testing import QGIS_PROCESS, ROOT, product_netcdf, qgis_process, run_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process is not installed"),
]
PREDICTOR_NAMES = ("elevation", "soil_depth", "tree_cover")


def test_zip_layout(qp_env):
    import zipfile

    names = zipfile.ZipFile(Path(qp_env["CWSC_DIST_DIR"]) / "cwsc_qgis.zip").namelist()
    assert {n.split("/")[0] for n in names} == {"cwsc_qgis"}
    for needed in (
        "cwsc_qgis/__init__.py",
        "cwsc_qgis/metadata.txt",
        "cwsc_qgis/runner.py",
        "cwsc_qgis/algorithms/train.py",
        "cwsc_qgis/lib/cwsc/__main__.py",
        "cwsc_qgis/lib/cwsc/runtime/protocol.py",
        "cwsc_qgis/resources/icon.svg",
        "cwsc_qgis/resources/styles/cwsc.qml",
        "cwsc_qgis/resources/styles/kge.qml",
    ):
        assert needed in names, needed
    assert not any("__pycache__" in n or n.endswith("backend_python.txt") for n in names)
    # what "Install from ZIP" (pyplugin_installer, QGIS 3.22) takes as the plugin's name
    metadata = sorted(n for n in names if n.endswith("metadata.txt"))
    assert Path(metadata[0]).parent.name == "cwsc_qgis"


def test_deploy_again_replaces_the_installed_plugin(qp_env):
    env = dict(qp_env, CWSC_BACKEND_PYTHON=os.environ["CWSC_BACKEND_PYTHON"])
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "deploy.sh")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # "already enabled" is fine


def test_list_and_help(qp_env):
    listing = qgis_process(qp_env, "list").stdout
    for alg in (
        "prepare",
        "calibrate",
        "maskbykge",
        "train",
        "learnfromrunoff",
        "predict",
        "evaluate",
        "info",
    ):
        assert f"cwsc:{alg}" in listing
    help_text = qgis_process(qp_env, "help", "cwsc:train").stdout
    for name in (
        "PREDICTORS",
        "LABELS",
        "KGE_THRESHOLD",
        "PATCH_SIZE",
        "TEST_FRACTION",
        "SPLIT",
        "EPOCHS",
        "RECIPE",
        "ENSEMBLE",
        "OUTPUT_MODEL",
        "TEST_R2",
    ):
        assert name in help_text


def test_info_uses_the_recorded_interpreter(qp_env):
    _, data = run_json(qp_env, "cwsc:info", [])
    assert data["results"]["INTERPRETER"] == str(ROOT / ".venv" / "bin" / "python") or Path(
        data["results"]["INTERPRETER"]
    ).name.startswith("python")
    assert data["results"]["TORCH_VERSION"]


def test_mask_from_the_command_line_and_bad_input(qp_env, data_dir, tmp_path):
    out = tmp_path / "masked ü.tif"
    _, data = run_json(
        qp_env,
        "cwsc:maskbykge",
        [
            ("LABELS", data_dir / "labels.tif"),
            ("KGE", data_dir / "kge.tif"),
            ("THRESHOLD", 0.1),
            ("OUTPUT", out),
        ],
    )
    results = data["results"]
    assert results["OUTPUT"] == str(out) and out.is_file() and out.with_suffix(".qml").is_file()
    assert results["KEPT_CELLS"] > 0
    done, _ = run_json(
        qp_env,
        "cwsc:maskbykge",
        [
            ("LABELS", data_dir / "labels.tif"),
            ("KGE", data_dir / "kge_other_grid.tif"),
            ("OUTPUT", tmp_path / "bad.tif"),
        ],
        check=False,
    )
    assert done.returncode != 0
    assert "different grid" in done.stdout + done.stderr
    assert not (tmp_path / "bad.tif").exists()


def test_calibrate_from_the_command_line(qp_env, data_dir, tmp_path):
    outs = {
        "OUTPUT_CWSC": tmp_path / "cwsc labels.tif",
        "OUTPUT_KGE": tmp_path / "kge.tif",
        "OUTPUT_DETAILS": tmp_path / "details.tif",
    }
    _, data = run_json(
        qp_env,
        "cwsc:calibrate",
        [
            ("PRECIPITATION", data_dir / "precipitation.tif"),
            ("PET", data_dir / "pet.tif"),
            ("RUNOFF", data_dir / "runoff.tif"),
            ("MODELS", "0,2"),
            ("OBJECTIVE", 0),
            ("RESTARTS", 1),
            ("MAX_EVALUATIONS", 200),
            ("WARMUP_MONTHS", 6),
            ("SEED", 1),
            ("DEVICE", 1),
        ]
        + list(outs.items()),
    )
    results = data["results"]
    for name, path in outs.items():
        assert results[name] == str(path) and path.is_file(), name
        assert path.with_suffix(".qml").is_file(), name
    from osgeo import gdal

    dataset = gdal.Open(str(outs["OUTPUT_CWSC"]))  # kept: a band outliving it crashes GDAL
    band = dataset.GetRasterBand(1).GetDescription()
    dataset = None
    assert "within 0.02 of the best model's" in band  # the default label rule
    print(
        "\nqgis_process cwsc:calibrate results:",
        {k: v for k, v in results.items() if not k.startswith("OUTPUT")},
    )


def test_train_and_predict_from_the_command_line(qp_env, data_dir, tmp_path):
    predictors = [("PREDICTORS", data_dir / "predictors" / f"{n}.tif") for n in PREDICTOR_NAMES]
    model = tmp_path / "cwsc model.pt"
    _, data = run_json(
        qp_env,
        "cwsc:train",
        predictors
        + [
            ("LABELS", data_dir / "labels.tif"),
            ("PATCH_SIZE", 5),
            ("EPOCHS", 1),
            ("BATCH_SIZE", 16),
            ("BLOCKS", 1),
            ("WIDTHS", "4,4,8"),
            ("DEVICE", 1),
            ("SEED", 2),
            ("OUTPUT_MODEL", model),
            ("OUTPUT_REPORT", tmp_path / "report.html"),
        ],
    )
    assert model.is_file() and data["results"]["TRAIN_SAMPLES"] > 0
    out = tmp_path / "cwsc.tif"
    _, data = run_json(
        qp_env, "cwsc:predict", [("MODEL", model)] + predictors + [("DEVICE", 1), ("OUTPUT", out)]
    )
    results = data["results"]
    assert results["OUTPUT"] == str(out) and out.is_file()
    assert out.with_suffix(".qml").is_file()
    print("\nqgis_process cwsc:predict results:", results)


def test_learn_from_runoff_and_predict_from_the_command_line(qp_env, data_dir, tmp_path):
    predictors = [("PREDICTORS", data_dir / "predictors" / f"{n}.tif") for n in PREDICTOR_NAMES]
    model = tmp_path / "physics model.pt"
    _, data = run_json(
        qp_env,
        "cwsc:learnfromrunoff",
        predictors
        + [
            ("PRECIPITATION", data_dir / "precipitation.tif"),
            ("PET", data_dir / "pet.tif"),
            ("RUNOFF", data_dir / "runoff.tif"),
            ("MODELS", 1),
            ("PATCH_SIZE", 3),
            ("EPOCHS", 2),
            ("BATCH_SIZE", 4),
            ("TEST_FRACTION", 0.2),
            ("BLOCKS", 1),
            ("WIDTHS", "4,4,8"),
            ("PRETRAIN_EPOCHS", 5),
            ("DEVICE", 1),
            ("OUTPUT_MODEL", model),
            ("OUTPUT_REPORT", tmp_path / "learning.html"),
        ],
    )
    results = data["results"]
    assert model.is_file() and (tmp_path / "learning.html").is_file()
    report = (tmp_path / "learning.html").read_text(encoding="utf-8")
    assert "5 epochs on a per-cell calibration of the training cells" in report
    assert results["TRAIN_CELLS"] > 0 and -1 < results["CAL_KGE_TRAIN_CELLS"] <= 1
    out = tmp_path / "cwsc physics.tif"
    _, data = run_json(
        qp_env, "cwsc:predict", [("MODEL", model)] + predictors + [("DEVICE", 1), ("OUTPUT", out)]
    )
    assert out.is_file()
    print("\nqgis_process cwsc:learnfromrunoff results:", results)


def test_prepare_from_grun_and_cru_ts_netcdf_files(qp_env, data_dir, tmp_path):
    """The README example: GRUN runoff (mm/day) and CRU TS precipitation (pre beside stn,
    which no 3.22 raster layer can hold) as files, PET as a GeoTIFF; then calibrate on them."""
    grun = product_netcdf(data_dir / "runoff.tif", tmp_path / "GRUN_v1.nc", "grun")
    cru = product_netcdf(data_dir / "precipitation.tif", tmp_path / "cru_ts4.pre.nc", "cru")
    out = tmp_path / "prepared"
    out.mkdir()
    done, data = run_json(
        qp_env,
        "cwsc:prepare",
        [
            ("PRECIPITATION", cru),
            ("PRECIPITATION_VARIABLE", "pre"),
            ("PET", data_dir / "pet.tif"),
            ("PET_START", "2001-01"),
            ("RUNOFF", grun),
            ("OUTPUT_PRECIPITATION", out / "P.tif"),
            ("OUTPUT_PET", out / "PET.tif"),
            ("OUTPUT_RUNOFF", out / "Q.tif"),
            ("OUTPUT_PREDICTORS", out / "predictors"),
        ],
    )
    results = data["results"]
    assert results["MONTHS"] == 48 and results["FIRST_MONTH"] == "2001-01"
    assert sorted(p.name for p in (out / "predictors").iterdir() if p.suffix == ".tif") == sorted(
        f"{k}.tif"
        for k in (
            "precipitation",
            "pet",
            "runoff",
            "aridity",
            "runoff_coefficient",
            "precipitation_seasonality",
        )
    )
    text = done.stdout + done.stderr
    assert "in mm/day, converted to mm/month" in text
    from osgeo import gdal

    ds = gdal.Open(str(out / "Q.tif"))
    assert ds.GetRasterBand(1).GetDescription().endswith("2001-01")
    ds = None
    _, data = run_json(
        qp_env,
        "cwsc:calibrate",
        [
            ("PRECIPITATION", out / "P.tif"),
            ("PET", out / "PET.tif"),
            ("RUNOFF", out / "Q.tif"),
            ("MAX_EVALUATIONS", 30),
            ("OUTPUT_CWSC", out / "cwsc.tif"),
            ("OUTPUT_KGE", out / "kge.tif"),
        ],
    )
    assert data["results"]["CELLS_CALIBRATED"] > 0
