"""A run's output files, checked before any work and committed together at the end.

A run touches only what it made: its own temporaries, the destinations it was given, the
files it moved aside itself, and nothing else. Every command that writes files goes through
:class:`Outputs`:

1. **Before any work** (:meth:`Outputs.__enter__`): each output is refused when it is one of
   the inputs, when two outputs are one file (after resolving symlinks, ``.`` and ``..``, and
   by device and inode), when its extension is not the format written, when it is a folder or
   a symbolic link (the run would replace the link, not the file it points to), when its
   folder is missing or cannot be written, when an existing destination cannot be replaced,
   and when its name is too long for the temporary name. A **folder output** (``folders``:
   ``demo-data --out``, ``prepare --out-predictors``) must be new, empty, or hold only the
   files an earlier run of the same command wrote there, by the record it keeps
   (:data:`FOLDER_RECORD`); anything else is refused with the files named, and the new set
   replaces the earlier one whole (no stale file of another variant is left beside it). As
   soon as the grid is known, :meth:`Outputs.need` refuses a folder with less free space than
   the outputs need (estimated by the caller, with a margin). The run's lock file
   (``.cwsc-run-<pid>-<token>.lock``, locked for as long as the run has files in the folder)
   and the temporary file of every output are created here, so a folder that cannot be
   written fails now, not after an hour of calibration.
2. **The work** writes each output to :meth:`Outputs.temporary` (beside its destination,
   named ``.<name>.cwsc-<pid>-<token>.part``: unique per run). A GeoPackage output that must
   keep the other layers of the file already there starts from a copy of it
   (:meth:`Outputs.keep_other_layers`). A write that fails because an output folder was
   removed or made read-only meanwhile is reported as that, in one line.
3. **Commit** (on leaving the ``with`` block without an exception): under a lock on each
   output folder (so that two runs writing the same outputs commit one after the other; a
   run that has to wait says for whom, and Cancel ends the wait), a journal of the renames
   (``.cwsc-commit-<pid>-<token>.journal``) is written in every output folder, naming only
   files of that folder; then every existing destination is moved to a backup name and every
   temporary file takes its destination's name; the journals are marked complete; then the
   backups and the journals are removed. If any step fails, the outputs already placed are
   rolled back to the files that were there before. A stop (SIGTERM, SIGINT) that arrives
   during the renames waits for them (:func:`cwsc.runtime.protocol.critical`, also for the
   stop watchdog): the finished run is kept.
4. **Failure, cancel** (an exception in the block): the temporary files are removed; the
   destinations were never touched.

Temporaries, backups and journals of a run that was killed (SIGKILL, power loss) are found
by the next run into the same folder (:func:`clean_stale`). A run is known to be gone when
nobody holds the lock on its lock file, never by its pid alone (pids are reused; ``cp -a``
copies files, not locks). Its journal says how far the commit got: a complete one is
finished (the backups go), any other is rolled back: a destination the run placed is undone
only while it is still the run's own file (its size and time as the journal recorded), and
only names of the run's own files in the journal's folder are acted on; anything else in it
is ignored and reported. A damaged journal is reported and left with every file it concerns.
Temporaries are removed; a backup without a journal is put back when its destination is
missing and kept otherwise. Nothing is deleted on a guess, and the log says what was done.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from cwsc.errors import BadInput, Cancelled, OutputRefused

try:  # folder locks where the platform has them (not Windows)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None
from cwsc.io.map_files import STAGE_SUFFIX
from cwsc.machine import environment
from cwsc.runtime import protocol

#: The formats the backend writes, by kind of output: the extensions accepted.
EXTENSIONS = {
    "raster": (".tif", ".tiff"),
    "netcdf": (".nc",),
    "report": (".html", ".htm"),
    "model": (".pt", ".pth"),
    "json": (".json",),
    "text": (".md", ".txt"),
    "vector": (".gpkg",),
    "table": (".csv",),
}
FORMAT_NAMES = {
    "raster": "GeoTIFF (.tif, .tiff)",
    "netcdf": "NetCDF (.nc)",
    "report": "HTML (.html)",
    "model": "a CWSC model file (.pt)",
    "json": "JSON (.json)",
    "text": "text (.md, .txt)",
    "vector": "GeoPackage (.gpkg)",
    "table": "CSV (.csv)",
}
#: Sidecars GDAL may write beside a GeoTIFF; they travel with their file.
SIDECARS = (".aux.xml",)
#: A file written beside a temporary and turned into it (a map before its COG rewrite);
#: removed with the temporary, never committed.
#: Free space asked for beyond the estimate.
SPACE_MARGIN = 1.2
#: A write that fails with less free space than this (bytes) on its disk failed for space.
NEARLY_FULL = 1 << 20
_JOURNAL = re.compile(r"^\.cwsc-commit-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})\.journal(?P<part>\.part)?$")
_STALE = re.compile(
    r"^\.(?P<name>.+)\.cwsc-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})\."
    r"(?P<kind>part|backup)(?P<sidecar>\.aux\.xml|\.stage|(?<=part)-(?:wal|shm|journal))?$"
)


#: The record a folder output keeps of what this command wrote there (relative names).
FOLDER_RECORD = ".cwsc-folder.json"
_RUN_LOCK = re.compile(r"^\.cwsc-run-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})\.lock(?P<new>\.new)?$")
#: The runs of this process that hold their outputs' folders: (pid, token).
_LIVE: set[tuple[int, str]] = set()


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists: only where a folder cannot hold a lock (no
    ``fcntl``, a file system without locks), since a pid may have been reused."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _locked(path: Path, pid: int) -> bool:
    """Whether some process holds the lock on the lock file ``path`` (False when there is no
    such file); where the file system has no locks, whether process ``pid`` exists."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return _alive(pid)
    try:
        if fcntl is None:
            return _alive(pid)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # a file system without locks: the pid is all there is
            return _alive(pid)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _run_alive(folder: Path, pid: int, token: str) -> bool:
    """Whether the run ``pid``/``token`` still works in ``folder``: it holds an exclusive lock
    on its lock file there (``.cwsc-run-<pid>-<token>.lock``, put in place already locked)
    for as long as it has files in the folder. A lock is not copied by ``cp -a`` nor
    inherited by a reused pid, so a copied folder or another process with the same pid never
    looks alive; no lock file means the run is gone."""
    if (pid, token) in _LIVE and pid == os.getpid():
        return True
    return _locked(folder / f".cwsc-run-{pid}-{token}.lock", pid)


