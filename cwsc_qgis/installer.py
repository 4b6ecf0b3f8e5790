"""Building the backend's Python environment from inside QGIS (``cwsc:setup``).

A virtual environment of its own (never QGIS's Python: the backend needs numpy 2 and torch),
made with a Python >= 3.10 found on the machine, filled by pip from the requirements file
shipped in the plugin, with the CPU or the CUDA build of torch, then checked by running the
backend's ``info`` command. pip's output streams to the log; Cancel stops pip and removes
a folder this run made.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

from qgis.core import QgsProcessingException
from qgis.PyQt.QtCore import QObject, pyqtSignal

from . import interpreter, settings

MIN_PYTHON = (3, 10)
#: Where pip finds the torch build asked for, by (platform, build), beside PyPI (where the
#: Linux wheel is the CUDA build and the Windows and macOS wheels are CPU builds).
TORCH_INDEXES = {
    ("linux", "cpu"): "https://download.pytorch.org/whl/cpu",
    ("win32", "cuda"): "https://download.pytorch.org/whl/cu128",
}
_VERSION_SCRIPT = "import sys, venv, ensurepip; print('%d.%d.%d' % sys.version_info[:3])"


class SetupCancelled(Exception):
    """The user cancelled the set-up."""


class _Notices(QObject):
    """``backend_ready(python)``: a set-up finished and recorded ``python``. Emitted from the
    Processing task's thread; a receiver connected in the main thread runs there (queued), so
    the plugin can take down its "not set up" message without a restart."""

    backend_ready = pyqtSignal(str)


NOTICES = _Notices()


def default_folder():
    """``<QGIS profile>/cwsc/backend``: the profile's data folder, where QGIS keeps plugins."""
    from qgis.core import QgsApplication

    return os.path.join(QgsApplication.qgisSettingsDirPath(), "cwsc", "backend")


def requirements_file():
    """The exact versions of the backend's packages (``requirements/lock.txt``), shipped in the
    plugin zip (or in a repository checkout)."""
    for candidate in (
        os.path.join(settings.PLUGIN_DIR, "requirements", "lock.txt"),
        os.path.join(os.path.dirname(settings.PLUGIN_DIR), "requirements", "lock.txt"),
    ):
        if os.path.isfile(candidate):
            return candidate
    raise QgsProcessingException("the plugin has no requirements/lock.txt: reinstall the plugin from its zip")


def package_folder():
    """The folder that holds the ``cwsc`` package and its ``pyproject.toml``: ``lib/`` in the
    plugin zip, the repository root in a checkout; None when neither has it."""
    for candidate in (settings.backend_root(), os.path.dirname(settings.PLUGIN_DIR)):
        if candidate and os.path.isfile(os.path.join(candidate, "pyproject.toml")):
            return candidate
    return None


