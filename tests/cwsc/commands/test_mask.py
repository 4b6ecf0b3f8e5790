"""``python -m cwsc mask``: counts, output, refused grids."""

import numpy as np
from backend_testing import last_event, read_tif, run_backend, snapshot, write_tif


def test_mask_command_counts_cells_and_writes_output(tmp_path):
    labels = write_tif(tmp_path / "labels.tif", np.array([[100, 200], [np.nan, 400.0]]))
    kge = write_tif(tmp_path / "kge.tif", np.array([[0.6, -0.2], [0.1, 0.3]]))
    code, events, _ = run_backend(
        "mask", "--labels", labels, "--kge", kge, "--threshold", "0.2", "--out", tmp_path / "masked.tif"
    )
    assert code == 0
    res = last_event(events, "result")
    assert res["metrics"]["kept_cells"] == 2 and res["metrics"]["masked_cells"] == 1
    out, _, desc = read_tif(tmp_path / "masked.tif")
    assert out[0, 0, 0] == 100 and np.isnan(out[0, 0, 1]) and out[0, 1, 1] == 400
    assert "KGE > 0.2" in desc[0]


def test_mask_command_refuses_different_grids(tmp_path):
    labels = write_tif(tmp_path / "labels.tif", np.ones((3, 3)))
    kge = write_tif(tmp_path / "kge.tif", np.ones((4, 3)))
    code, events, _ = run_backend("mask", "--labels", labels, "--kge", kge, "--out", tmp_path / "m.tif")
    assert code == 2
    err = last_event(events, "error")
    assert err["kind"] == "bad_input" and "kge.tif" in err["message"] and "different grid" in err["message"]
    assert not (tmp_path / "m.tif").exists()


def test_mask_applies_the_kge_threshold_and_the_excluded_flags(tmp_path):
    from cwsc.hydro.labels import cwsc_descriptions

    cwsc = np.array([[100, 200, 300], [400, 500, 600.0]])
    width = np.full((2, 3), 20.0)
    flags = np.array([[0, 1, 8], [9, 0, 16.0]])
    labels = write_tif(
        tmp_path / "labels.tif",
        np.stack([cwsc, width, flags]),
        descriptions=cwsc_descriptions(0.0, 0.01, 0.02),
    )
    kge = write_tif(tmp_path / "kge.tif", np.array([[0.6, 0.6, 0.6], [0.6, -0.1, 0.6]]))
    # The default excludes labels at a bound (bit 1).
    code, events, err = run_backend("mask", "--labels", labels, "--kge", kge, "--out", tmp_path / "m.tif")
    assert code == 0, err
    m = last_event(events, "result")["metrics"]
    assert (m["kept_cells"], m["masked_by_kge"], m["masked_by_flags"]) == (3, 1, 2)
    out, _, desc = read_tif(tmp_path / "m.tif")
    assert np.isfinite(out[0]).tolist() == [[True, False, True], [False, False, True]]
    assert np.isfinite(out[2]).sum() == 3 and "no flag of 1" in desc[0]
    code, events, _ = run_backend(
        "mask", "--labels", labels, "--kge", kge, "--exclude-flags", "24", "--out", tmp_path / "m.tif"
    )
    assert np.isfinite(read_tif(tmp_path / "m.tif")[0][0]).tolist() == [
        [True, True, False],
        [False, False, False],
    ]
    # A bit that does not exist is refused; labels without a flags band: KGE only, said.
    code, events, _ = run_backend(
        "mask", "--labels", labels, "--kge", kge, "--exclude-flags", "256", "--out", tmp_path / "x.tif"
    )
    assert code == 2 and "EXCLUDE_FLAGS" in last_event(events, "error")["message"]
    plain = write_tif(tmp_path / "plain.tif", cwsc)
    code, events, _ = run_backend("mask", "--labels", plain, "--kge", kge, "--out", tmp_path / "p.tif")
    assert code == 0 and any("no quality flags band" in e.get("message", "") for e in events)


def test_labels_and_kge_given_the_wrong_way_round_are_refused(tmp_path):
    rng = np.random.default_rng(1)
    cwsc = rng.uniform(50, 400, (3, 8, 8)).astype(np.float32)
    kge = rng.uniform(-0.5, 0.95, (8, 8)).astype(np.float32)
    for described in (True, False):
        labels = write_tif(
            tmp_path / f"labels_{described}.tif",
            cwsc,
            descriptions=["CWSC (mm): ...", "CWSC identifiable range width (mm)", "quality flags"]
            if described
            else None,
        )
        scores = write_tif(
            tmp_path / f"kge_{described}.tif", kge, descriptions=["Joint KGE: ..."] if described else None
        )
        before = snapshot(tmp_path)
        code, events, _ = run_backend(
            "mask", "--labels", scores, "--kge", labels, "--out", tmp_path / "m.tif"
        )
        message = last_event(events, "error")["message"]
        assert code == 2 and "the two are swapped" in message and f"kge_{described}.tif" in message, message
        assert snapshot(tmp_path) == before
        code, _, err = run_backend("mask", "--labels", labels, "--kge", scores, "--out", tmp_path / "m.tif")
        assert code == 0, err
        (tmp_path / "m.tif").unlink()
