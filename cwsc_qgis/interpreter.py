"""Finding and checking the backend's Python interpreter.

The backend interpreter is found in this order:

1. the provider setting (Processing > Options > Providers > CWSC > Backend Python
   interpreter), a python executable or a virtual environment folder;
2. the environment variable ``CWSC_BACKEND_PYTHON``;
3. the path recorded by ``scripts/deploy.sh`` in ``cwsc_qgis/backend_python.txt``;
4. ``.venv`` made by ``make setup`` beside the ``backend`` package (the repository root
   when the plugin runs from a checkout, the plugin folder when installed from the zip).

An explicit choice (1 or 2) that does not work is reported, never silently skipped.
"""

import json
import os
import subprocess
import sys
import threading

from qgis.core import QgsProcessingException

from . import settings

REQUIRED_MODULES = ("torch", "rasterio", "numpy")

SETUP_HINT = (
    "Set up the backend from QGIS: run CWSC > Tools > Set up the backend (cwsc:setup; it builds "
    "an environment with torch, rasterio and numpy and records it). To use an environment of "
    "your own instead, set Processing > Options > Providers > {group} > Backend Python "
    "interpreter, or the environment variable CWSC_BACKEND_PYTHON, to its python."
).format(group=settings.PROVIDER_GROUP)

_CHECK_SCRIPT = (
    "import importlib.util as u, json, sys; "
    "print(json.dumps({'python': sys.version.split()[0], 'executable': sys.executable, "
    "'missing': [m for m in %r if u.find_spec(m) is None]}))" % (REQUIRED_MODULES,)
)
_checked = {}  # (realpath, mtime) -> check result of a working interpreter
_checked_lock = threading.Lock()


def venv_python(folder):
    if sys.platform == "win32":
        return os.path.join(folder, "Scripts", "python.exe")
    return os.path.join(folder, "bin", "python")


def _normalise(path):
    path = os.path.expanduser(path.strip().strip('"'))
    if os.path.isdir(path):
        return venv_python(path)
    return path


def _recorded_python():
    try:
        with open(settings.RECORDED_PYTHON_FILE, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def interpreter_candidates():
    """(path, where it came from, explicit) in lookup order."""
    found = []
    value = settings.setting_backend_python()
    if value:
        found.append((_normalise(value), "the provider setting 'Backend Python interpreter'", True))
    value = os.environ.get(settings.ENV_BACKEND_PYTHON, "").strip()
    if value:
        found.append((_normalise(value), "the environment variable CWSC_BACKEND_PYTHON", True))
    value = _recorded_python()
    if value:
        found.append(
            (_normalise(value), "the path recorded at deploy time in " + settings.RECORDED_PYTHON_FILE, False)
        )
    root = settings.backend_root()
    for folder in filter(None, [root, settings.PLUGIN_DIR]):
        path = venv_python(os.path.join(folder, ".venv"))
        if all(path != c[0] for c in found):
            found.append((path, "the project's virtual environment (make setup)", False))
    return found


def find_backend_python():
    """The interpreter to run, and where it came from; a clear exception when there is none."""
    tried = []
    for path, source, explicit in interpreter_candidates():
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path, source
        if explicit:
            raise QgsProcessingException(
                "CWSC backend interpreter '{}' (from {}) does not exist or is not executable. {}".format(
                    path, source, SETUP_HINT
                )
            )
        tried.append(path)
    raise QgsProcessingException(
        "No CWSC backend interpreter found (tried: {}). {}".format(", ".join(tried) or "nothing", SETUP_HINT)
    )


def clean_env(root):
    """The child's environment: no PYTHONHOME/PYTHONPATH or GDAL/PROJ data paths from QGIS, and
    ``CWSC_JSON=1``: the backend writes its events as JSON lines, the protocol the runner reads
    (a person at a terminal gets a progress bar and a summary instead)."""
    env = dict(os.environ)
    for name in (
        "PYTHONHOME",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONEXECUTABLE",
        "GDAL_DATA",
        "PROJ_LIB",
        "PROJ_DATA",
        "GDAL_DRIVER_PATH",
    ):
        env.pop(name, None)
    if root:
        env["PYTHONPATH"] = root
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUTF8"] = "1"
    env["CWSC_JSON"] = "1"
    return env


def popen_kwargs():
    """Popen options that start the backend in its own process group (no console on Windows)."""
    if sys.platform == "win32":
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)
        flags |= getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x00000200)
        return {"creationflags": flags}
    return {"start_new_session": True}


def check_backend(python, source="", root=None):
    """Quick check (cached per interpreter) that ``python`` has the backend's key packages."""
    # not realpath: a venv's python is a symlink to the system one, with other packages
    path = os.path.abspath(python)
    try:
        key = (path, os.path.getmtime(path))
    except OSError:
        key = (path, None)
    with _checked_lock:
        if key in _checked:
            return _checked[key]
    try:
        done = subprocess.run(
            [python, "-c", _CHECK_SCRIPT],
            env=clean_env(root),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=60,
            **({} if sys.platform != "win32" else popen_kwargs()),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise QgsProcessingException(
            "CWSC backend interpreter '{}' (from {}) cannot be started: {}. {}".format(
                python, source or "settings", exc, SETUP_HINT
            )
        ) from None
    try:
        info = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = done.stderr.decode("utf-8", "replace").strip()[-600:]
        raise QgsProcessingException(
            "CWSC backend interpreter '{}' (from {}) does not run Python: {}. {}".format(
                python, source or "settings", tail or "no output", SETUP_HINT
            )
        ) from None
    if info.get("missing"):
        raise QgsProcessingException(
            "CWSC backend interpreter '{}' (from {}) lacks {}. {}".format(
                python, source or "settings", ", ".join(info["missing"]), SETUP_HINT
            )
        )
    with _checked_lock:
        _checked[key] = info
    return info


def forget_checks():
    with _checked_lock:
        _checked.clear()