def _run_label(folder: Path, pid: int, token: str) -> str:
    """'run 1234 (cwsc calibrate, started 14:02:11 UTC)' from its lock file, as far as known."""
    try:
        info = json.loads((folder / f".cwsc-run-{pid}-{token}.lock").read_text(encoding="utf-8"))
        return f"run {pid} ({info['command']}, started {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return f"run {pid}"


def _command_name() -> str:
    """What this process is, in the user's words (``cwsc calibrate``, or the script's name)."""
    argv = sys.argv or [""]
    if argv[0].endswith(("__main__.py", "cwsc")) and len(argv) > 1:
        return f"cwsc {argv[1]}"
    return os.path.basename(argv[0]) or "python"


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve(strict=False) == b.resolve(strict=False):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _megabytes(n: float) -> str:
    return f"{n / 2**20:,.0f}" if n >= 2**20 else f"{n / 2**20:.1f}"


def _identity(path: Path) -> list[int] | None:
    """[size, mtime in ns] of a file: what tells the run's own file from another one after a
    rename (and after ``cp -a``, which keeps both)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


@dataclass
class _Entry:
    """One rename of a commit, all in one folder: ``temporary`` (None: the destination goes,
    an earlier file of a folder output that the new set does not have) takes the place of
    ``final``, whose previous file (``had``) moves to ``backup``."""

    temporary: Path | None
    final: Path
    backup: Path
    had: bool
    identity: list[int] | None = None


def _write_journal(path: Path, pid: int, token: str, entries: list[_Entry], complete: bool) -> None:
    """The commit's plan for one folder, durable before the first rename: each entry's names
    relative to that folder, and ``complete`` once every file of the run is in place."""
    text = json.dumps(
        {
            "format": 2,
            "pid": pid,
            "token": token,
            "command": _command_name(),
            "complete": complete,
            "entries": [
                {
                    "temporary": e.temporary.name if e.temporary is not None else None,
                    "destination": e.final.name,
                    "backup": e.backup.name,
                    "had": e.had,
                    "identity": e.identity,
                }
                for e in entries
            ],
        }
    )
    part = path.with_name(path.name + ".part")
    with open(part, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, path)


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        try:
            path.unlink()
        except OSError:
            pass


def _plain_name(value: object) -> str | None:
    """``value`` when it is a file name inside the journal's folder (no folder part)."""
    if not isinstance(value, str) or not value or value in (".", ".."):
        return None
    if "/" in value or "\\" in value or "\0" in value:
        return None
    return value


def _run_names(kind: str, name: str, pid: int, token: str) -> bool:
    """Whether ``name`` is the run's own ``kind`` (part, backup) name of some destination."""
    m = _STALE.match(name)
    return bool(m) and m["kind"] == kind and int(m["pid"]) == pid and m["token"] == token


