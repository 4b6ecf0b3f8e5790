"""The set-up script that `make demo` and `make test` start with."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_without_qgis_and_without_root_it_stops_at_once_with_the_command(tmp_path):
    env = dict(os.environ, CWSC_QGIS_PYTHON="/bin/false", CWSC_ASSUME_NOT_ROOT="1")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure_qgis.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "sudo apt-get install -y qgis python3-qgis qgis-providers" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
