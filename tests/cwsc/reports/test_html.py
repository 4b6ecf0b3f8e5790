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


def test_lists_read_as_a_reader_writes_them_not_as_python_literals():
    # The Run table of learn from runoff (issue 37, item 19): models and widths.
    text = table_html({"models": ["DWBM", "SWBM", "TVGM"], "widths": (16, 32, 64), "epochs": [1200, 0.5]})
    assert "DWBM, SWBM, TVGM" in text and "16, 32, 64" in text and "1,200, 0.5" in text
    assert "[" not in text and "'DWBM'" not in text and "(16" not in text
