"""A work folder that lets a long run continue after a crash, a kill or a reboot.

``--work-dir DIR``: every finished shard is saved in ``DIR/<command>-<fingerprint>/`` as
``shard-<n>.npz`` (written to a temporary and renamed, so a kill never leaves half a
shard). The fingerprint covers the inputs (real path, size, modification time) and every
setting that changes a result; a rerun with the same fingerprint loads the finished shards
and calibrates the rest, which gives byte-identical outputs because a shard's result
depends only on its cells and seed. Folders of other runs (other inputs or settings) are
left alone and named in the log with what differs. On success the run's folder is removed
(and ``DIR`` when it is then empty and this run made it) unless ``--keep-work``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from cwsc.errors import BadInput, OutputRefused


def input_fingerprint(paths: Mapping[str, str | None]) -> dict[str, dict]:
    """Per input: its real path, size, modification time (ns) and a digest of its content
    (a file replaced by another of the same size and time is another input)."""
    out = {}
    for name, path in paths.items():
        if not path:
            continue
        real = os.path.realpath(path)
        st = os.stat(real)
        digest = hashlib.blake2b(digest_size=16)
        with open(real, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 23), b""):
                digest.update(block)
        out[name] = {
            "path": real,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "content": digest.hexdigest(),
        }
    return out


def check_writable(root: str | os.PathLike) -> None:
    """Refuse, before any work, a work folder that cannot be made or written."""
    path = Path(root).expanduser().absolute()
    probe_in = path
    while not probe_in.exists() and probe_in.parent != probe_in:
        probe_in = probe_in.parent
    if probe_in.exists() and not probe_in.is_dir():
        raise OutputRefused(f"WORK_DIR: {probe_in} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".cwsc-probe-", dir=probe_in)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputRefused(f"WORK_DIR: cannot write in {path} ({exc.strerror or exc})") from None


def _digest(inputs: dict, settings: dict) -> str:
    text = json.dumps({"inputs": inputs, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_differences(ours: dict, theirs: dict) -> str:
    """What differs between two runs' fingerprints, in words."""
    diffs = []
    for name in sorted(set(ours["inputs"]) | set(theirs.get("inputs", {}))):
        a, b = ours["inputs"].get(name), theirs.get("inputs", {}).get(name)
        if a is None or b is None:
            diffs.append(f"{name} {'added' if b is None else 'removed'}")
        elif a["path"] != b["path"]:
            diffs.append(f"{name} is another file")
        elif a != b:
            diffs.append(
                f"{name} changed ({'its content' if a.get('content') != b.get('content') else 'size or modification time'})"
            )
    for key in sorted(set(ours["settings"]) | set(theirs.get("settings", {}))):
        a, b = ours["settings"].get(key), theirs.get("settings", {}).get(key)
        if a != b:
            diffs.append(f"{key} {b!r} -> {a!r}")
    return ", ".join(diffs) or "another fingerprint"


class WorkFolder:
    """The saved shards of one run. ``log`` receives the messages meant for the user."""

    def __init__(
        self,
        root: str | os.PathLike,
        command: str,
        inputs: dict,
        settings: dict,
        keep: bool = False,
        log: Callable[[str], None] = print,
    ):
        self.root = Path(root).expanduser().absolute()
        self.command = command
        self.fingerprint = {"inputs": inputs, "settings": settings}
        self.digest = _digest(inputs, settings)
        self.folder = self.root / f"{command}-{self.digest}"
        self.keep = keep
        self.log = log
        self._made_root = False
        self._lock_fd: int | None = None

    def open(self) -> WorkFolder:
        """Make the folder (refused, before any work, when it cannot be written) and say what
        it holds."""
        try:
            if not self.root.exists():
                self.root.mkdir(parents=True)
                self._made_root = True
            if not self.root.is_dir():
                raise OutputRefused(f"WORK_DIR: {self.root} is not a folder")
            self.folder.mkdir(exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".probe-", dir=self.folder)
            os.close(fd)
            os.unlink(probe)
        except BadInput:
            raise
        except OSError as exc:
            raise OutputRefused(f"WORK_DIR: cannot write in {self.root} ({exc.strerror or exc})") from None
        manifest = self.folder / "run.json"
        if not manifest.exists():
            self._write(
                manifest,
                json.dumps(
                    {"command": self.command, **self.fingerprint, "made_work_dir": self._made_root},
                    indent=1,
                    default=str,
                ).encode(),
            )
        else:
            try:
                self._made_root |= bool(json.loads(manifest.read_text()).get("made_work_dir"))
            except (OSError, ValueError):
                pass
        for other in sorted(self.root.glob(f"{self.command}-*/run.json")):
            if other.parent == self.folder:
                continue
            try:
                theirs = json.loads(other.read_text())
            except (OSError, ValueError):
                continue
            shards = len(list(other.parent.glob("shard-*.npz")))
            self.log(
                f"work folder: {other.parent.name} holds {shards} finished shard"
                f"{'s' if shards != 1 else ''} of another run "
                f"({describe_differences(self.fingerprint, theirs)}); not used, left as it is"
            )
        self._lock()
        found = len(self.finished())
        if found:
            self.log(
                f"work folder: continuing from {found} finished shard"
                f"{'s' if found != 1 else ''} in {self.folder}"
            )
        return self

    def _lock(self) -> None:
        """Hold this run's folder: a second run with the same inputs and settings would save
        into it and the first to finish would remove it under the other."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no locks on this platform
            return
        path = self.folder / ".lock"
        self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(self._lock_fd)
            self._lock_fd = None
            raise OutputRefused(
                f"WORK_DIR: another run ({holder}) is calibrating the same inputs with the same settings "
                f"in {self.folder}; wait for it to finish, or give another WORK_DIR"
            ) from None
        except OSError:
            return  # a file system without locks
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"process {os.getpid()}".encode(), 0)

    def finished(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.folder.glob("shard-*.npz")}

    def _path(self, number: int) -> Path:
        return self.folder / f"shard-{number:06d}.npz"

    def load(self, number: int) -> dict[str, np.ndarray] | None:
        """The arrays saved for shard ``number``, or None (also for an unreadable file)."""
        path = self._path(number)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError) as exc:
            self.log(f"work folder: {path.name} cannot be read ({exc}); calibrated again")
            return None

    def save(self, number: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Save shard ``number``: whole or not at all. A folder removed meanwhile (by hand) is
        made again: saving is what lets a later run continue, never a reason to fail this one."""
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        try:
            self._write(self._path(number), buffer.getvalue())
        except FileNotFoundError:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write(self._path(number), buffer.getvalue())

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def finish(self) -> None:
        """After success: remove this run's folder unless asked to keep it."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self.keep:
            self.log(f"work folder kept: {self.folder}")
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._made_root:
            try:
                self.root.rmdir()
            except OSError:
                pass