def _read_journal(journal: Path, pid: int, token: str) -> tuple[bool, list[_Entry], list[str]]:
    """(complete, entries, names ignored) of a journal; raises ValueError when it cannot be
    read. Only entries that name the run's own files in the journal's folder are taken:
    ``.<name>.cwsc-<pid>-<token>.part`` and ``.backup`` beside ``<name>``."""
    folder = journal.parent
    plan = json.loads(journal.read_text(encoding="utf-8"))
    if not isinstance(plan, dict) or not isinstance(plan.get("entries"), list):
        raise ValueError("no list of entries")
    entries, ignored = [], []
    for raw in plan["entries"]:
        if isinstance(raw, dict):
            tmp, final, backup = raw.get("temporary"), raw.get("destination"), raw.get("backup")
            had, identity = bool(raw.get("had")), raw.get("identity")
        elif isinstance(raw, list) and len(raw) == 4:  # format 1: absolute paths
            tmp, final, backup, had = raw
            had, identity = bool(had), None
            parents = {os.path.dirname(str(x)) for x in (tmp, final, backup)}
            if parents != {str(folder)}:
                ignored.append(str(final))
                continue
            tmp, final, backup = (os.path.basename(str(x)) for x in (tmp, final, backup))
        else:
            ignored.append(repr(raw)[:80])
            continue
        names = [_plain_name(final), _plain_name(backup)] + ([_plain_name(tmp)] if tmp is not None else [])
        if (
            None in names
            or not _run_names("backup", backup, pid, token)
            or not backup.startswith(f".{final}.cwsc-")
            or (
                tmp is not None
                and not (_run_names("part", tmp, pid, token) and tmp.startswith(f".{final}.cwsc-"))
            )
        ):
            ignored.append(str(final))
            continue
        ok_identity = (
            isinstance(identity, list) and len(identity) == 2 and all(isinstance(v, int) for v in identity)
        )
        entries.append(
            _Entry(
                folder / tmp if tmp is not None else None,
                folder / final,
                folder / backup,
                had,
                identity if ok_identity else None,
            )
        )
    complete = plan.get("complete")
    if not isinstance(complete, bool):  # format 1: complete when no temporary is left
        complete = not any(e.temporary is not None and e.temporary.exists() for e in entries)
    return complete, entries, ignored


def recover_journal(journal: Path) -> list[str]:
    """Finish or undo the commit that ``journal`` describes (its run is gone), in the
    journal's folder only: when the run had put every file in place the new files stay and
    the backups go; otherwise every destination the run placed gets its previous file back,
    or goes where there was none, and only if it is still the run's own file (its size and
    time as the journal recorded them). Only files the run made or moved are touched: entries
    naming anything else are ignored and reported, and a journal that cannot be read is left
    in place with nothing changed. Returns what was done, one line each."""
    m = _JOURNAL.match(journal.name)
    if not m:
        return []
    pid, token = int(m["pid"]), m["token"]
    where = f"'{journal.name}' in '{journal.parent}'"
    try:
        complete, entries, ignored = _read_journal(journal, pid, token)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else "cut short or not a journal"
        return [
            f"the commit journal {where}, left by a run that was killed, is damaged ({detail}): "
            "nothing was changed; compare the files it names with their '.backup' copies and remove it"
        ]
    lines = []
    if ignored:
        lines.append(
            f"ignored {len(ignored)} entries of the commit journal {where} that name files outside "
            f"its folder or not made by its run ({_some(ignored)}): those files were not touched"
        )
    names = (
        ", ".join(sorted({e.final.name for e in entries if not e.final.name.endswith(SIDECARS)})) or "nothing"
    )
    kept = []
    if complete:
        _remove([e.backup for e in entries if e.had])
        lines.append(
            f"a run was killed at the end of putting its outputs in place: finished it ({names} are that run's)"
        )
    else:
        for e in reversed(entries):
            try:
                ours = e.identity is not None and _identity(e.final) == e.identity
                placed = ours and (e.temporary is None or not e.temporary.exists())
                if e.temporary is None:  # an earlier file the run took away: it comes back
                    if e.backup.exists() and not os.path.lexists(e.final):
                        os.replace(e.backup, e.final)
                    elif e.backup.exists():
                        kept.append(e.backup.name)
                elif placed and e.had and e.backup.exists():
                    os.replace(e.backup, e.final)
                elif placed and not e.had:
                    os.replace(e.final, e.temporary)  # the run's own file, removed below
                elif e.had and e.backup.exists() and not os.path.lexists(e.final):
                    os.replace(e.backup, e.final)
                elif e.had and e.backup.exists():
                    kept.append(e.backup.name)
            except OSError as exc:
                lines.append(
                    f"could not roll back '{e.final}' after a killed run ({exc.strerror or exc}); "
                    f"its previous file is '{e.backup}'"
                )
                return lines
        _remove([e.temporary for e in entries if e.temporary is not None])
        lines.append(
            f"a run was killed while putting its outputs in place: rolled back, {names} as before that run"
        )
        if kept:
            lines.append(
                f"kept {_some(kept)} in '{journal.parent}': the previous files of outputs that were changed "
                "after that run; remove them once you no longer need them"
            )
    _remove([journal])
    return lines


