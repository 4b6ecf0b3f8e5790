"""The package as a user installs it: importable from any folder, a quiet library, a console
command, one version, and a wheel that installs into a clean environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cwsc
from cwsc import errors

ROOT = Path(__file__).resolve().parents[2]


def _clean_env():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


LIBRARY_CALL = textwrap.dedent(
    """
    import numpy as np
    from cwsc.hydro.calibration.config import CalibrationConfig
    from cwsc.hydro.calibration.driver import calibrate
    from cwsc.hydro.sceua import SceuaSettings
    from cwsc.synthetic.forcing import random_params, synthetic_forcing, synthetic_runoff

    if __name__ == "__main__":
        p, e = synthetic_forcing(16, 72, seed=3)
        q = synthetic_runoff("SWBM", p, e, random_params("SWBM", 16, seed=3), noise=0.05, seed=3)
        config = CalibrationConfig(models=("SWBM",), sceua=SceuaSettings(max_evaluations=200))
        result = calibrate(p, e, q, config, workers=1)
        assert result.cwsc.shape == (16,) and np.isfinite(result.cwsc).all()
    """
)


def test_calibrating_16_cells_through_the_library_prints_nothing(tmp_path):
    """From another folder (the installed package), with logging not configured: no protocol
    line, no stray text on stdout or stderr."""
    script = tmp_path / "notebook_cell.py"
    script.write_text(LIBRARY_CALL)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""


def test_with_logging_configured_the_library_says_what_it_does(tmp_path):
    script = tmp_path / "logged.py"
    script.write_text("import logging\nlogging.basicConfig(level=logging.INFO)\n" + LIBRARY_CALL)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # logging writes to stderr; never a JSON event
    assert '{"event"' not in proc.stderr


def test_the_console_command_and_the_module_answer_from_any_folder(tmp_path):
    cwsc_command = Path(sys.executable).with_name("cwsc")
    for cmd in ([str(cwsc_command)], [sys.executable, "-m", "cwsc"]):
        done = subprocess.run(
            cmd + ["--version"], cwd=tmp_path, capture_output=True, text=True, env=_clean_env()
        )
        assert done.returncode == 0 and done.stdout.strip() == f"cwsc {cwsc.__version__}"
        done = subprocess.run(
            cmd + ["calibrate", "--help"], cwd=tmp_path, capture_output=True, text=True, env=_clean_env()
        )
        assert done.returncode == 0 and "--kge-margin" in done.stdout


def test_every_option_of_every_command_has_a_help_line():
    from cwsc.cli import COMMANDS, command_options

    missing = [f"{c} {flag}" for c in COMMANDS for flag, o in command_options(c).items() if not o["help"]]
    assert missing == []


def test_one_version_the_plugin_metadata_agrees_with():
    metadata = (ROOT / "metadata.txt").read_text(encoding="utf-8")
    assert re.search(r"^version=(.+)$", metadata, re.M).group(1).strip() == cwsc.__version__
    from importlib.metadata import version

    assert version("cwsc") == cwsc.__version__


def test_errors_are_builtin_kinds_too():
    assert issubclass(errors.OutputRefused, OSError) and issubclass(errors.ClusterError, ConnectionError)
    for kind in (
        errors.InputFileError,
        errors.GridMismatch,
        errors.PeriodError,
        errors.UnitsError,
        errors.ParameterError,
    ):
        assert issubclass(kind, errors.BadInput) and issubclass(kind, ValueError)
    assert not issubclass(errors.Cancelled, Exception)


@pytest.mark.slow
@pytest.mark.slow
def test_a_wheel_installs_into_a_clean_environment(tmp_path):
    """``pip wheel .``, a new venv that has the wheel's dependencies from this one (no
    download), and ``cwsc --help`` / ``cwsc calibrate --help`` from /tmp."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(wheels.glob("cwsc-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies as they are here (a .pth file), so the test needs no registry.
    target = next((venv / "lib").glob("python*/site-packages"))
    (target / "host.pth").write_text(site + "\n")
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for args in (["--help"], ["calibrate", "--help"]):
        done = subprocess.run(
            [str(venv / "bin" / "cwsc"), *args],
            cwd="/tmp",
            capture_output=True,
            text=True,
            env=_clean_env(),
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "calibrate" in done.stdout
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import cwsc; print(cwsc.__file__)"],
        cwd="/tmp",
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    assert str(target) in located.stdout


@pytest.mark.slow
def test_the_wheel_holds_only_the_package(tmp_path):
    """``pip wheel .`` ships ``cwsc`` and its metadata; not the QGIS plugin (``cwsc_qgis``),
    the tests or the scripts."""
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob(f"cwsc-{cwsc.__version__}-py3-none-any.whl"))
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"cwsc", f"cwsc-{cwsc.__version__}.dist-info"}
    assert "cwsc/hydro/engines/cpu_kernels.c" in zipfile.ZipFile(wheel).namelist()


def test_torch_is_a_range_in_the_package_and_exact_in_the_locks():
    """A user's own torch (CPU or CUDA build, any 2.x from 2.4) satisfies the package; the lock
    files pin the version CI and the plugin's set-up install, and this environment runs it."""
    from importlib.metadata import version

    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    torch = next(Requirement(r) for r in project["dependencies"] if Requirement(r).name == "torch")
    assert not any(s.operator in ("==", "===") for s in torch.specifier), torch
    for lock in ("lock.txt", "lock-test.txt"):
        pinned = re.search(r"^torch==(\S+)$", (ROOT / "requirements" / lock).read_text(), re.M).group(1)
        assert torch.specifier.contains(pinned), (lock, pinned, torch)
    assert version("torch").split("+")[0] == pinned
    assert {"cluster", "test", "docs"} <= set(project["optional-dependencies"])
    for name in ("tqdm",):
        assert any(Requirement(r).name == name for r in project["dependencies"])
        assert re.search(rf"^{name}==\S+$", (ROOT / "requirements" / "lock.txt").read_text(), re.M)
