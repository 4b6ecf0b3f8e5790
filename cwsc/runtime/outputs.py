"""A run's output files, checked before any work and committed together at the end.

Every command that writes files goes through :class:`Outputs`:

1. **Before any work** (:meth:`Outputs.__enter__`): each output is refused when it is one of
   the inputs, when two outputs are one file (after resolving symlinks, ``.`` and ``..``, and
   by device and inode), when its extension is not the format written, when its folder is
   missing or cannot be written, when an existing destination cannot be replaced, and when
   its name is too long for the temporary name; as
   soon as the grid is known, :meth:`Outputs.need` refuses a folder with less free space than
   the outputs need (estimated by the caller, with a margin). The temporary file of every output is created here, so a folder that cannot be
   written fails now, not after an hour of calibration.
2. **The work** writes each output to :meth:`Outputs.temporary` (beside its destination,
   named ``.<name>.cwsc-<pid>-<token>.part``: unique per run).
3. **Commit** (on leaving the ``with`` block without an exception): under a lock on each
   output folder (so that two runs writing the same outputs commit one after the other), a
   journal of the renames (``.cwsc-commit-<pid>-<token>.journal``, in every output folder)
   is written first; then every existing destination is moved to a backup name and every
   temporary file takes its destination's name; then the backups and the journal are
   removed. If any step fails, the outputs already placed are rolled back to the files that
   were there before. A stop (SIGTERM, SIGINT) that arrives during the commit waits for it
   (:func:`cwsc.runtime.protocol.critical`, also for the stop watchdog): the finished run
   is kept.
4. **Failure, cancel** (an exception in the block): the temporary files are removed; the
   destinations were never touched.

Temporaries, backups and journals of a run that was killed (SIGKILL, power loss) are found
by the next run into the same folder (:func:`clean_stale`): a journal says exactly how far
the commit got, so a commit cut short is rolled back (every temporary not yet placed means
the previous files come back) or, when every file was placed, finished; temporaries are
removed; a backup without a journal is put back when its destination is missing and kept
otherwise. Nothing is deleted on a guess, and the log says what was done.
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
    r"(?P<kind>part|backup)(?P<sidecar>\.aux\.xml|\.stage)?$"
)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve(strict=False) == b.resolve(strict=False):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _megabytes(n: float) -> str:
    return f"{n / 2**20:,.0f}" if n >= 2**20 else f"{n / 2**20:.1f}"


def _write_journal(paths: list[Path], entries: list[tuple[Path, Path, Path, bool]]) -> None:
    """The commit's plan, durable before the first rename: (temporary, destination, backup,
    had a previous file) of every file, in every output folder."""
    text = json.dumps(
        {"pid": os.getpid(), "entries": [[str(a), str(b), str(c), bool(d)] for a, b, c, d in entries]}
    )
    for path in paths:
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


def recover_journal(journal: Path) -> list[str]:
    """Finish or undo the commit that ``journal`` describes (its run is gone): when every
    temporary was placed the new files stay and the backups go; otherwise every destination
    gets its previous file back (or goes, where there was none). Returns what was done."""
    try:
        plan = json.loads(journal.read_text(encoding="utf-8"))
        entries = [(Path(a), Path(b), Path(c), bool(d)) for a, b, c, d in plan["entries"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"could not read the commit journal '{journal.name}' of a killed run ({exc}); left in place"]
    copies = {journal} | {final.parent / journal.name for _, final, _, _ in entries}
    names = ", ".join(sorted({final.name for _, final, _, _ in entries if not final.name.endswith(SIDECARS)}))
    if any(tmp.exists() for tmp, _, _, _ in entries):
        for tmp, final, backup, had in reversed(entries):
            try:
                if not tmp.exists():  # placed: the destination holds the new file
                    if had and backup.exists():
                        os.replace(backup, final)
                    elif not had and final.exists():
                        final.unlink()
                elif had and backup.exists() and not final.exists():
                    os.replace(backup, final)
            except OSError as exc:
                return [
                    f"could not roll back '{final}' after a killed run ({exc.strerror or exc}); "
                    f"its previous file is '{backup}'"
                ]
        _remove([tmp for tmp, _, _, _ in entries])
        line = f"a run was killed while putting its outputs in place: rolled back, {names} as before that run"
    else:
        _remove([backup for _, _, backup, had in entries if had])
        line = f"a run was killed at the end of putting its outputs in place: finished it ({names} are that run's)"
    _remove(sorted(copies))
    return [line]


def clean_stale(folder: Path) -> list[str]:
    """Recover the commits of killed runs in ``folder`` from their journals, remove their
    temporaries, put back a backup whose destination is missing and keep any other backup;
    returns what was done, one line each."""
    done: list[str] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return done
    for name in names:
        m = _JOURNAL.match(name)
        if m and not _alive(int(m["pid"])) and (folder / name).exists():
            if m["part"]:  # still being written when its run was killed: no rename had begun
                _remove([folder / name])
            else:
                done += recover_journal(folder / name)
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return done
    for name in names:
        m = _STALE.match(name)
        if not m or _alive(int(m["pid"])):
            continue
        path = folder / name
        final = folder / (m["name"] + (m["sidecar"] or ""))
        try:
            age = max(0.0, time.time() - path.stat().st_mtime)
            if m["kind"] == "backup" and not final.exists():
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
                done.append(
                    f"removed '{name}', left {age / 60:.0f} min ago by a run that was killed (process gone)"
                )
        except OSError as exc:
            done.append(f"could not remove '{name}' left by a killed run: {exc.strerror or exc}")
    return done


@contextlib.contextmanager
def folder_locks(folders) -> Iterator[None]:
    """An exclusive lock on each folder (in one order, so two runs never wait on each other),
    held while a run commits into it; a file system without locks commits unlocked."""
    fds = []
    try:
        for folder in sorted({str(f) for f in folders}):
            try:
                fd = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            fds.append(fd)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                pass
        yield
    finally:
        for fd in fds:
            try:
                os.close(fd)  # closing the last descriptor releases the lock
            except OSError:
                pass


@dataclass
class _Output:
    label: str
    final: Path
    kind: str
    temporary: Path = field(init=False)
    backup: Path = field(init=False)


class Outputs:
    """The outputs of one run (see the module docstring).

    outputs: label (the Processing parameter, e.g. ``OUTPUT_CWSC``) -> path; None or "" for
    an optional output not asked for. kinds: label -> a key of :data:`EXTENSIONS` (default
    ``"raster"``). inputs: label -> path (or paths) the run reads, which no output may be.
    Once the sizes are known, :meth:`need` checks the free space.
    """

    def __init__(
        self,
        outputs: Mapping[str, str | os.PathLike | None],
        kinds: Mapping[str, str] | None = None,
        inputs: Mapping[str, str | os.PathLike | Sequence | None] | None = None,
    ) -> None:
        kinds = kinds or {}
        self._items = [
            _Output(label, Path(os.path.abspath(os.fspath(path))), kinds.get(label, "raster"))
            for label, path in outputs.items()
            if path not in (None, "")
        ]
        self._inputs = []
        for label, value in (inputs or {}).items():
            values = value if isinstance(value, (list, tuple)) else [value]
            self._inputs += [(label, Path(os.fspath(v))) for v in values if v not in (None, "")]
        self._token = secrets.token_hex(4)
        self.committed = False
        self._after_commit: list = []

    # -- checks -------------------------------------------------------------------------
    def paths(self) -> dict[str, Path]:
        return {o.label: o.final for o in self._items}

    def _check(self) -> None:
        for o in self._items:
            allowed = EXTENSIONS[o.kind]
            if not o.final.name.lower().endswith(allowed):
                raise OutputRefused(
                    f"{o.label}: '{o.final}' must end in {' or '.join(allowed)}: the "
                    f"output is written as {FORMAT_NAMES[o.kind]}"
                )
            if o.final.is_dir():
                raise OutputRefused(f"{o.label}: '{o.final}' is a folder, not a file name")
            for label, path in self._inputs:
                if _same_file(o.final, path):
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
        for o in self._items:
            folder = o.final.parent
            if not folder.is_dir():
                raise OutputRefused(f"{o.label}: the folder '{folder}' does not exist")

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
        for folder in sorted({o.final.parent for o in self._items}):
            for line in clean_stale(folder):
                protocol.log(line)
        # Before the first temporary exists: a stop the watchdog has to end removes them too.
        self._forget_on_stop = protocol.on_stop(self._remove_temporaries)
        try:
            self._create_temporaries()
            self._check_replaceable()
        except BaseException:
            self._remove_temporaries()
            self._forget_on_stop()
            raise
        return self

    def temporary(self, label: str) -> Path:
        """Where the run writes ``label`` (None when that optional output was not asked for)."""
        for o in self._items:
            if o.label == label:
                return o.temporary
        return None  # type: ignore[return-value]

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
            self._remove_temporaries()
            if full:
                folders = ", ".join(sorted({f"'{o.final.parent}'" for o in self._items}))
                raise OutputRefused(
                    f"the disk is full: no space left in {folders} while writing the "
                    "outputs; nothing was written or replaced"
                ) from None
            return False
        self.commit()
        return False

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

    def commit(self) -> None:
        """Put every output in place, or none (see the module docstring)."""
        folders = sorted({o.final.parent for o in self._items})
        with protocol.critical() as stops, folder_locks(folders):
            entries = []
            for o in self._items:
                for tmp, final, backup in self._parts(o):
                    entries.append((tmp, final, backup, final.exists() or final.is_symlink()))
            token = secrets.token_hex(4)
            journals = [f / f".cwsc-commit-{os.getpid()}-{token}.journal" for f in folders]
            placed: list[tuple[Path, Path, bool]] = []  # (final, backup, had a previous file)
            try:
                _write_journal(journals, entries)
                for k, (tmp, final, backup, had) in enumerate(entries):
                    if k:
                        _pause("commit")
                    if had:
                        os.replace(final, backup)
                    try:
                        os.replace(tmp, final)
                    except BaseException:
                        if had:
                            os.replace(backup, final)
                        raise
                    placed.append((final, backup, had))
                _pause("committed")
            except BaseException as exc:
                for final, backup, had in reversed(placed):
                    try:
                        if had:
                            os.replace(backup, final)
                        else:
                            final.unlink()
                    except OSError:
                        pass
                self._remove_temporaries()
                _remove(journals)
                if isinstance(exc, OSError):
                    raise OutputRefused(
                        f"the outputs could not be put in place ({exc.strerror or exc}: "
                        f"'{exc.filename}'); every previous file was kept"
                    ) from None
                raise
            _remove([backup for _, backup, had in placed if had])
            _remove(journals)
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
            ]:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError:
                    pass


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