def _some(items: Sequence[str], n: int = 10) -> str:
    items = list(items)
    shown = ", ".join(f"'{x}'" for x in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def clean_stale(folder: Path) -> list[str]:
    """Recover the commits of killed runs in ``folder`` from their journals, remove their
    temporaries, put back a backup whose destination is missing and keep any other backup;
    returns what was done, one line each. A run is killed when it no longer holds the lock on
    its lock file in ``folder`` (see :func:`_run_alive`), never judged by its pid alone."""
    done: list[str] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return done
    damaged: set[tuple[int, str]] = set()
    with folder_locks([folder]):
        for name in names:
            m = _JOURNAL.match(name)
            if not m or not (folder / name).exists() or _run_alive(folder, int(m["pid"]), m["token"]):
                continue
            if m["part"]:  # still being written when its run was killed: no rename had begun
                _remove([folder / name])
                continue
            lines = recover_journal(folder / name)
            if (folder / name).exists():
                damaged.add((int(m["pid"]), m["token"]))
            done += lines
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            return done
        for name in names:
            m = _STALE.match(name)
            if (
                not m
                or (int(m["pid"]), m["token"]) in damaged
                or _run_alive(folder, int(m["pid"]), m["token"])
            ):
                continue
            path = folder / name
            final = folder / (m["name"] + (m["sidecar"] or ""))
            try:
                age = max(0.0, time.time() - path.stat().st_mtime)
                if m["kind"] == "backup" and not os.path.lexists(final):
                    os.replace(path, final)
                    done.append(
                        f"put back '{final.name}' from the backup of a run that was killed {age / 60:.0f} min ago"
                    )
                elif m["kind"] == "backup":
                    done.append(
                        f"kept '{name}': a copy of an earlier '{final.name}' left by a run that was killed "
                        f"{age / 60:.0f} min ago; remove it once you no longer need it"
                    )
                else:
                    path.unlink()
                    done.append(f"removed '{name}', left {age / 60:.0f} min ago by a run that was killed")
            except OSError as exc:
                done.append(f"could not remove '{name}' left by a killed run: {exc.strerror or exc}")
        for name in names:
            m = _RUN_LOCK.match(name)
            if m and (int(m["pid"]), m["token"]) not in damaged and not _locked(folder / name, int(m["pid"])):
                _remove([folder / name])
    return done


def _holder(folder: Path) -> str:
    """Who commits into ``folder`` now: the live run whose journal is there."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        names = []
    for name in names:
        m = _JOURNAL.match(name)
        if m and _run_alive(folder, int(m["pid"]), m["token"]):
            return _run_label(folder, int(m["pid"]), m["token"])
    return "another run"


#: Seconds between two tries of a folder lock another run holds.
LOCK_POLL_S = 0.1


@contextlib.contextmanager
def folder_locks(folders) -> Iterator[None]:
    """An exclusive lock on each folder (in one order, so two runs never wait on each other),
    held while a run commits into it (or cleans up after a killed one); a file system without
    locks commits unlocked. A run that has to wait says for whom, and a stop (SIGTERM,
    SIGINT) ends the wait: the handler raises :class:`Cancelled` between two tries."""
    fds = []
    try:
        for folder in sorted({str(f) for f in folders}):
            try:
                fd = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            fds.append(fd)
            if fcntl is None:
                continue
            waiting_since = None
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                except OSError:
                    break
                now = time.monotonic()
                if waiting_since is None:
                    waiting_since = now
                elif now - waiting_since >= 0.3 and waiting_since > 0:
                    protocol.log(
                        f"waiting for {_holder(Path(folder))} to finish putting its outputs in place "
                        f"in '{folder}' (Cancel stops this run)"
                    )
                    waiting_since = -1.0  # said once
                time.sleep(LOCK_POLL_S)
        yield
    finally:
        for fd in fds:
            try:
                os.close(fd)  # closing the last descriptor releases the lock
            except OSError:
                pass


def _geopackage_layers(path: Path) -> list[str] | None:
    """The layers of the GeoPackage ``path`` (SQLite with a ``gpkg_contents`` table); None
    when it is no GeoPackage."""
    import sqlite3
    from urllib.request import pathname2url

    try:
        with open(path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                return None
        con = sqlite3.connect(f"file:{pathname2url(str(path))}?mode=ro", uri=True)
    except (OSError, sqlite3.Error):
        return None
    try:
        return [row[0] for row in con.execute("SELECT table_name FROM gpkg_contents ORDER BY table_name")]
    except sqlite3.Error:
        return None
    finally:
        con.close()


@dataclass
class _Output:
    label: str
    final: Path
    kind: str
    temporary: Path = field(init=False)
    backup: Path = field(init=False)
    #: A GeoPackage written into: committed into the file there through SQLite, not by rename.
    in_place: bool = False


@dataclass
class _Folder:
    """A folder output: ``path`` holds this run's files below it and nothing else once the run
    is committed; ``owner`` names what writes it (the record's key)."""

    label: str
    path: Path
    owner: str
    earlier: list[Path] = field(default_factory=list)  # the earlier set found there, absolute


class Outputs:
    """The outputs of one run (see the module docstring).

    outputs: label (the Processing parameter, e.g. ``OUTPUT_CWSC``) -> path; None or "" for
    an optional output not asked for. kinds: label -> a key of :data:`EXTENSIONS` (default
    ``"raster"``). inputs: label -> path (or paths) the run reads, which no output may be.
    folders: label -> (folder, owner) of a folder output: the outputs below ``folder`` are its
    files; the folder must be new, empty, or hold only the files an earlier run of ``owner``
    (e.g. ``"demo-data"``) wrote there, which the new set then replaces as a whole.
    Once the sizes are known, :meth:`need` checks the free space.
    """

    def __init__(
        self,
        outputs: Mapping[str, str | os.PathLike | None],
        kinds: Mapping[str, str] | None = None,
        inputs: Mapping[str, str | os.PathLike | Sequence | None] | None = None,
        folders: Mapping[str, tuple[str | os.PathLike, str]] | None = None,
    ) -> None:
        kinds = kinds or {}
        self._items = [
            _Output(label, Path(os.path.abspath(os.fspath(path))), kinds.get(label, "raster"))
            for label, path in outputs.items()
            if path not in (None, "")
        ]
        self._folders = [
            _Folder(label, Path(os.path.abspath(os.fspath(path))), owner)
            for label, (path, owner) in (folders or {}).items()
        ]
        for f in self._folders:
            self._items.append(_Output(f"{f.label} (record)", f.path / FOLDER_RECORD, "json"))
        self._inputs = []
        for label, value in (inputs or {}).items():
            values = value if isinstance(value, (list, tuple)) else [value]
            self._inputs += [(label, Path(os.fspath(v))) for v in values if v not in (None, "")]
        self._token = secrets.token_hex(4)
        self.committed = False
        self._after_commit: list = []
        self._made: list[Path] = []  # folders this run created, removed again on failure
        self._locks: list[tuple[Path, int]] = []

    # -- checks -------------------------------------------------------------------------
    def paths(self) -> dict[str, Path]:
        return {o.label: o.final for o in self._items if not o.final.name == FOLDER_RECORD}

    def _folder_of(self, o: _Output) -> _Folder | None:
        for f in self._folders:
            if f.path == o.final.parent or f.path in o.final.parents:
                return f
        return None

    def _check(self) -> None:
        for o in self._items:
            allowed = EXTENSIONS[o.kind]
            if not o.final.name.lower().endswith(allowed):
                raise OutputRefused(
                    f"{o.label}: '{o.final}' must end in {' or '.join(allowed)}: the "
                    f"output is written as {FORMAT_NAMES[o.kind]}"
                )
            if o.final.is_symlink():
                raise OutputRefused(
                    f"{o.label}: '{o.final}' is a symbolic link (to '{os.readlink(o.final)}'); the run "
                    "would replace the link, not the file it points to: give that file's own path or "
                    "another name"
                )
            if o.final.is_dir():
                raise OutputRefused(f"{o.label}: '{o.final}' is a folder, not a file name")
            for label, path in self._inputs:
                # A GeoPackage output gets one layer written into it: it may be an input's file.
                if o.kind != "vector" and _same_file(o.final, path):
                    raise OutputRefused(
                        f"{o.label}: '{o.final}' is the input {label}; choose another "
                        "output file (the input would be overwritten)"
                    )
        for i, a in enumerate(self._items):
            for b in self._items[i + 1 :]:
                if _same_file(a.final, b.final):
                    raise OutputRefused(
                        f"{a.label} and {b.label} are the same file ('{a.final}'); "
                        "give each output its own file"
                    )
        for f in self._folders:
            self._check_folder(f)
        for o in self._items:
            folder = o.final.parent
            if self._folder_of(o) is None and not folder.is_dir():
                raise OutputRefused(f"{o.label}: the folder '{folder}' does not exist")

    def _check_folder(self, f: _Folder) -> None:
        """A folder output is new, empty, or holds only ``f.owner``'s earlier set (by its
        record); anything else is refused with the files named."""
        if os.path.lexists(f.path) and not f.path.is_dir():
            raise OutputRefused(f"{f.label}: '{f.path}' is a file, not a folder")
        if not f.path.parent.is_dir():
            raise OutputRefused(f"{f.label}: the folder '{f.path.parent}' does not exist")
        if not f.path.exists():
            return
        record = f.path / FOLDER_RECORD
        listed: set[str] = set()
        if os.path.lexists(record):
            try:
                kept = json.loads(record.read_text(encoding="utf-8"))
                owner, files = kept["written_by"], kept["files"]
                if not isinstance(files, list) or not all(isinstance(x, str) for x in files):
                    raise TypeError
            except (OSError, ValueError, KeyError, TypeError):
                raise OutputRefused(
                    f"{f.label}: the folder '{f.path}' holds a damaged record of its files "
                    f"('{FOLDER_RECORD}'); choose a new or empty folder"
                ) from None
            if owner != f.owner:
                raise OutputRefused(
                    f"{f.label}: the folder '{f.path}' holds the outputs of {owner}, not of {f.owner}; "
                    "choose a new or empty folder"
                )
            for name in files:
                parts = Path(name).parts
                if parts and not Path(name).is_absolute() and ".." not in parts:
                    listed.add(Path(name).as_posix())
        stems = {os.path.splitext(name)[0] for name in listed}
        foreign, earlier = [], []
        for top, dirs, names in os.walk(f.path):
            dirs.sort()
            for name in sorted(names) + sorted(d for d in dirs if os.path.islink(os.path.join(top, d))):
                path = Path(top) / name
                rel = path.relative_to(f.path).as_posix()
                if (
                    rel == FOLDER_RECORD
                    or _STALE.match(name)
                    or _JOURNAL.match(name)
                    or _RUN_LOCK.match(name)
                ):
                    continue
                # QGIS's own sidecars of the earlier files (statistics, a style) belong to them.
                ours = (
                    rel in listed
                    or (rel.endswith(SIDECARS[0]) and rel[: -len(SIDECARS[0])] in listed)
                    or (rel.endswith(".qml") and rel[:-4] in stems)
                )
                if ours and path.is_file() and not path.is_symlink():
                    earlier.append(path)
                else:
                    foreign.append(rel)
            if len(foreign) > 10:  # enough to name (a home folder is not walked whole)
                break
        if foreign:
            named = _some(foreign) if len(foreign) <= 10 else _some(foreign[:10]) + " and more"
            raise OutputRefused(
                f"{f.label}: the folder '{f.path}' holds files that {f.owner} did not write there "
                f"({named}); its outputs would be mixed with them: choose a new or empty folder"
            )
        f.earlier = earlier

    def need(self, sizes: Mapping[str, float]) -> None:
        """Refuse when a file system holds less free space than the outputs on it need:
        ``sizes`` label -> estimated bytes (:data:`SPACE_MARGIN` is added)."""
        by_device: dict[int, list[tuple[_Output, float]]] = {}
        for o in self._items:
            if sizes.get(o.label):
                by_device.setdefault(os.stat(o.final.parent).st_dev, []).append((o, float(sizes[o.label])))
        for items in by_device.values():
            need = SPACE_MARGIN * sum(size for _, size in items)
            folder = items[0][0].final.parent
            free = shutil.disk_usage(folder).free
            if need > free:
                raise OutputRefused(
                    f"{', '.join(o.label for o, _ in items)}: not enough space in "
                    f"'{folder}': about {_megabytes(need)} MB needed, "
                    f"{_megabytes(free)} MB free"
                )

    def _name(self, o: _Output, kind: str) -> Path:
        return o.final.parent / f".{o.final.name}.cwsc-{os.getpid()}-{self._token}.{kind}"

    def _make_folders(self) -> None:
        """Create each folder output (and the folders below it that its files need)."""
        needed = sorted({o.final.parent for o in self._items if self._folder_of(o) is not None})
        for folder in needed:
            missing = []
            up = folder
            while not up.exists():
                missing.append(up)
                up = up.parent
            for path in reversed(missing):
                try:
                    path.mkdir()
                except OSError as exc:
                    raise OutputRefused(
                        f"the folder '{path}' cannot be created ({exc.strerror or exc})"
                    ) from None
                self._made.append(path)

    def _remove_made_folders(self) -> None:
        for path in reversed(self._made):
            try:
                path.rmdir()  # only when empty: nothing of anyone else's goes
            except OSError:
                pass
        self._made = []

    def _lock_folders(self) -> None:
        """The run's lock file in each output folder, locked for as long as the run has files
        there: what tells a live run from a killed one (:func:`_run_alive`)."""
        info = json.dumps(
            {
                "pid": os.getpid(),
                "command": _command_name(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            }
        )
        _LIVE.add((os.getpid(), self._token))
        for folder in sorted({o.final.parent for o in self._items}):
            path = folder / f".cwsc-run-{os.getpid()}-{self._token}.lock"
            new = path.with_name(path.name + ".new")
            try:
                fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except OSError as exc:
                label = next(o.label for o in self._items if o.final.parent == folder)
                raise OutputRefused(
                    f"{label}: the folder '{folder}' cannot be written ({exc.strerror or exc})"
                ) from None
            self._locks.append((new, fd))
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    pass
            try:
                os.write(fd, info.encode())
                # Under its name only once locked: no cleaner ever sees it unlocked.
                os.rename(new, path)
                self._locks[-1] = (path, fd)
            except OSError:
                pass

    def _unlock_folders(self) -> None:
        for path, fd in self._locks:
            _remove([path])
            try:
                os.close(fd)
            except OSError:
                pass
        self._locks = []
        _LIVE.discard((os.getpid(), self._token))

    def _create_temporaries(self) -> None:
        for o in self._items:
            o.temporary, o.backup = self._name(o, "part"), self._name(o, "backup")
            try:
                fd = os.open(o.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                os.close(fd)
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG:
                    raise OutputRefused(
                        f"{o.label}: the file name '{o.final.name}' is too long: the "
                        f"run first writes it as '{o.temporary.name}' "
                        f"({len(o.temporary.name)} characters), more than this "
                        "folder allows; choose a shorter name"
                    ) from None
                raise OutputRefused(
                    f"{o.label}: the folder '{o.final.parent}' cannot be written ({exc.strerror or exc})"
                ) from None
            _pause("temporaries")

    def _check_replaceable(self) -> None:
        """An existing destination must be replaceable (not immutable, folder writable):
        it is renamed to its backup name and back, its bytes untouched."""
        for o in self._items:
            if not o.final.exists():
                continue
            with protocol.critical() as stops:
                try:
                    os.rename(o.final, o.backup)
                except OSError as exc:
                    raise OutputRefused(
                        f"{o.label}: '{o.final}' exists and cannot be replaced "
                        f"({exc.strerror or exc}); remove it or choose another "
                        "output file"
                    ) from None
                _pause("replaceable")
                os.rename(o.backup, o.final)
            if stops:
                raise Cancelled(f"stopped by signal {signal.Signals(stops[0]).name}")

    # -- the context --------------------------------------------------------------------
    def __enter__(self) -> Outputs:
        self._check()
        # Before the first file of ours exists: a stop the watchdog has to end removes them too.
        self._forget_on_stop = protocol.on_stop(self._stop_action)
        try:
            self._make_folders()
            self._lock_folders()
            for folder in sorted({o.final.parent for o in self._items}):
                for line in clean_stale(folder):
                    protocol.log(line)
            self._create_temporaries()
            self._check_replaceable()
        except BaseException:
            self._stop_action()
            self._forget_on_stop()
            raise
        return self

    def _stop_action(self) -> None:
        self._remove_temporaries()
        self._unlock_folders()
        self._remove_made_folders()

    def temporary(self, label: str) -> Path:
        """Where the run writes ``label`` (None when that optional output was not asked for)."""
        for o in self._items:
            if o.label == label:
                return o.temporary
        return None  # type: ignore[return-value]

    def keep_other_layers(self, label: str) -> Path:
        """The temporary of the GeoPackage output ``label``, made a copy of the GeoPackage
        already at its destination (if any, read through SQLite, so changes QGIS still holds
        in its write-ahead log come along): the caller writes its own layer into it, and the
        commit puts the whole file in place, the other layers as they were."""
        import sqlite3

        tmp = self.temporary(label)
        final = next(o.final for o in self._items if o.label == label)
        if final.exists():
            from urllib.request import pathname2url

            if _geopackage_layers(final) is None:
                raise OutputRefused(
                    f"{label}: '{final}' exists and is not a GeoPackage (or cannot be read); the "
                    "output is written as a layer into a GeoPackage: remove it or choose another file"
                )

            try:
                _sqlite_backup(f"file:{pathname2url(str(final))}?mode=ro", tmp, uri=True)
            except sqlite3.Error as exc:
                raise OutputRefused(f"{label}: '{final}' cannot be read as a GeoPackage ({exc})") from None
            next(o for o in self._items if o.label == label).in_place = True
        return tmp

    def drop(self, label: str) -> None:
        """Leave the optional output ``label`` out: its temporary is removed, nothing is put
        in its place and its destination is not touched."""
        for o in list(self._items):
            if o.label == label:
                try:
                    o.temporary.unlink()
                except OSError:
                    pass
                self._items.remove(o)

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            return self._exit(exc_type, exc)
        finally:
            self._unlock_folders()
            if not self.committed:
                self._remove_made_folders()
            forget = getattr(self, "_forget_on_stop", None)
            if forget is not None:
                forget()

    def _exit(self, exc_type, exc) -> bool:
        if exc_type is not None:
            # GDAL reports ENOSPC on stderr and raises "write error": look at the disk too,
            # before the temporaries are removed and their space is free again.
            full = _disk_full(exc) or (
                issubclass(exc_type, Exception) and not issubclass(exc_type, BadInput) and self._nearly_full()
            )
            gone = (
                self._folder_gone()
                if issubclass(exc_type, Exception) and not issubclass(exc_type, BadInput)
                else None
            )
            self._remove_temporaries()
            if full:
                folders = ", ".join(sorted({f"'{o.final.parent}'" for o in self._items}))
                raise OutputRefused(
                    f"the disk is full: no space left in {folders} while writing the "
                    "outputs; nothing was written or replaced"
                ) from None
            if gone:
                raise OutputRefused(gone) from None
            return False
        try:
            self.commit()
        except BaseException:
            self._remove_temporaries()
            raise
        return False

    def _folder_gone(self) -> str | None:
        """The line for a write that failed because an output folder was removed, or can no
        longer be written, during the run (None when the folders are as they were)."""
        for o in self._items:
            folder = o.final.parent
            if not folder.is_dir():
                return (
                    f"{o.label}: the folder '{folder}' was removed during the run; nothing was "
                    "written or replaced"
                )
            probe = folder / f".cwsc-probe-{os.getpid()}-{self._token}"
            try:
                os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                probe.unlink()
            except OSError as exc:
                return (
                    f"{o.label}: the folder '{folder}' can no longer be written ({exc.strerror or exc}): "
                    "it was made read-only during the run; nothing was written or replaced"
                )
            if not o.temporary.exists():
                return (
                    f"{o.label}: the run's file '{o.temporary}' was removed during the run; nothing "
                    "was written or replaced"
                )
        return None

    def _nearly_full(self) -> bool:
        for folder in {o.final.parent for o in self._items}:
            try:
                if shutil.disk_usage(folder).free < NEARLY_FULL:
                    return True
            except OSError:
                pass
        return False

    # -- commit and rollback ------------------------------------------------------------
    def _parts(self, o: _Output) -> list[tuple[Path, Path, Path]]:
        """(temporary, final, backup) for the file and each sidecar the run wrote."""
        parts = [(o.temporary, o.final, o.backup)]
        for side in SIDECARS:
            tmp = Path(str(o.temporary) + side)
            if tmp.exists():
                parts.append((tmp, Path(str(o.final) + side), Path(str(o.backup) + side)))
        return parts

    def _write_records(self) -> None:
        """The record of each folder output: the files of the new set, relative to it."""
        for f in self._folders:
            files = sorted(
                o.final.relative_to(f.path).as_posix()
                for o in self._items
                if self._folder_of(o) is f and o.final.name != FOLDER_RECORD
            )
            record = next(o for o in self._items if o.final == f.path / FOLDER_RECORD)
            record.temporary.write_text(
                json.dumps({"written_by": f.owner, "files": files}, indent=1), encoding="utf-8"
            )

    def _entries(self) -> list[_Entry]:
        entries = []
        for o in self._items:
            if o.in_place:
                continue
            for tmp, final, backup in self._parts(o):
                entries.append(_Entry(tmp, final, backup, os.path.lexists(final), _identity(tmp)))
        # A folder output's earlier files that the new set does not replace go too (a stale
        # file of another variant would be mixed with the new set), as do the statistics
        # sidecars QGIS wrote beside its earlier files.
        placed = {e.final for e in entries}
        for f in self._folders:
            for path in f.earlier:
                if path not in placed and path.exists():
                    backup = path.parent / f".{path.name}.cwsc-{os.getpid()}-{self._token}.backup"
                    entries.append(_Entry(None, path, backup, True, None))
        return entries

    def commit(self) -> None:
        """Put every output in place, or none (see the module docstring)."""
        self._write_records()
        folders = sorted({o.final.parent for o in self._items})
        with folder_locks(folders), protocol.critical() as stops:
            entries = self._entries()
            pid, token = os.getpid(), self._token
            by_folder: dict[Path, list[_Entry]] = {}
            for e in entries:
                by_folder.setdefault(e.final.parent, []).append(e)
            journals = {f: f / f".cwsc-commit-{pid}-{token}.journal" for f in by_folder}
            placed: list[_Entry] = []
            try:
                for f, path in journals.items():
                    _write_journal(path, pid, token, by_folder[f], complete=False)
                for k, e in enumerate(entries):
                    if k:
                        _pause("commit")
                    if e.had:
                        os.replace(e.final, e.backup)
                    if e.temporary is not None:
                        try:
                            os.replace(e.temporary, e.final)
                        except BaseException:
                            if e.had:
                                os.replace(e.backup, e.final)
                            raise
                    placed.append(e)
                for o in self._items:
                    if o.in_place:
                        _sqlite_replace(o.temporary, o.final)
                for f, path in journals.items():
                    _write_journal(path, pid, token, by_folder[f], complete=True)
                _pause("committed")
            except BaseException as exc:
                for e in reversed(placed):
                    try:
                        if e.had:
                            os.replace(e.backup, e.final)
                        else:
                            e.final.unlink()
                    except OSError:
                        pass
                self._remove_temporaries()
                _remove(list(journals.values()))
                if isinstance(exc, OSError):
                    raise OutputRefused(
                        f"the outputs could not be put in place ({exc.strerror or exc}: "
                        f"'{exc.filename}'); every previous file was kept"
                    ) from None
                raise
            _remove([e.backup for e in placed if e.had])
            _remove(list(journals.values()))
            self._unlock_folders()  # nothing of the run's is left to guard
            self.committed = True
            protocol.mark_committed()
        if stops:
            protocol.log(
                "a stop signal arrived while the outputs were being put in place; "
                "the run had finished, its outputs are kept"
            )
        for action in self._after_commit:
            action()

    def after_commit(self, action) -> None:
        """Run ``action()`` once every output is in place (e.g. removing a work folder)."""
        self._after_commit.append(action)

    def _remove_temporaries(self) -> None:
        for o in self._items:
            if not hasattr(o, "temporary"):
                continue
            for path in [
                o.temporary,
                *(Path(str(o.temporary) + s) for s in SIDECARS),
                Path(str(o.temporary) + ".ovr"),
                Path(str(o.temporary) + STAGE_SUFFIX),
                # SQLite's files beside a GeoPackage being written
                *(Path(str(o.temporary) + s) for s in ("-wal", "-shm", "-journal")),
            ]:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError:
                    pass


def _sqlite_replace(source: Path, destination: Path) -> None:
    """Make the GeoPackage ``destination`` a copy of ``source`` in one SQLite write
    transaction (the backup API): atomic, and safe while another program (QGIS) has it open
    with a write-ahead log, which a rename would leave paired with another file."""
    import sqlite3

    try:
        _sqlite_backup(str(source), destination, timeout=60)
    except sqlite3.Error as exc:
        raise OSError(errno.EIO, f"SQLite: {exc}", str(destination)) from None
    _remove([source])


def _sqlite_backup(source: str, destination: Path, *, uri: bool = False, timeout: float = 5.0) -> None:
    """Copy the SQLite database ``source`` (a path, or a ``file:`` URI when ``uri``) into
    ``destination`` with SQLite's backup API, waiting up to ``timeout`` seconds for another
    program's lock on ``destination``; both connections are closed whatever happens (an open
    one would keep the file busy on Windows and hold its journal). Raises ``sqlite3.Error``."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(source, uri=uri)) as src:
        with contextlib.closing(sqlite3.connect(destination, timeout=timeout)) as dst:
            src.backup(dst)


def _disk_full(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        text = str(exc)
        if "No space left on device" in text or "Free disk space available" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _pause(point: str) -> None:
    seconds = environment.test_pause(point)
    if seconds:
        time.sleep(seconds)
