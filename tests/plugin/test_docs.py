"""The words a user reads come from one source: the algorithm pages of the documentation are
generated from the plugin's own definitions (a changed label or default without a
regenerated page fails here), every help panel fits (at most 1,500 characters), and every
Help button opens a page that the plugin zip carries."""

import importlib.util
from pathlib import Path

from plugin_testing import ROOT
from qgis.core import QgsApplication

DOCS = ROOT / "docs" / "algorithms"
PLUGIN = ".local/share/QGIS/QGIS3/profiles/default/python/plugins/cwsc_qgis"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_algorithm_docs", ROOT / "scripts" / "make_algorithm_docs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _algorithms():
    provider = QgsApplication.processingRegistry().providerById("cwsc")
    return [a for a in provider.algorithms() if hasattr(a, "DETAILS")]


def test_the_algorithm_pages_say_what_the_plugin_says(provider):  # noqa: ARG001
    pages = _generator().pages()
    stale = [name for name, text in pages.items() if (DOCS / name).read_text(encoding="utf-8") != text]
    assert not stale, f"regenerate with scripts/make_algorithm_docs.py: {stale}"
    assert {f"{a.name()}.md" for a in _algorithms()} <= set(pages)


def test_every_help_panel_fits(provider):  # noqa: ARG001
    long = {a.id(): len(a.shortHelpString()) for a in _algorithms() if len(a.shortHelpString()) > 1500}
    assert long == {}
    for a in _algorithms():
        assert "README" not in a.shortHelpString() and "make deploy" not in a.shortHelpString(), a.id()


def test_every_help_button_opens_a_page_the_zip_carries(qp_env, provider):  # noqa: ARG001
    deployed = Path(qp_env["HOME"]) / PLUGIN / "docs" / "algorithms"
    for a in _algorithms():
        assert (deployed / f"{a.name()}.html").is_file(), a.id()
        url = a.helpUrl()  # in this checkout: the site make docs built
        assert url.startswith("file://") and url.endswith(f"/algorithms/{a.name()}.html"), (a.id(), url)
        assert Path(url[len("file://") :]).is_file()
