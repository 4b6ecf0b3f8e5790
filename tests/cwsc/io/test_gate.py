"""cwsc.io.gate: the one input gate (issue #33 section 2). Each check on real files written
here: undeclared nodata in any band of any role, band counts against the role, plausible
values per variable and unit (Kelvin read as Celsius, a temperature always below freezing),
one file for two roles, and the series table's cells (sentinels, 1e39, decimal commas)."""

from __future__ import annotations

import numpy as np
import pytest
from backend_testing import write_tif

from cwsc.errors import InputFileError
from cwsc.io import gate

TRANSFORM = (0.5, 0, -10.0, 0, -0.5, 60.0)
MONTHS = [f"{2001 + i // 12}-{i % 12 + 1:02d}" for i in range(24)]


def tif(path, data, nodata=None, descriptions=None, units=None):
    """A float32 GeoTIFF of ``data`` (bands, rows, cols), values as they are, with ``nodata``
    declared or not."""
    return str(
        write_tif(path, data, TRANSFORM, nodata=nodata, descriptions=descriptions, units=units, as_is=True)
    )


@pytest.mark.parametrize("sentinel", [-9999.0, -999.0, 1e20, 3.4028234663852886e38, 9.969209968386869e36])
def test_an_undeclared_sentinel_in_a_map_is_refused_naming_file_band_and_cell(tmp_path, sentinel):
    data = np.full((4, 5), 150.0, np.float32)
    data[2, 3] = sentinel
    path = tif(tmp_path / "map.tif", data)
    with pytest.raises(InputFileError) as err:
        gate.read_map(path, "CWSC")
    message = str(err.value)
    assert "map.tif" in message and "CWSC" in message and "band 1, row 3, column 4" in message
    assert "nodata" in message
    # Declared, the same value is nodata and the map reads.
    declared = tif(tmp_path / "declared.tif", data, nodata=sentinel)
    values = gate.read_map(declared, "CWSC").values
    assert np.isnan(values[2, 3]) and np.nanmax(values) == 150.0


def test_a_precipitation_file_given_as_the_cwsc_map_is_refused_by_its_bands(tmp_path):
    stack = np.full((24, 4, 5), 60.0, np.float32)
    path = tif(tmp_path / "precip.tif", stack, nodata=-9999.0, descriptions=MONTHS)
    with pytest.raises(InputFileError) as err:
        gate.read_map(path, "CWSC")
    assert "24 bands" in str(err.value) and "2001-01 to 2002-12" in str(err.value)
    with pytest.raises(InputFileError, match="24 bands"):
        gate.open_input(path, "REFERENCE_MAPS (other)")
    # A map whose band names its period (calibrate's KGE) is no time series.
    kge = tif(
        tmp_path / "kge.tif", np.full((4, 5), 0.5), nodata=-9999.0, descriptions=["KGE (2001-01 to 2010-12)"]
    )
    with gate.open_input(kge, "KGE") as r:
        assert r.count == 1


def test_a_negative_or_implausible_cwsc_map_is_refused(tmp_path):
    data = np.full((4, 5), 150.0, np.float32)
    data[0, 0] = -2441.0
    with pytest.raises(InputFileError, match="-2441"):
        gate.read_map(tif(tmp_path / "neg.tif", data, nodata=-9999.0), "CWSC")


def test_a_temperature_in_kelvin_without_units_is_refused_as_kelvin(tmp_path):
    stack = np.full((24, 4, 5), 283.0, np.float32) + np.arange(24, dtype=np.float32)[:, None, None] % 12
    path = tif(tmp_path / "t2m.tif", stack, nodata=-9999.0, descriptions=MONTHS)
    with pytest.raises(InputFileError) as err:
        gate.read_dated(path, "TEMPERATURE")
    assert "t2m.tif" in str(err.value) and "is it in K?" in str(err.value)
    # Declared as K it is converted and reads.
    read = gate.read_dated(path, "TEMPERATURE", units="K")
    assert np.allclose(read.data[0], 283.0 - 273.15, atol=1e-4)


