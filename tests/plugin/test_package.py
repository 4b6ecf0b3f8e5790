"""The plugin zip as the official QGIS plugin repository's validator would check it, offline:
one top folder, metadata fields, no placeholder URLs, experimental while 0.x, a GPL-compatible
LICENSE, and no compiled files or caches."""

import configparser
import os
import re
import shutil
import subprocess
import zipfile

import pytest
from plugin_testing import ROOT

#: Fields the repository's validator asks for; the ones the project cannot honestly give yet
#: (a public repository, tracker and contact address) are left out, never faked.
REQUIRED = ("name", "qgisMinimumVersion", "description", "about", "version", "author")
NOT_YET = ("email", "repository", "tracker", "homepage")


def _zip(tmp_path):
    env = dict(os.environ, CWSC_DIST_DIR=str(tmp_path))
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "package.sh")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return zipfile.ZipFile(tmp_path / "cwsc_qgis.zip")


def test_the_zip_passes_the_repository_checks(tmp_path):
    archive = _zip(tmp_path)
    names = archive.namelist()
    assert {n.split("/")[0] for n in names} == {"cwsc_qgis"}
    banned = re.compile(
        r"(__pycache__|\.pyc$|\.pyo$|\.so$|\.pyd$|\.dll$|\.dylib$|(^|/)\.git(/|$)"
        r"|__MACOSX|\.DS_Store|Thumbs\.db)"
    )
    assert not [n for n in names if banned.search(n)]
    meta = configparser.ConfigParser()
    meta.read_string(archive.read("cwsc_qgis/metadata.txt").decode("utf-8"))
    general = meta["general"]
    for field in REQUIRED:
        assert general.get(field, "").strip(), f"metadata.txt lacks {field}"
    assert re.fullmatch(r"\d+\.\d+\.\d+", general["version"])
    if general["version"].startswith("0."):
        assert general.getboolean("experimental") is True
    assert general["hasProcessingProvider"] == "yes"
    assert "cwsc_qgis/" + general["icon"] in names
    # The Plugin Manager's page lists every tool, the gauged catchments and demo data too.
    for tool in ("Evaluate CWSC with gauges", "Create demo data"):
        assert tool in general["about"], tool
    assert general["changelog"].startswith(general["version"]) and "gauged catchments" in general["changelog"]
    text = archive.read("cwsc_qgis/metadata.txt").decode("utf-8")
    assert not re.search(r"example\.(org|com|net)|noreply\.example|TODO|FIXME", text)
    for field in NOT_YET:
        value = general.get(field)
        assert value is None or value.startswith(("https://", "mailto:")) or "@" in value
    license_text = archive.read("cwsc_qgis/LICENSE").decode("utf-8")
    assert "GNU GENERAL PUBLIC LICENSE" in license_text and "Version 2" in license_text
    assert "any later version" in license_text


def test_the_plugin_manager_reads_the_metadata_without_a_homepage_tracker_or_repository(
    tmp_path,
    monkeypatch,
    qgis_app,  # noqa: ARG001
):
    """No public home exists yet (docs/development.md, Releasing): QGIS's Plugin Manager reads
    metadata.txt without error and shows no links rather than invented ones; its about and
    changelog name the gauged catchments and the demo data."""
    monkeypatch.syspath_prepend("/usr/share/qgis/python")  # QGIS's own pyplugin_installer
    installer_data = pytest.importorskip("pyplugin_installer.installer_data")
    folder = tmp_path / "cwsc_qgis"
    folder.mkdir()
    shutil.copy(ROOT / "metadata.txt", folder / "metadata.txt")
    (folder / "__init__.py").write_text("", encoding="utf-8")
    plugin = installer_data.plugins.getInstalledPlugin("cwsc_qgis", str(folder), False)
    assert plugin["error"] == "", plugin["error_details"]
    assert plugin["name"] == "CWSC toolkit"
    assert (plugin["homepage"], plugin["tracker"], plugin["code_repository"]) == ("", "", "")
    for words in ("gauged catchment", "demo data"):
        assert words in plugin["about"] and words in plugin["changelog"].lower(), words
