"""Sphinx configuration of the CWSC toolkit's documentation (``make docs``)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cwsc import __version__  # noqa: E402

project = "CWSC toolkit"
author = "CWSC toolkit developers"
copyright = "2026, CWSC toolkit developers"  # noqa: A001
version = release = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = f"CWSC toolkit {version}"
autodoc_member_order = "bysource"
autodoc_typehints = "none"
# The API pages document what the docstrings say; a docstring's own formatting slips are not
# errors of the site (warnings in the site's pages are: make docs runs with -W).
suppress_warnings = ["myst.xref_missing"]