def test_a_temperature_always_below_freezing_is_refused(tmp_path):
    stack = np.full((24, 4, 5), -12.0, np.float32)
    path = tif(tmp_path / "frozen.tif", stack, nodata=-9999.0, descriptions=MONTHS, units="degC")
    with pytest.raises(InputFileError, match="below freezing in every month"):
        gate.read_dated(path, "TEMPERATURE")


def test_one_file_for_two_roles_is_refused_and_two_netcdf_variables_are_not(tmp_path):
    path = tif(tmp_path / "p.tif", np.full((24, 4, 5), 60.0), nodata=-9999.0, descriptions=MONTHS)
    (tmp_path / "link.tif").symlink_to(path)
    with pytest.raises(InputFileError) as err:
        gate.distinct({"PRECIPITATION": path, "PET": None, "RUNOFF": str(tmp_path / "link.tif")})
    assert "RUNOFF" in str(err.value) and "PRECIPITATION" in str(err.value)
    gate.distinct({"PRECIPITATION": (path, "pre"), "TEMPERATURE": (path, "tmp")})  # one NetCDF, two variables
    with pytest.raises(InputFileError, match="also given as PRECIPITATION"):
        gate.distinct({"PRECIPITATION": (path, "pre"), "RUNOFF": (path, "pre")})


def test_forcing_with_one_file_for_two_roles_is_refused(tmp_path):
    path = tif(tmp_path / "p.tif", np.full((24, 4, 5), 60.0), nodata=-9999.0, descriptions=MONTHS)
    pet = tif(tmp_path / "e.tif", np.full((24, 4, 5), 80.0), nodata=-9999.0, descriptions=MONTHS)
    with pytest.raises(InputFileError, match="RUNOFF: .* is also given as PRECIPITATION"):
        gate.open_forcing(path, pet, path)


def _table(path, rows, header="id,month,runoff,precipitation,pet,temperature", sep=","):
    lines = [header.replace(",", sep)] + [sep.join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rows(runoff="20", precipitation="80", pet="60", temperature="8", bad_month=5):
    out = []
    for i, m in enumerate(MONTHS):
        values = [runoff if i == bad_month else "20", "80", "60", "8"]
        if i == bad_month:
            values = [runoff, precipitation, pet, temperature]
        out.append(["a", m, *values])
    return out


@pytest.mark.parametrize(
    "cell, column, words",
    [
        ({"runoff": "-999"}, "runoff", ["-999", "no data"]),
        ({"precipitation": "-9999"}, "precipitation", ["-9999", "no data"]),
        ({"runoff": "1e39"}, "runoff", ["1e+39"]),
        ({"runoff": "-3"}, "runoff", ["-3"]),
        ({"temperature": "288.2"}, "temperature", ["is it in K?"]),
        ({"pet": "9.96921e36"}, "pet", ["no data"]),
    ],
)
def test_a_bad_cell_of_the_series_table_is_refused_naming_line_and_column(tmp_path, cell, column, words):
    table = _table(tmp_path / "series.csv", _rows(**cell))
    with pytest.raises(InputFileError) as err:
        gate.read_series(table)
    message = str(err.value)
    assert "series.csv" in message and "line 7" in message and f"column '{column}'" in message, message
    for w in words:
        assert w in message, message


def test_decimal_commas_are_read_when_the_separator_is_a_semicolon(tmp_path):
    rows = [["a", m, f"{20 + i},5", "1.080,25", "60,0", "-1,5"] for i, m in enumerate(MONTHS)]
    table = gate.read_series(_table(tmp_path / "european.csv", rows, sep=";"))
    series = table.series["a"]
    assert series.runoff[:3].tolist() == [20.5, 21.5, 22.5]
    assert series.precipitation[0] == 1080.25 and series.pet[0] == 60.0 and series.temperature[0] == -1.5
