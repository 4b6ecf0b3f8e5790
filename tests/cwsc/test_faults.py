"""The fault catalogue of issue 13, through ``python -m cwsc`` as the plugin runs it.

Every case: a clear message that names the file or parameter (never a traceback), the exit
code, and every file that was there before byte-identical afterwards, with no new file.
The same cases through ``qgis_process`` are in ``tests/plugin/test_faults_qgis_process.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from backend_testing import (
    COLS,
    ROWS,
    TINY,
    calibrate_args,
    last_event,
    lock_folder,
    refused,
    run_backend,
    snapshot,
    start_backend,
    terminate_when,
    unlock_folder,
    write_tif,
)

from cwsc.synthetic.twin import make_twin, write_twin


def test_1_a_later_output_that_cannot_be_replaced_costs_nothing(forcing, tmp_path, previous_outputs):
    paths, _ = forcing
    if not lock_folder(previous_outputs / "kge.tif"):
        pytest.skip("chattr +i is not available here")
    before = snapshot(tmp_path)
    try:
        refused(
            calibrate_args(paths, previous_outputs, **{"--out-details": previous_outputs / "details.tif"}),
            "OUTPUT_KGE",
            "kge.tif' exists and cannot be replaced",
        )
    finally:
        unlock_folder(previous_outputs / "kge.tif")
    assert snapshot(tmp_path) == before


def test_1_a_report_that_cannot_be_written_keeps_the_previous_model(tmp_path):
    files = write_twin(tmp_path / "twin", make_twin((24, 24), channels=3, seed=2))
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.pt").write_bytes(b"the previous model")
    (out / "report.html").write_bytes(b"the previous report")
    if not lock_folder(out / "report.html"):
        pytest.skip("chattr +i is not available here")
    before = snapshot(tmp_path)
    try:
        refused(
            [
                "train",
                "--predictors",
                *files["predictors"],
                "--labels",
                files["labels"],
                "--out-model",
                out / "model.pt",
                "--out-report",
                out / "report.html",
                *TINY,
                "--epochs",
                "1",
            ],
            "OUTPUT_REPORT",
            "report.html' exists and cannot be replaced",
        )
    finally:
        unlock_folder(out / "report.html")
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_2_an_output_that_is_an_input_is_refused(forcing, tmp_path):
    paths, _ = forcing
    before = snapshot(tmp_path)
    refused(
        calibrate_args(paths, tmp_path, **{"--out-cwsc": paths["q"]}),
        "OUTPUT_CWSC",
        "q.tif' is the input RUNOFF",
    )
    labels = write_tif(tmp_path / "labels.tif", np.ones((ROWS, COLS)))
    kge = write_tif(tmp_path / "kge_in.tif", np.ones((ROWS, COLS)))
    before = snapshot(tmp_path)
    refused(
        ["mask", "--labels", labels, "--kge", kge, "--out", labels],
        "OUTPUT",
        "labels.tif' is the input LABELS",
    )
    refused(
        ["predict", "--model", tmp_path / "m.pt", "--predictors", labels, "--out", labels],
        "OUTPUT",
        "is the input PREDICTORS",
    )
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_4_one_file_under_two_names_is_refused(forcing, tmp_path):
    paths, _ = forcing
    (tmp_path / "maps").mkdir()
    (tmp_path / "same").symlink_to(tmp_path / "maps")
    before = snapshot(tmp_path)
    refused(
        calibrate_args(
            paths,
            tmp_path,
            **{"--out-cwsc": tmp_path / "maps" / "c.tif", "--out-kge": tmp_path / "same" / "." / "c.tif"},
        ),
        "OUTPUT_CWSC and OUTPUT_KGE are the same file",
    )
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "value, words",
    [
        (-999.0, ("RUNOFF", "holds -999", "RUNOFF_NODATA=-999")),
        (-3.0, ("RUNOFF", "negative values", "row 2, column 3")),
    ],
)
def test_5_undeclared_sentinels_and_negative_runoff_are_refused(forcing, tmp_path, value, words):
    paths, arrays = forcing
    q = arrays["q"].copy()
    q[10, 1, 2] = value
    paths = {**paths, "q": write_tif(tmp_path / "q_bad.tif", q, nodata=None)}
    before = snapshot(tmp_path)
    refused(calibrate_args(paths, tmp_path), "q_bad.tif", *words)
    assert snapshot(tmp_path) == before


def test_6_nan_thresholds_are_refused_by_name(forcing, tmp_path):
    paths, _ = forcing
    before = snapshot(tmp_path)
    refused(
        calibrate_args(paths, tmp_path, **{"--kge-threshold": "nan"}),
        "MODEL_KGE_THRESHOLD must be a finite number",
    )
    refused(
        [
            "mask",
            "--labels",
            paths["q"],
            "--kge",
            paths["q"],
            "--out",
            tmp_path / "m.tif",
            "--threshold",
            "nan",
        ],
        "THRESHOLD must be a finite number",
    )
    refused(
        calibrate_args(paths, tmp_path, **{"--calibration-fraction": "inf"}),
        "CALIBRATION_FRACTION must be a finite number",
    )
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_8_training_runs_with_four_steps(tmp_path):
    files = write_twin(tmp_path / "twin", make_twin((24, 24), channels=3, seed=2))
    rc, events, err = run_backend(
        "train",
        "--predictors",
        *files["predictors"],
        "--labels",
        files["labels"],
        "--out-model",
        tmp_path / "m.pt",
        *TINY,
        "--epochs",
        "4",
        "--batch-size",
        "200",
    )
    assert rc == 0, err
    assert "ZeroDivisionError" not in err


def test_9_sigterm_is_a_clean_cancel(forcing, tmp_path, previous_outputs):
    paths, _ = forcing
    before = snapshot(tmp_path)
    proc = start_backend(
        calibrate_args(paths, previous_outputs)[:-2] + ["--max-evaluations", "5000", "--restarts", "8"]
    )
    timings = {}
    rc, events = terminate_when(proc, lambda e: e.get("stage", "").startswith("calibrating"), timings=timings)
    err = timings["stderr"]
    assert rc == 3 and last_event(events, "error")["kind"] == "cancelled"
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before


def _tmpfs(folder, size):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    folder.mkdir()
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )


@pytest.mark.slow
def test_10_a_small_disk_is_refused_up_front_and_a_full_disk_said_as_such(tmp_path):
    small = tmp_path / "small"
    if not _tmpfs(small, "256k"):
        pytest.skip("needs root and tmpfs to make a small disk")
    try:
        (small / "cwsc.tif").write_bytes(b"the old map")
        rows, cols = 200, 300
        data = np.random.default_rng(0).random((1, rows, cols)).astype(np.float32)
        labels = write_tif(tmp_path / "labels.tif", data, transform=(0.1, 0, 0, 0, -0.1, 20))
        before = snapshot(tmp_path)
        refused(
            ["mask", "--labels", labels, "--kge", labels, "--out", small / "cwsc.tif"],
            "not enough space in",
            "MB needed",
            "MB free",
        )
        assert snapshot(tmp_path) == before
        # A disk that fills while the run writes (demo-data makes no estimate): ENOSPC,
        # said as such, nothing left.
        rc, events, err = run_backend("demo-data", "--out", small / "demo")
        message = last_event(events, "error")["message"]
        assert rc == 2 and "the disk is full" in message, (message, err[-500:])
        assert "Traceback" not in err
        assert [p.name for p in small.rglob("*") if p.is_file()] == ["cwsc.tif"]
        assert (small / "cwsc.tif").read_bytes() == b"the old map"
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


def test_11_a_truncated_geotiff_is_named(forcing, tmp_path):
    paths, arrays = forcing
    big = write_tif(tmp_path / "q_big.tif", np.repeat(arrays["q"], 1, axis=0))
    data = big.read_bytes()
    cut = tmp_path / "q_cut.tif"
    cut.write_bytes(data[: len(data) * 2 // 3])
    before = snapshot(tmp_path)
    refused(calibrate_args({**paths, "q": cut}, tmp_path), "RUNOFF", "q_cut.tif")
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_12_unreplaceable_outputs_and_long_names_fail_before_any_work(forcing, tmp_path):
    paths, _ = forcing
    long = tmp_path / ("c" * 245 + ".tif")
    before = snapshot(tmp_path)
    refused(calibrate_args(paths, tmp_path, **{"--out-cwsc": long}), "OUTPUT_CWSC", "too long")
    rc, events, _ = run_backend(*calibrate_args(paths, tmp_path, **{"--out-cwsc": long}))
    assert not any(e["event"] == "progress" and e["stage"].startswith("calibrating") for e in events)
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_13_a_crs_mismatch_names_both_crss(forcing, tmp_path):
    paths, arrays = forcing
    other = write_tif(tmp_path / "q_3035.tif", arrays["q"], crs="EPSG:3035")
    before = snapshot(tmp_path)
    refused(
        calibrate_args({**paths, "q": other}, tmp_path),
        "RUNOFF",
        "q_3035.tif",
        "coordinate reference system",
        "EPSG:3035",
        "EPSG:4326",
    )
    assert snapshot(tmp_path) == before


def test_14_non_positive_sizes_and_wrong_extensions_are_refused(forcing, tmp_path):
    paths, _ = forcing
    before = snapshot(tmp_path)
    refused(calibrate_args(paths, tmp_path, **{"--shard-cells": "-5"}), "SHARD_CELLS must be at least 1")
    refused(calibrate_args(paths, tmp_path, **{"--workers": "0"}), "WORKERS must be at least 1")
    refused(
        ["mask", "--labels", paths["q"], "--kge", paths["q"], "--out", tmp_path / "masked.png"],
        "OUTPUT",
        "masked.png' must end in .tif",
        "GeoTIFF",
    )
    refused(
        [
            "train",
            "--predictors",
            paths["q"],
            "--labels",
            paths["q"],
            "--out-model",
            tmp_path / "m.pt",
            "--epochs",
            "0",
        ],
        "EPOCHS must be at least 1",
    )
    refused(
        [
            "train",
            "--predictors",
            paths["q"],
            "--labels",
            paths["q"],
            "--out-model",
            tmp_path / "m.pt",
            "--batch-size",
            "-1",
        ],
        "BATCH_SIZE must be at least 1",
    )
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_3_temporaries_of_a_killed_run_are_cleaned_by_the_next_run(forcing, tmp_path, previous_outputs):
    import signal

    paths, _ = forcing
    before = snapshot(previous_outputs)
    proc = start_backend(
        calibrate_args(paths, previous_outputs)[:-2] + ["--max-evaluations", "5000", "--restarts", "8"]
    )
    for line in proc.stdout:
        if '"calibrating' in line:
            break
    proc.send_signal(signal.SIGKILL)  # no handler runs: the temporaries stay
    proc.communicate(timeout=60)
    left = [n for n in snapshot(previous_outputs) if n not in before]
    # its temporaries, and its lock file (.cwsc-run-<pid>-<token>.lock), which nobody holds now
    assert left and all(".cwsc-" in n and n.endswith((".part", ".lock")) for n in left), left
    assert {k: v for k, v in snapshot(previous_outputs).items() if k in before} == before
    rc, events, err = run_backend(*calibrate_args(paths, previous_outputs))
    assert rc == 0, err
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert sum("left" in m and "killed" in m for m in logs) == sum(n.endswith(".part") for n in left), logs
    assert not [n for n in snapshot(previous_outputs) if ".cwsc-" in n]
    assert sorted(snapshot(previous_outputs)) == sorted(before)  # replaced, nothing left over
