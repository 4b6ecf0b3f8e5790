"""Every command reads its inputs through the one gate (:mod:`cwsc.io.gate`), so no command can
skip a check (issue #33 section 2): this walks ``cwsc/commands/*.py`` and fails when one opens a
raster, a NetCDF file or a table any other way."""

from __future__ import annotations

import ast
from pathlib import Path

import cwsc.commands

COMMANDS = Path(cwsc.commands.__file__).parent

#: Readers only the gate may call: the raster and NetCDF openers, the table readers, the
#: unchecked readers below the gate.
READERS = {
    "open_raster",
    "open_dataset",
    "open_mfdataset",
    "open_rasterio",
    "read_csv",
    "loadtxt",
    "genfromtxt",
    "reader",
    "DictReader",
    "read_series",
    "open_forcing",
    "read_forcing",
    "dated_input",
}
#: Modules a command may take readers from.
GATE = "cwsc.io.gate"


def offences(source: str) -> list[str]:
    """What in ``source`` (a command module) reads input without the gate, one line each."""
    tree = ast.parse(source)
    found = []
    gate_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for alias in node.names:
                local = alias.asname or alias.name
                if alias.name in READERS and module != GATE:
                    found.append(f"line {node.lineno}: imports {alias.name} from {module}, not from {GATE}")
                if module == GATE or (module == "cwsc.io" and alias.name == "gate"):
                    gate_names.add(local)
        if isinstance(node, ast.Import):
            for alias in node.names:
                # fiona: the polygons' library (cwsc.io.polygons), used by commands for layer names
                if alias.name in ("csv", "xarray", "netCDF4", "pandas"):
                    found.append(f"line {node.lineno}: imports {alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            if func.attr in READERS and owner not in gate_names:
                found.append(f"line {node.lineno}: calls {owner}.{func.attr}, not gate.{func.attr}")
            if func.attr == "open" and owner in ("rasterio", "xr", "xarray", "fiona", "netCDF4"):
                found.append(f"line {node.lineno}: calls {owner}.open")
        elif isinstance(func, ast.Name) and func.id == "open":
            mode = node.args[1] if len(node.args) > 1 else None
            mode = next((k.value for k in node.keywords if k.arg == "mode"), mode)
            if mode is None or (isinstance(mode, ast.Constant) and "r" in str(mode.value)):
                found.append(f"line {node.lineno}: opens a file to read with open()")
    return found


def test_no_command_reads_an_input_around_the_gate():
    found = {
        path.name: offences(path.read_text())
        for path in sorted(COMMANDS.glob("*.py"))
        if path.name not in ("__init__.py", "options.py")
    }
    assert {k: v for k, v in found.items() if v} == {}


def test_the_walk_finds_each_way_around_the_gate():
    """The check itself: each way of reading around the gate is found, the gate's are not."""
    sneaky = """
import csv
from cwsc.io import rasters as io
from cwsc.io.forcing import open_forcing
from cwsc.io import catchments as C
import rasterio
def f(a):
    io.open_raster(a, "CWSC")
    C.read_series(a)
    rasterio.open(a)
    open(a)
"""
    assert len(offences(sneaky)) == 6, offences(sneaky)
    fine = """
from cwsc.io import gate
from cwsc.io.gate import open_forcing
def f(a):
    gate.open_input(a, "CWSC")
    gate.read_series(a)
    open_forcing(a, a, a)
    open(a, "w")
"""
    assert offences(fine) == []