def python_version(path):
    """``(major, minor, micro)`` of the Python at ``path`` when it can make a venv, else None."""
    try:
        done = subprocess.run(
            [path, "-c", _VERSION_SCRIPT],
            capture_output=True,
            text=True,
            timeout=60,
            env=interpreter.clean_env(None),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        return tuple(int(v) for v in done.stdout.strip().splitlines()[-1].split("."))
    except ValueError:
        return None


def python_candidates():
    """Pythons that may make the environment, most specific first."""
    names = ["python3.13", "python3.12", "python3.11", "python3.10", "python3", "python"]
    found = []
    for name in names:
        path = shutil.which(name)
        if path and path not in found:
            found.append(path)
    # QGIS's own Python (its standard library has venv) where QGIS ships one (Windows, macOS).
    for base in {sys.base_prefix, sys.prefix}:
        for rel in ("python.exe", os.path.join("bin", "python3")):
            path = os.path.join(base, rel)
            if os.path.isfile(path) and path not in found:
                found.append(path)
    return found


def find_python(explicit=None):
    """(path, version) of the Python to build with: ``explicit``, else the first candidate
    >= 3.10 able to make a venv; a clear error naming what was tried otherwise."""
    if explicit:
        version = python_version(explicit)
        if version is None:
            raise QgsProcessingException(
                "PYTHON: '{}' does not run, or lacks the venv module".format(explicit)
            )
        if version[:2] < MIN_PYTHON:
            raise QgsProcessingException(
                "PYTHON: '{}' is Python {}; the backend needs {}.{} or newer".format(
                    explicit, ".".join(map(str, version)), *MIN_PYTHON
                )
            )
        return explicit, version
    tried = []
    for path in python_candidates():
        version = python_version(path)
        tried.append("{} ({})".format(path, ".".join(map(str, version)) if version else "no venv"))
        if version is not None and version[:2] >= MIN_PYTHON:
            return path, version
    raise QgsProcessingException(
        "no Python {}.{} or newer able to make a virtual environment was found (tried: {}). "
        "Install one (python.org on Windows and macOS; 'apt install python3-venv' on Debian and "
        "Ubuntu) and run this again, or give it as PYTHON".format(
            *MIN_PYTHON, "; ".join(tried) or "nothing on PATH"
        )
    )


def gpu_present():
    """Whether ``nvidia-smi`` reports an NVIDIA GPU."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        done = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "GPU" in done.stdout


def torch_build(choice):
    """``cpu`` or ``cuda`` for the TORCH choice ``auto`` / ``cpu`` / ``cuda``."""
    if choice == "auto":
        return "cuda" if gpu_present() else "cpu"
    return choice


def index_answers(url, timeout=5):
    """Whether the package index at ``url`` answers at all within ``timeout`` seconds."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if only to refuse HEAD
    except (OSError, ValueError):
        return False


def pip_index_options(build, feedback=None):
    """pip options that make ``torch`` resolve to ``build`` on this platform. An index that
    does not answer is left out (pip would retry it for every package, minutes offline)."""
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    url = TORCH_INDEXES.get((platform, build))
    if not url:
        return []
    if not index_answers(url):
        if feedback is not None:
            feedback.pushWarning(
                "the PyTorch index {} does not answer; torch comes from the "
                "indexes pip is configured with".format(url)
            )
        return []
    return ["--extra-index-url", url]


#: Seconds without a line from pip after which the log says the step is still running (a
#: large download such as torch's prints nothing for minutes with the progress bar off).
QUIET_S = 10.0


def stream(cmd, feedback, env=None, on_line=None, poll=0.2, quiet_s=QUIET_S):
    """Run ``cmd``, every output line to the log (and ``on_line``); a line at least every
    ``quiet_s`` while it runs; Cancel kills it and raises :class:`SetupCancelled`. Returns the
    exit code."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        **interpreter.popen_kwargs(),
    )
    lines = queue.Queue()

    def pump():
        for raw in iter(proc.stdout.readline, b""):
            lines.put(raw.decode("utf-8", "replace").rstrip())
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    finished = False
    started = last = said = time.monotonic()
    latest = ""
    while not finished:
        if feedback is not None and feedback.isCanceled():
            _stop(proc)
            reader.join(timeout=5)
            proc.stdout.close()
            raise SetupCancelled()
        try:
            line = lines.get(timeout=poll)
        except queue.Empty:
            now = time.monotonic()
            if feedback is not None and now - last >= quiet_s:
                # pip's last line once (what it is busy with, e.g. a download), then only how
                # long it has been quiet: repeating a stale line reads as if it were new
                if latest:
                    detail = ": " + latest[:120]
                else:
                    detail = "; no new line for {:.0f} s".format(now - said)
                feedback.pushInfo("still working ({:.0f} s so far){}".format(now - started, detail))
                last, latest = now, ""
            continue
        if line is None:
            finished = True
            continue
        if line.strip():
            last = said = time.monotonic()
            latest = line.strip()
            if feedback is not None:
                feedback.pushConsoleInfo(line)
            if on_line is not None:
                on_line(line)
    reader.join(timeout=5)
    proc.stdout.close()
    return proc.wait()


def _stop(proc):
    import signal

    try:
        if sys.platform == "win32":
            proc.terminate()
        else:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()


def check_folder(folder):
    """The folder must be new, empty, or an earlier backend environment (updated in place)."""
    if not os.path.exists(folder):
        return False
    if not os.path.isdir(folder):
        raise QgsProcessingException("FOLDER: '{}' is a file, not a folder".format(folder))
    if os.listdir(folder) and not os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
        raise QgsProcessingException(
            "FOLDER: '{}' is not empty and is not a Python environment: choose a new or empty "
            "folder (nothing in it was touched)".format(folder)
        )
    return True


def record(python):
    """Make ``python`` the provider's backend interpreter."""
    from qgis.core import QgsSettings

    QgsSettings().setValue("Processing/Configuration/" + settings.BACKEND_PYTHON, python)
    cfg = settings._processing_config()
    if cfg is not None and settings.BACKEND_PYTHON in cfg.settings:
        cfg.setSettingValue(settings.BACKEND_PYTHON, python)
    interpreter.forget_checks()
    NOTICES.backend_ready.emit(python)


def backend_info(python, feedback=None):  # noqa: ARG001 - callers pass their feedback
    """The ``info`` command's metrics from ``python``, or a clear error."""
    root = settings.backend_root()
    done = subprocess.run(
        [python, "-m", "cwsc", "--json", "info"],
        capture_output=True,
        text=True,
        timeout=300,
        env=interpreter.clean_env(root),
        stdin=subprocess.DEVNULL,
    )
    result = None
    for line in done.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "result":
            result = event
    if done.returncode != 0 or result is None:
        raise QgsProcessingException(
            "the new environment does not run the backend (exit {}): {}".format(
                done.returncode, (done.stderr or done.stdout)[-800:]
            )
        )
    return result.get("metrics") or {}


def build(folder, python, build_kind, feedback, pip_options=()):
    """Make (or update) the environment in ``folder``; returns its interpreter. Progress:
    10 % venv, 10-90 % pip (per package collected), 95 % the backend's ``info``."""
    existed = check_folder(folder)
    t0 = time.monotonic()
    try:
        if not existed or not os.path.isfile(interpreter.venv_python(folder)):
            feedback.setProgressText("making the environment")
            feedback.pushInfo("making a virtual environment in {} with {}".format(folder, python))
            rc = stream([python, "-m", "venv", folder], feedback, env=interpreter.clean_env(None))
            if rc != 0:
                raise QgsProcessingException(
                    "'{} -m venv {}' failed (exit {}); see the log".format(python, folder, rc)
                )
        feedback.setProgress(10)
        target = interpreter.venv_python(folder)
        requirements = requirements_file()
        with open(requirements, encoding="utf-8") as fh:
            wanted = [ln for ln in fh if ln.split("#")[0].strip()]
        seen = [0]

        def progress(line):
            if line.startswith("Collecting ") or line.startswith("Requirement already satisfied"):
                seen[0] += 1
                # The lock names every package once.
                feedback.setProgress(10 + 80 * min(1.0, seen[0] / float(len(wanted))))

        cmd = [
            target,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
            "-r",
            requirements,
        ]
        cmd += pip_index_options(build_kind, feedback) + list(pip_options)
        feedback.setProgressText("installing the backend's packages (torch: {} build)".format(build_kind))
        feedback.pushInfo("$ " + " ".join(cmd))
        rc = stream(cmd, feedback, env=interpreter.clean_env(None), on_line=progress)
        if rc != 0:
            raise QgsProcessingException(
                "pip could not install the backend's packages (exit {}); the log above says why".format(rc)
            )
        source = package_folder()
        if source:
            # The package itself, so that `cwsc` and Dask workers started from this
            # environment import it without PYTHONPATH (its dependencies are in place).
            feedback.setProgressText("installing the cwsc package")
            cmd = [
                target,
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "--no-deps",
                source,
            ]
            feedback.pushInfo("$ " + " ".join(cmd))
            rc = stream(cmd, feedback, env=interpreter.clean_env(None))
            if rc != 0:
                raise QgsProcessingException(
                    "pip could not install the cwsc package (exit {}); the log above says why".format(rc)
                )
        feedback.setProgress(90)
        feedback.setProgressText("checking the backend")
        return target, time.monotonic() - t0
    except (SetupCancelled, QgsProcessingException):
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        raise
