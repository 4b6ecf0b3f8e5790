"""cwsc.io.catchments: series of gauged catchments in, ids matched, tables out (the polygons:
test_polygons.py)."""

from __future__ import annotations

import csv
import logging

import fiona
import numpy as np
import pytest
from fiona.crs import CRS

from cwsc.errors import InputFileError, ParameterError, UnitsError
from cwsc.io import catchments as C

WGS84 = CRS.from_epsg(4326).to_wkt()
LAEA = CRS.from_epsg(3035).to_wkt()


def box(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def poly(*rings):
    return {"type": "Polygon", "coordinates": [list(r) for r in rings]}


# ---------------------------------------------------------------------------------------
# read_series, match_ids, runoff_in_mm


def write_csv(path, rows, header=("id", "month", "runoff")):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def months_from(year, n):
    return [f"{year + (i // 12)}-{i % 12 + 1:02d}" for i in range(n)]


def test_read_series(tmp_path, caplog):
    rows = [("7", m, str(i), str(2 * i), "", "x") for i, m in enumerate(months_from(2001, 30))]
    rows.insert(5, ("A", "2001-01", "1", "", "", ""))
    rows += [
        ("A", m, "1.5", "", "3", "") for m in months_from(2001, 24)[1:] if m not in ("2001-06", "2001-07")
    ]
    rows += [("A", "2003-06", "", "", "", "")]
    path = write_csv(
        tmp_path / "q.csv", rows, header=("ID", "Month", "RUNOFF", "Precipitation", "pet", "station")
    )
    with caplog.at_level(logging.WARNING, logger="cwsc.io.catchments"):
        table = C.read_series(path, min_months=20)
    assert "station" in caplog.text and "q.csv" in caplog.text
    assert table.variables == ["runoff", "precipitation", "pet"]
    assert set(table.series) == {"7", "A"} and table.problems == []
    s = table.series["7"]
    assert s.months == months_from(2001, 30) and s.gaps == []
    np.testing.assert_array_equal(s.runoff, np.arange(30.0))
    np.testing.assert_array_equal(s.precipitation, 2 * np.arange(30.0))
    assert np.isnan(s.pet).all() and s.temperature is None
    a = table.series["A"]
    assert a.months[0] == "2001-01" and a.months[-1] == "2003-06" and len(a.months) == 23
    assert a.gaps == ["2001-06 to 2001-07", "2003-01 to 2003-05"]
    assert np.isnan(a.runoff[-1]) and a.pet[1] == 3.0
    assert "A (2001-06 to 2001-07" in caplog.text


def test_read_series_problems_per_id(tmp_path):
    rows = [("1", m, "1") for m in months_from(2001, 24)]
    rows += [("2", m, "1") for m in months_from(2001, 24)] + [("2", "2001-03", "2"), ("2", "2001-05", "2")]
    rows += [("3", m, "1" if i < 23 else "") for i, m in enumerate(months_from(2001, 30))]
    table = C.read_series(write_csv(tmp_path / "q.csv", rows))
    assert list(table.series) == ["1"]
    reasons = {p.id: p.reason for p in table.problems}
    assert "q.csv" in reasons["2"] and "id 2" in reasons["2"] and "2001-03, 2001-05" in reasons["2"]
    assert "id 3 has runoff for 23 months; at least 24" in reasons["3"]
    assert table.ids == ["1", "2", "3"]


def test_read_series_file_errors(tmp_path):
    with pytest.raises(InputFileError, match=r"q\.csv', line 1: no column 'runoff'.*id, month, discharge"):
        C.read_series(
            write_csv(tmp_path / "q.csv", [("1", "2001-01", "1")], header=("id", "month", "discharge"))
        )
    with pytest.raises(InputFileError, match=r"b\.csv', line 3: '2001-13' is not a month"):
        C.read_series(write_csv(tmp_path / "b.csv", [("1", "2001-01", "1"), ("1", "2001-13", "1")]))
    with pytest.raises(InputFileError, match=r"c\.csv', line 2, column 'Runoff': 'abc' is not a number"):
        C.read_series(
            write_csv(tmp_path / "c.csv", [("1", "2001-01", "abc")], header=("id", "month", "Runoff"))
        )
    with pytest.raises(InputFileError, match=r"d\.csv', line 2: no id"):
        C.read_series(write_csv(tmp_path / "d.csv", [("", "2001-01", "1")]))
    with pytest.raises(InputFileError, match=r"e\.csv.*no such file"):
        C.read_series(tmp_path / "e.csv")
    semicolons = tmp_path / "s.csv"
    # With ';' a comma is the decimal mark (tests/cwsc/io/test_gate.py); two of them are no number.
    semicolons.write_text("id;month;runoff\n" + "".join(f"9;{m};1,5,2\n" for m in months_from(2001, 24)))
    with pytest.raises(InputFileError, match=r"s\.csv', line 2, column 'runoff': '1,5,2' is not a number"):
        C.read_series(semicolons)


def test_match_ids_both_ways(tmp_path):
    shapes = [C.CatchmentShape(i, poly(box(0, 0, 1, 1)), WGS84) for i in ("1", "2", "5")]
    rows = [(i, m, "1") for i in ("2", "1", "9", "4") for m in months_from(2001, 24)]
    rows += [("8", "2001-01", "1")]
    table = C.read_series(write_csv(tmp_path / "q.csv", rows))
    paired, problems = C.match_ids(shapes, table, known=[C.NotScored("4", "no geometry")])
    assert paired == ["1", "2"]
    reasons = {p.id: p.reason for p in problems}
    assert set(reasons) == {"5", "9"}  # 4 and 8 are already listed
    assert (
        "catchment 5 has a polygon but no row in the series table" in reasons["5"] and "q.csv" in reasons["5"]
    )
    assert "catchment 9 has rows in the series table" in reasons["9"] and "no polygon" in reasons["9"]


def test_match_ids_integer_against_zero_padded_ids(tmp_path, caplog):
    # an integer id field (7, 12) against a table of gauge numbers with leading zeros
    shapes = [C.CatchmentShape(i, poly(box(0, 0, 1, 1)), WGS84) for i in ("7", "12", "30", "4")]
    rows = [(i, m, "1") for i in ("007", "0012", "030", "0030", "4") for m in months_from(2001, 24)]
    table = C.read_series(write_csv(tmp_path / "q.csv", rows))
    with caplog.at_level(logging.WARNING, logger="cwsc.io.catchments"):
        paired, problems = C.match_ids(shapes, table)
    assert paired == ["7", "12", "4"]
    assert "7 = 007" in caplog.text and "12 = 0012" in caplog.text and "q.csv" in caplog.text
    assert table.series["7"].id == "7" and "007" not in table.series
    # 30 is ambiguous (030 and 0030): not paired, every id listed
    assert {p.id for p in problems} == {"30", "030", "0030"}


def test_runoff_in_mm():
    months = ["2000-01", "2000-02", "2001-02"]
    values = np.array([1.0, 1.0, 1.0])
    np.testing.assert_array_equal(C.runoff_in_mm(values, months, "mm/month", None), values)
    np.testing.assert_array_equal(C.runoff_in_mm(values, months, "mm/day", None), [31.0, 29.0, 28.0])
    np.testing.assert_array_equal(
        C.runoff_in_mm(values, [24000, 24001, 24013], "mm d-1", None), [31.0, 29.0, 28.0]
    )
    # 1 m3/s over 100 km2 for 31 days: 31 * 86400 / 1e8 m = 26.784 mm
    got = C.runoff_in_mm(values, months, "m3/s", 100.0)
    np.testing.assert_allclose(got, [26.784, 29 * 0.864, 28 * 0.864])
    with pytest.raises(ParameterError, match="catchment 7.*area"):
        C.runoff_in_mm(values, months, "m3/s", None, id="7")
    with pytest.raises(UnitsError, match=r"'l/s'.*mm/month, mm/day, m3/s"):
        C.runoff_in_mm(values, months, "l/s", 100.0)


# ---------------------------------------------------------------------------------------
# writing


def test_write_catchments_and_table(tmp_path):
    shapes = [
        C.CatchmentShape("7", poly(box(4_321_000, 3_210_000, 4_331_000, 3_220_000)), LAEA),
        C.CatchmentShape(
            "A",
            {"type": "MultiPolygon", "coordinates": [[box(4_400_000, 3_210_000, 4_410_000, 3_220_000)]]},
            LAEA,
        ),
    ]
    fields = [("id", "str"), ("cells", "int"), ("kge", "float"), ("reason", "str")]
    records = [
        {"id": "7", "cells": np.int64(12), "kge": np.float64(0.5)},
        {"id": "A", "cells": None, "kge": float("nan"), "reason": "too short"},
    ]
    out = tmp_path / "scores.gpkg"
    (tmp_path / "scores.gpkg").write_text("stale")
    assert C.write_catchments(out, shapes, records, fields) == out
    assert fiona.listlayers(out) == ["scores"]
    with fiona.open(out) as src:
        assert src.crs.to_epsg() == 3035
        assert list(src.schema["properties"]) == ["id", "cells", "kge", "reason"]
        feats = list(src)
    assert [dict(f.properties) for f in feats] == [
        {"id": "7", "cells": 12, "kge": 0.5, "reason": None},
        {"id": "A", "cells": None, "kge": None, "reason": "too short"},
    ]
    assert feats[0].geometry.type == "MultiPolygon"
    back, problems = C.read_catchments(out, "id")
    assert [s.id for s in back] == ["7", "A"] and problems == []
    assert C.area_km2(back[0].geometry, back[0].crs_wkt) == pytest.approx(100.0, rel=1e-3)

    table = C.write_table(tmp_path / "scores.csv", records, fields)
    assert table.read_text().splitlines() == ["id,cells,kge,reason", "7,12,0.5,", "A,,,too short"]
    with pytest.raises(ValueError, match="type 'double'"):
        C.write_table(tmp_path / "x.csv", records, [("kge", "double")])
