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

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "sphinx_copybutton",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
# $...$ and $$...$$ are equations (MathJax); \$ writes a dollar sign.
myst_enable_extensions = ["dollarmath", "amsmath"]
# Furo: code blocks scroll instead of being clipped, a light and a dark scheme, search.
html_theme = "furo"
html_title = f"CWSC toolkit {version}"
# The plugin zip carries the built site and opens it from disk (file://): MathJax comes from
# its CDN when online; the pages read fine without it (the equations stay in TeX).
# The copy button leaves out prompts and the output lines of shell sessions.
copybutton_prompt_text = r"\$ |>>> |\.\.\. "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
# The API pages document what the docstrings say; a docstring's own formatting slips are not
# errors of the site (warnings in the site's pages are: make docs runs with -W).
suppress_warnings = ["myst.xref_missing"]
