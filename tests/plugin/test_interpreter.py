"""Finding the backend interpreter (the lookup order, explicit choices that fail) and the
cached check of its packages."""

import os
import sys
import time

import pytest
from qgis.core import QgsProcessingException

from cwsc_qgis import interpreter, settings


def test_interpreter_lookup_order(provider, monkeypatch, tmp_path):  # noqa: ARG001
    from processing.core.ProcessingConfig import ProcessingConfig

    recorded = tmp_path / "backend_python.txt"
    recorded.write_text(sys.executable + "\n", encoding="utf-8")
    monkeypatch.setattr(settings, "RECORDED_PYTHON_FILE", str(recorded))
    monkeypatch.delenv("CWSC_BACKEND_PYTHON", raising=False)
    ProcessingConfig.setSettingValue(settings.BACKEND_PYTHON, "")
    # recorded path before the project's .venv
    python, source = interpreter.find_backend_python()
    assert python == sys.executable and "recorded" in source
    # the environment variable before the recorded path
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    os.symlink(sys.executable, venv / "bin" / "python")
    monkeypatch.setenv("CWSC_BACKEND_PYTHON", str(venv))  # a venv folder is accepted too
    python, source = interpreter.find_backend_python()
    assert python == str(venv / "bin" / "python") and "CWSC_BACKEND_PYTHON" in source
    # the provider setting before everything
    ProcessingConfig.setSettingValue(settings.BACKEND_PYTHON, str(venv / "bin" / "python"))
    monkeypatch.setenv("CWSC_BACKEND_PYTHON", "/nonexistent/python")
    try:
        python, source = interpreter.find_backend_python()
        assert python == str(venv / "bin" / "python") and "provider setting" in source
    finally:
        ProcessingConfig.setSettingValue(settings.BACKEND_PYTHON, "")
    # an explicit choice that does not exist is an error, not a silent fallback
    with pytest.raises(QgsProcessingException, match="does not exist.*Set up the backend"):
        interpreter.find_backend_python()
    # nothing anywhere: one message that says how to set it up
    monkeypatch.delenv("CWSC_BACKEND_PYTHON")
    monkeypatch.setattr(settings, "RECORDED_PYTHON_FILE", str(tmp_path / "none.txt"))
    monkeypatch.setattr(settings, "backend_root", lambda: str(tmp_path))
    monkeypatch.setattr(settings, "PLUGIN_DIR", str(tmp_path))
    with pytest.raises(QgsProcessingException, match="No CWSC backend interpreter found.*Set up the backend"):
        interpreter.find_backend_python()


@pytest.mark.serial
def test_check_is_cached_per_interpreter(monkeypatch):
    interpreter.forget_checks()
    python = os.environ["CWSC_BACKEND_PYTHON"]
    t0 = time.monotonic()
    interpreter.check_backend(python)
    first = time.monotonic() - t0
    t0 = time.monotonic()
    interpreter.check_backend(python)
    second = time.monotonic() - t0
    assert second < 0.01 < first
    with pytest.raises(QgsProcessingException, match="lacks torch"):
        interpreter.check_backend("/usr/bin/python3")
