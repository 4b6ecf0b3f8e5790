"""Report wording: tables in words, not in the code's keys."""

from cwsc.reports.html import table_html, words


def test_keys_read_as_words():
    assert words("test_rmse_mm") == "test RMSE (mm)"
    assert words("cal_kge_train_cells") == "cal KGE train cells"
    assert words("R²") == "R²" and words("RMSE (mm)") == "RMSE (mm)"  # already words
    html = table_html({"train_cells": 12, "median_kge": 0.5})
    assert "train cells" in html and "median KGE" in html and "train_cells" not in html
    rows = table_html([{"group_name": "arid", "kge_val_map": 0.7}])
    assert "group name" in rows and "KGE val map" in rows
