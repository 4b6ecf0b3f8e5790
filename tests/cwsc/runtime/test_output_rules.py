"""What a run may touch (issue 33, section 1): only what it made. A leftover or copied commit
journal, a reused pid, a damaged journal, a symlinked output, a folder removed mid-run, a run
waiting for another's lock: the user's files stay as they were, and each case says so in one
line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from backend_testing import ROOT, RunningRun, snapshot

from cwsc.errors import OutputRefused
from cwsc.runtime.outputs import Outputs, clean_stale, recover_journal

TOKEN = "0123abcd"


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def _logs(capsys) -> list[str]:
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    return [e["message"] for e in lines if e.get("event") == "log"]


def test_a_leftover_journal_naming_files_in_another_folder_deletes_none_of_them(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_bytes(b"my notes")
    (home / "thesis.docx").write_bytes(b"chapter 1")
    out = tmp_path / "out"
    out.mkdir()
    pid = _dead_pid()
    # The journal of a killed run, its entries absolute paths in another folder (a journal
    # copied along with a folder, or written by hand), beside one temporary of that run here.
    part = out / f".old.tif.cwsc-{pid}-{TOKEN}.part"
    part.write_bytes(b"half a map")
    entries = [[str(part), str(out / "old.tif"), str(out / f".old.tif.cwsc-{pid}-{TOKEN}.backup"), False]]
    entries += [
        [
            str(home / f".{n}.cwsc-{pid}-{TOKEN}.part"),
            str(home / n),
            str(home / f".{n}.cwsc-{pid}-{TOKEN}.backup"),
            False,
        ]
        for n in ("notes.txt", "thesis.docx")
    ]
    (out / f".cwsc-commit-{pid}-{TOKEN}.journal").write_text(json.dumps({"pid": pid, "entries": entries}))

    with Outputs({"OUTPUT": out / "masked.tif"}) as run:
        run.temporary("OUTPUT").write_bytes(b"the mask")

    assert snapshot(home) == {"notes.txt": b"my notes", "thesis.docx": b"chapter 1"}
    assert snapshot(out) == {"masked.tif": b"the mask"}
    logs = " ".join(_logs(capsys))
    assert "ignored 2 entries" in logs and "notes.txt" in logs and "were not touched" in logs, logs


def test_a_damaged_journal_is_reported_and_nothing_is_changed(tmp_path):
    pid = _dead_pid()
    (tmp_path / "cwsc.tif").write_bytes(b"the new map")
    (tmp_path / f".cwsc.tif.cwsc-{pid}-{TOKEN}.backup").write_bytes(b"last year's map")
    (tmp_path / f".kge.tif.cwsc-{pid}-{TOKEN}.part").write_bytes(b"the new kge")
    whole = json.dumps({"format": 2, "pid": pid, "token": TOKEN, "complete": False, "entries": []})
    journal = tmp_path / f".cwsc-commit-{pid}-{TOKEN}.journal"
    journal.write_text(whole[:40])  # cut to 40 bytes
    before = snapshot(tmp_path)
    lines = clean_stale(tmp_path)
    assert snapshot(tmp_path) == before
    assert len(lines) == 1 and "is damaged" in lines[0] and journal.name in lines[0], lines
    assert "nothing was changed" in lines[0]


def test_a_reused_pid_does_not_make_a_killed_run_look_alive(tmp_path):
    """The pid of the killed run now belongs to another process (here this one): its files are
    still recognised as left behind, by the lock the killed run no longer holds."""
    pid = os.getpid()
    (tmp_path / "cwsc.tif").write_bytes(b"the previous map")
    (tmp_path / f".cwsc.tif.cwsc-{pid}-{TOKEN}.part").write_bytes(b"half a map")
    assert clean_stale(tmp_path) and snapshot(tmp_path) == {"cwsc.tif": b"the previous map"}


def test_a_copied_folder_does_not_keep_a_live_runs_files_alive(tmp_path):
    """``cp -a`` of a folder a run is writing into: in the copy the run is gone (its lock did
    not travel with the files); in the original it is alive and untouched."""
    original = tmp_path / "original"
    original.mkdir()
    with RunningRun(original / "map.tif") as part:
        part.write_bytes(b"a running run's map")
        copy = tmp_path / "copy"
        subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
        assert (copy / part.name).exists()
        assert any("removed" in line for line in clean_stale(copy))
        assert snapshot(copy) == {}
        assert clean_stale(original) == [] and part.read_bytes() == b"a running run's map"


def test_a_rollback_renames_back_only_what_the_run_moved(tmp_path):
    """A run killed after placing two files: the one it replaced gets its previous file back,
    the one it made new goes, and a file a user put in place of a third since then stays."""
    pid = _dead_pid()
    mine = tmp_path / "kge.tif"
    mine.write_bytes(b"the killed run's kge")
    st = mine.stat()
    new = tmp_path / "new.tif"
    new.write_bytes(b"the killed run's new map")
    sn = new.stat()
    (tmp_path / f".kge.tif.cwsc-{pid}-{TOKEN}.backup").write_bytes(b"last year's kge")
    (tmp_path / "user.tif").write_bytes(b"the user's own map, written after")
    (tmp_path / f".cwsc.tif.cwsc-{pid}-{TOKEN}.part").write_bytes(b"not placed yet")

    def entry(name, had, identity):
        return {
            "temporary": f".{name}.cwsc-{pid}-{TOKEN}.part",
            "destination": name,
            "backup": f".{name}.cwsc-{pid}-{TOKEN}.backup",
            "had": had,
            "identity": identity,
        }

    plan = {
        "format": 2,
        "pid": pid,
        "token": TOKEN,
        "complete": False,
        "entries": [
            entry("kge.tif", True, [st.st_size, st.st_mtime_ns]),
            entry("new.tif", False, [sn.st_size, sn.st_mtime_ns]),
            entry("user.tif", False, [1, 1]),  # placed by the run once, replaced by the user since
            entry("cwsc.tif", False, [14, 1]),
        ],
    }
    journal = tmp_path / f".cwsc-commit-{pid}-{TOKEN}.journal"
    journal.write_text(json.dumps(plan))
    lines = recover_journal(journal)
    assert any("rolled back" in line for line in lines), lines
    assert snapshot(tmp_path) == {
        "kge.tif": b"last year's kge",
        "user.tif": b"the user's own map, written after",
    }


def test_a_symlinked_output_is_refused_and_its_target_untouched(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "thesis_map.tif").write_bytes(b"the thesis map")
    out = tmp_path / "out"
    out.mkdir()
    (out / "cwsc.tif").symlink_to(elsewhere / "thesis_map.tif")
    with pytest.raises(
        OutputRefused, match=r"OUTPUT: '.*cwsc.tif' is a symbolic link \(to '.*thesis_map.tif'\)"
    ):
        with Outputs({"OUTPUT": out / "cwsc.tif"}) as run:
            run.temporary("OUTPUT").write_bytes(b"a new map")
    assert snapshot(elsewhere) == {"thesis_map.tif": b"the thesis map"}
    assert os.readlink(out / "cwsc.tif") == str(elsewhere / "thesis_map.tif")


def test_a_folder_removed_during_the_run_is_one_line(tmp_path):
    import numpy as np
    import rasterio

    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputRefused, match=r"OUTPUT: the folder '.*out' was removed during the run"):
        with Outputs({"OUTPUT": out / "cwsc.tif"}) as run:
            shutil.rmtree(out)
            with rasterio.open(
                run.temporary("OUTPUT"), "w", driver="GTiff", width=2, height=2, count=1, dtype="float32"
            ) as dst:
                dst.write(np.zeros((1, 2, 2), "float32"))
    assert not out.exists()


def test_a_folder_output_holds_only_its_commands_files(tmp_path):
    """New, empty, or this command's earlier set (by its record), which the new set then
    replaces whole; anything else is refused with the files named."""

    def run(folder, names):
        kinds = {n: "text" for n in names if n.endswith(".md")}
        with Outputs({n: folder / n for n in names}, kinds, folders={"OUTPUT": (folder, "demo-data")}) as out:
            for n in names:
                out.temporary(n).write_bytes(f"new {n}".encode())

    home = tmp_path / "home"
    home.mkdir()
    (home / "README.md").write_bytes(b"the user's readme")
    (home / "maps").mkdir()
    (home / "maps" / "dem.tif").write_bytes(b"the user's dem")
    before = snapshot(home)
    with pytest.raises(
        OutputRefused, match=r"OUTPUT: the folder '.*home' holds files .*'README.md', 'maps/dem.tif'"
    ):
        run(home, ["README.md", "runoff.tif"])
    assert snapshot(home) == before

    demo = tmp_path / "demo"
    run(demo, ["README.md", "runoff.tif", "temperature.tif"])  # new
    (demo / "runoff.tif.aux.xml").write_bytes(b"statistics QGIS wrote")
    run(demo, ["README.md", "runoff.tif"])  # its own earlier set: replaced whole
    assert sorted(p for p in snapshot(demo) if not p.startswith(".cwsc-folder")) == [
        "README.md",
        "runoff.tif",
    ]
    (demo / "notes.txt").write_bytes(b"the user's notes")
    with pytest.raises(OutputRefused, match="'notes.txt'"):
        run(demo, ["README.md"])
    with pytest.raises(OutputRefused, match="holds the outputs of demo-data, not of prepare"):
        with Outputs({"P": demo / "p.tif"}, folders={"OUTPUT_PREDICTORS": (demo, "prepare")}):
            pass
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError):
        with Outputs({"A": empty / "sub" / "a.tif"}, folders={"OUTPUT": (empty, "demo-data")}):
            raise RuntimeError("the run fails")
    assert list(empty.iterdir()) == []  # the folder it made for its files went with it


_HOLDER = """
import sys
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs

