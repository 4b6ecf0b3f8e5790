"""The demo's gauged catchments (cwsc/synthetic/gauges.py): squares of 2 x 2 cells on model
runoff, their record the area-weighted mean, written by demo-data beside the rasters."""

import csv
import math

import numpy as np
import pytest

from cwsc.io.rasters import Grid
from cwsc.synthetic.gauges import demo_gauges


def test_gauges_sit_on_model_runoff_and_average_it_by_area():
    rows, cols, months = 20, 24, 3
    failed = np.zeros((rows, cols))
    failed[:2] = np.nan  # sea
    failed[2, 2] = 1.0  # noise: the first lattice block is not a gauge
    runoff = np.arange(months * rows * cols, dtype=float).reshape(months, rows, cols)
    grid = Grid("", (0.5, 0.0, -10.0, 0.0, -0.5, 60.0), cols, rows)
    shapes, records, series = demo_gauges(failed, runoff, grid, ["2001-01", "2001-02", "2001-03"], count=12)
    # the lattice: rows 2, 9, 16 and columns 2, 11 (every 7th row, 9th column, 2 from the edge)
    assert (
        [s.id for s in shapes]
        == [r["gauge"] for r in records]
        == [f"G{n:02d}" for n in range(1, len(shapes) + 1)]
    )
    first = shapes[0].geometry["coordinates"][0]
    assert first[0] == (-10.0 + 11 * 0.5, 60.0 - 2 * 0.5)  # (row 2, col 11): (2, 2) is noise
    assert first[0] == first[-1] and len(first) == 5
    weights = [math.cos(math.radians(60.0 - (2 + i + 0.5) * 0.5)) for i in (0, 1)]
    block = runoff[1, 2:4, 11:13]
    expected = sum(weights[i] * block[i].sum() for i in (0, 1)) / (2 * sum(weights))
    values = {(s["id"], s["month"]): s["runoff"] for s in series}
    assert math.isclose(values[("G01", "2001-02")], expected, rel_tol=1e-12)
    assert len(series) == len(shapes) * months


@pytest.mark.slow  # the demo's land mask and models: about 30 s on a busy machine
def test_demo_data_writes_the_gauges(tmp_path):
    from cwsc.io.catchments import read_catchments
    from cwsc.synthetic.demo_region import DemoRegion, write_demo

    region = DemoRegion(west=0.0, east=12.0, south=44.0, north=52.0, years=2)
    manifest = write_demo(tmp_path / "demo", seed=1, region=region)
    gpkg, table = manifest["files"]["gauges"], manifest["files"]["gauges_table"]
    shapes, problems = read_catchments(gpkg, "gauge")
    assert not problems
    with open(table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = {r["id"] for r in rows}
    assert ids == {s.id for s in shapes} and len(ids) >= 1 and len(rows) == 24 * len(ids)
    assert all(float(r["runoff"]) >= 0 for r in rows)
