"""Write docs/algorithms/<name>.md, one reference page per algorithm, from the provider's own
definitions: labels, ids, types, defaults and the help texts of the plugin. Run with QGIS's
Python after changing an algorithm:

    QT_QPA_PLATFORM=offscreen python3 scripts/make_algorithm_docs.py

``tests/plugin/test_docs.py`` regenerates the pages and fails when the committed ones differ,
so the dialogs, the Toolbox help and the documentation cannot drift apart.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "algorithms"


def markdown(text: str) -> str:
    """The plugin's help HTML as Markdown."""
    text = " ".join(text.split())
    text = re.sub(r"<h3>(.*?)</h3>", r"\n\n### \1\n\n", text)
    text = re.sub(r"</?ul>", "\n", text)
    text = re.sub(r"<li>(.*?)</li>", r"\n- \1", text)
    text = re.sub(r"<p>(.*?)</p>", r"\n\n\1\n\n", text)
    text = re.sub(r"<b>(.*?)</b>", r"**\1**", text)
    text = re.sub(r"<i>(.*?)</i>", r"*\1*", text)
    text = re.sub(r"<code>(.*?)</code>", r"`\1`", text)
    text = re.sub(r"<br\s*/?>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html.unescape(text)
    text = re.sub(r"\n[ \t]+", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _type(definition) -> str:
    kind = definition.type()
    if kind == "enum":
        return (
            "one of: " + ", ".join(definition.options())
            if not definition.allowMultiple()
            else ("any of: " + ", ".join(definition.options()))
        )
    return {
        "raster": "raster layer",
        "multilayer": "raster layers",
        "number": "number",
        "file": "file",
        "folder": "folder",
        "string": "text",
        "boolean": "yes/no",
        "source": "vector layer",
        "field": "field of the layer",
        "rasterDestination": "raster (output)",
        "vectorDestination": "vector (output)",
        "fileDestination": "file (output)",
        "folderDestination": "folder (output)",
        "extent": "extent",
        "crs": "CRS",
    }.get(kind, kind)


def _default(definition) -> str:
    value = definition.defaultValue()
    if value is None or value == "":
        return "-"
    if definition.type() == "enum":
        options = definition.options()
        values = value if isinstance(value, list) else [value]
        try:
            return ", ".join(options[int(v)] for v in values) or "(none)"
        except (ValueError, IndexError, TypeError):
            return str(value)
    return str(value)


def page(alg) -> str:
    from qgis.core import QgsProcessingParameterDefinition

    lines = [f"# {alg.displayName()}", "", f"`{alg.id()}` · group *{alg.group()}*"]
    command = getattr(alg, "COMMAND", "")
    if command:
        lines[-1] += f" · backend command `cwsc {command}`"
    lines += ["", markdown(alg.shortHelpString()), "", "## Parameters", ""]
    lines += ["| label | id | type | default | advanced |", "|---|---|---|---|---|"]
    for d in alg.parameterDefinitions():
        if d.isDestination():
            continue
        adv = "yes" if d.flags() & QgsProcessingParameterDefinition.FlagAdvanced else ""
        optional = " (optional)" if d.flags() & QgsProcessingParameterDefinition.FlagOptional else ""
        label = d.description().replace("|", "/")
        lines.append(f"| {label}{optional} | `{d.name()}` | {_type(d)} | {_default(d)} | {adv} |")
    lines += ["", "## Outputs", "", "| label | id | type |", "|---|---|---|"]
    for d in alg.parameterDefinitions():
        if d.isDestination():
            lines.append(f"| {d.description().replace('|', '/')} | `{d.name()}` | {_type(d)} |")
    for o in alg.outputDefinitions():
        if alg.parameterDefinition(o.name()) is None:
            lines.append(f"| {o.description().replace('|', '/')} | `{o.name()}` | {o.type()} |")
    details = getattr(alg, "DETAILS", "")
    if details:
        lines += ["", "## Details", "", headed_sections(markdown(details))]
    return "\n".join(lines).rstrip() + "\n"


#: A paragraph of the help that opens with its topic in bold ("**Inputs**: ...", "**Outputs**
#: (files): ...") or with "Next step:" starts a section of its own on the page.
SECTION = re.compile(
    r"^(?:\*\*(?P<bold>[A-Z][\w -]{0,30}?)\*\*(?P<paren> \()?|(?P<plain>Next step|Advanced)):?\s*"
)


def headed_sections(text: str) -> str:
    """The Details of a help text cut into headed sections: each paragraph that opens with its
    topic (``**Inputs**: ...``) becomes ``### Inputs`` and the paragraph without the topic, so
    the long pages read by their headings and the site's table of contents lists them."""
    out = []
    for paragraph in text.split("\n\n"):
        match = SECTION.match(paragraph)
        if match and (match["plain"] or paragraph[match.end() - 1 : match.end()] in (":", " ", "(")):
            title = match["bold"] or match["plain"]
            rest = paragraph[match.end() :]
            if match["paren"]:
                rest = "(" + rest
            rest = rest[:1].upper() + rest[1:] if rest[:1].isalpha() else rest
            out += [f"### {title}", rest]
        else:
            out.append(paragraph)
    return "\n\n".join(out)


def index(algorithms) -> str:
    lines = [
        "# Algorithms",
        "",
        "One page per algorithm of the Processing Toolbox's **CWSC** provider, made from the",
        "plugin's own definitions (`scripts/make_algorithm_docs.py`).",
        "",
    ]
    lines += ["| algorithm | id | group |", "|---|---|---|"]
    for a in algorithms:
        lines.append(f"| [{a.displayName()}]({a.name()}.md) | `{a.id()}` | {a.group()} |")
    lines += ["", "```{toctree}", ":hidden:", ""] + [a.name() for a in algorithms] + ["```", ""]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    """File name -> text of every page (QGIS must be initialised and the provider loaded)."""
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("cwsc")
    algorithms = sorted(
        (a for a in provider.algorithms() if hasattr(a, "DETAILS")),
        key=lambda a: (a.group(), a.displayName()),
    )
    out = {f"{a.name()}.md": page(a) for a in algorithms}
    out["index.md"] = index(algorithms)
    return out


def main() -> int:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, str(ROOT))
    from cwsc_qgis.plugin import CwscPlugin

    plugin = CwscPlugin(None)
    plugin.initProcessing()
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (TARGET / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(pages())} pages into {TARGET}")
    plugin.unload()
    return 0


if __name__ == "__main__":
    sys.exit(main())