def command():
    with Outputs({"A": sys.argv[1] + "/a.tif", "B": sys.argv[1] + "/b.tif"}) as out:
        out.temporary("A").write_bytes(b"a")
        out.temporary("B").write_bytes(b"b")

sys.exit(protocol.run(command))
"""

_WAITER = """
import sys
from cwsc.runtime import protocol
from cwsc.runtime.outputs import Outputs

def command():
    with Outputs({"C": sys.argv[1] + "/c.tif"}) as out:
        out.temporary("C").write_bytes(b"c")

sys.exit(protocol.run(command))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and locks")
def test_a_run_waiting_for_another_runs_lock_says_so_and_obeys_cancel(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(env, CWSC_TEST_PAUSE="commit=8"),
    )
    t0 = time.monotonic()
    while not list(tmp_path.glob(".cwsc-commit-*.journal")):
        assert time.monotonic() - t0 < 30 and holder.poll() is None
        time.sleep(0.02)
    waiter = subprocess.Popen(
        [sys.executable, "-c", _WAITER, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    said = ""
    while "waiting for" not in said:
        line = waiter.stdout.readline()
        assert line, waiter.communicate()[1][-2000:]
        said += line
    assert f"waiting for run {holder.pid} (" in said and str(tmp_path) in said, said
    waiter.send_signal(signal.SIGTERM)
    rest, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 3, err[-2000:]
    assert "had finished" not in rest and '"cancelled"' in rest
    holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert snapshot(tmp_path) == {"a.tif": b"a", "b.tif": b"b"}  # the waiter left nothing


def _project(path):
    """A user's project GeoPackage: rivers and stations."""
    import fiona
    from fiona.crs import CRS

    square = {"type": "Polygon", "coordinates": [[(5, 45), (6, 45), (6, 46), (5, 46), (5, 45)]]}
    for layer, kind in (("rivers", "LineString"), ("stations", "Point")):
        geometry = {
            "LineString": {"type": "LineString", "coordinates": [(5, 45), (6, 46)]},
            "Point": {"type": "Point", "coordinates": (5.5, 45.5)},
        }[kind]
        with fiona.open(
            path,
            "w",
            driver="GPKG",
            layer=layer,
            crs=CRS.from_epsg(4326),
            schema={"geometry": kind, "properties": {"name": "str"}},
        ) as dst:
            dst.write({"geometry": geometry, "properties": {"name": f"my {layer}"}})
    return square


def test_scores_go_into_a_geopackage_as_one_layer_and_the_users_layers_stay(tmp_path):
    import fiona

    from cwsc.io import catchments as C

    project = tmp_path / "project.gpkg"
    square = _project(project)
    wkt = fiona.open(project, layer="rivers").crs_wkt
    shapes = [C.CatchmentShape("G1", square, wkt)]

    def score(kge, fail=False):
        with Outputs({"OUTPUT": project}, kinds={"OUTPUT": "vector"}) as out:
            C.write_catchments(
                out.keep_other_layers("OUTPUT"),
                shapes,
                [{"id": "G1", "kge": kge}],
                [("id", "str"), ("kge", "float")],
                layer="cwsc_scores",
            )
            if fail:
                raise RuntimeError("the run fails after writing")

    score(0.5)
    assert sorted(fiona.listlayers(project)) == ["cwsc_scores", "rivers", "stations"]
    score(0.7)  # again: only its own layer is replaced
    assert sorted(fiona.listlayers(project)) == ["cwsc_scores", "rivers", "stations"]
    with fiona.open(project, layer="cwsc_scores") as src:
        assert [f.properties["kge"] for f in src] == [0.7]
    for layer in ("rivers", "stations"):
        with fiona.open(project, layer=layer) as src:
            assert [f.properties["name"] for f in src] == [f"my {layer}"]
    before = project.read_bytes()
    with pytest.raises(RuntimeError):
        score(0.9, fail=True)
    assert project.read_bytes() == before and snapshot(tmp_path) == {"project.gpkg": before}
    (tmp_path / "notes.gpkg").write_bytes(b"not a GeoPackage")
    with pytest.raises(OutputRefused, match="OUTPUT: '.*notes.gpkg' exists and is not a GeoPackage"):
        with Outputs({"OUTPUT": tmp_path / "notes.gpkg"}, kinds={"OUTPUT": "vector"}) as out:
            out.keep_other_layers("OUTPUT")
    assert (tmp_path / "notes.gpkg").read_bytes() == b"not a GeoPackage"


def test_a_folder_made_read_only_during_the_run_is_one_line(tmp_path):
    from backend_testing import lock_folder, unlock_folder

    out = tmp_path / "out"
    out.mkdir()
    (out / "cwsc.tif").write_bytes(b"last year's map")
    try:
        with pytest.raises(
            OutputRefused, match=r"OUTPUT: the folder '.*out' can no longer be written .*read-only"
        ):
            with Outputs({"OUTPUT": out / "cwsc.tif"}) as run:
                if not lock_folder(out):
                    pytest.skip("chattr +i is not available here")
                # GDAL creating its overview beside the temporary, as a COG write does
                open(str(run.temporary("OUTPUT")) + ".ovr", "wb")
    finally:
        unlock_folder(out)
    assert (out / "cwsc.tif").read_bytes() == b"last year's map"


def test_a_geopackage_open_in_another_program_with_a_write_ahead_log_stays_whole(tmp_path):
    """QGIS keeps a GeoPackage it shows open in WAL mode: its recent edits live in
    ``project.gpkg-wal``. The scores' layer goes in through SQLite, so that log stays paired
    with its own file: the edits are kept and the file passes SQLite's integrity check."""
    import sqlite3

    import fiona

    from cwsc.io import catchments as C

    project = tmp_path / "project.gpkg"
    square = _project(project)
    wkt = fiona.open(project, layer="rivers").crs_wkt
    qgis = sqlite3.connect(project)
    qgis.execute("PRAGMA journal_mode=WAL")
    qgis.execute("PRAGMA wal_autocheckpoint=0")
    edit = "UPDATE gpkg_contents SET description = ? WHERE table_name = ?"
    qgis.execute(edit, ("renamed in QGIS", "rivers"))
    qgis.commit()
    assert (tmp_path / "project.gpkg-wal").stat().st_size > 0
    with Outputs({"OUTPUT": project}, kinds={"OUTPUT": "vector"}) as out:
        C.write_catchments(
            out.keep_other_layers("OUTPUT"),
            [C.CatchmentShape("G1", square, wkt)],
            [{"id": "G1"}],
            [("id", "str")],
            layer="cwsc_scores",
        )
    other = sqlite3.connect(project)  # QGIS opening another layer of the project
    assert other.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    described = "SELECT description FROM gpkg_contents WHERE table_name = ?"
    assert other.execute(described, ("rivers",)).fetchall() == [("renamed in QGIS",)]
    assert other.execute("SELECT id FROM cwsc_scores").fetchall() == [("G1",)]
    qgis.execute(edit, ("moved in QGIS", "stations"))  # QGIS goes on editing
    qgis.commit()
    qgis.close()
    other.close()
    assert sorted(fiona.listlayers(project)) == ["cwsc_scores", "rivers", "stations"]
    last = sqlite3.connect(project)
    assert last.execute(described, ("stations",)).fetchall() == [("moved in QGIS",)]
    assert last.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    last.close()
