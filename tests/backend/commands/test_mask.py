"""``python -m backend mask``: counts, output, refused grids."""


import numpy as np

from backend_testing import last_event, read_tif, run_backend, write_tif


def test_mask_command_counts_cells_and_writes_output(tmp_path):
    labels = write_tif(tmp_path / "labels.tif", np.array([[100, 200], [np.nan, 400.0]]))
    kge = write_tif(tmp_path / "kge.tif", np.array([[0.6, -0.2], [0.1, 0.3]]))
    code, events, _ = run_backend("mask", "--labels", labels, "--kge", kge, "--threshold", "0.2",
                                  "--out", tmp_path / "masked.tif")
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
