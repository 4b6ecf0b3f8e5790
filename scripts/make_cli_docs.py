"""Write docs/cli.md: every parameter of every CWSC Processing algorithm beside the
command-line option that sets it, from the plugin's own definitions and the backend's parser
(``cwsc.commands.options.option_of``, ``cwsc.cli.command_options``). Run with QGIS's Python
after changing an algorithm or an option:

    QT_QPA_PLATFORM=offscreen python3 scripts/make_cli_docs.py

``tests/plugin/test_cli_names.py`` regenerates the page and fails when the committed one
differs, and checks that each algorithm really passes the option the page names.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "cli.md"

INTRO = """# Command line

Every algorithm of the Processing Toolbox runs a command of the `cwsc` package, and every
parameter of its dialog is an option of that command. A run in a terminal shows a progress
bar (the stage, the cells done and the time left), warnings as lines, and ends with a summary
of the files written and the main figures; errors name the option you typed. `--quiet` keeps
warnings and errors only; `--json` writes the JSON-lines events the QGIS plugin reads instead.
`cwsc COMMAND --help` lists every option of a command with its default.

<!-- example not run: calibrates the whole demo region, minutes on a laptop (make demo runs the chain) -->

```bash
cwsc demo-data --out demo
cwsc calibrate --precip demo/precipitation.tif --pet demo/pet.tif --runoff demo/runoff.tif \\
    --out-cwsc labels.tif --out-kge kge.tif
```

Exit status: 0 done, 2 a problem with the input (the message says which option), 3 stopped
(Ctrl-C; your files are as they were), 1 anything else.

The tables below give the option of each QGIS parameter (`qgis_process` and the Python
console use the parameter names).
"""


def table(alg) -> list[str]:
    from cwsc.cli import command_options
    from cwsc.commands.options import option_of

    command = alg.COMMAND
    options = command_options(command)
    lines = [
        f"## {alg.displayName()}",
        "",
        f"`{alg.id()}` · `cwsc {command}` · [page](algorithms/{alg.name()}.md)",
        "",
        "| QGIS parameter | option |",
        "|---|---|",
    ]
    for d in alg.parameterDefinitions():
        flag = option_of(d.name())
        lines.append(f"| `{d.name()}` | {f'`{flag}`' if flag in options else '-'} |")
    return lines + [""]


def algorithms():
    """The provider's algorithms that run a backend command with options, in page order."""
    from qgis.core import QgsApplication

    provider = QgsApplication.processingRegistry().providerById("cwsc")
    return sorted(
        (a for a in provider.algorithms() if getattr(a, "COMMAND", None) and hasattr(a, "DETAILS")),
        key=lambda a: (a.group(), a.displayName()),
    )


def page() -> str:
    """The text of docs/cli.md (QGIS must be initialised and the provider loaded)."""
    lines = [INTRO]
    for alg in algorithms():
        if alg.parameterDefinitions() and alg.COMMAND != "info":
            lines += table(alg)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, str(ROOT))
    from cwsc_qgis.plugin import CwscPlugin

    plugin = CwscPlugin(None)
    plugin.initProcessing()
    TARGET.write_text(page(), encoding="utf-8")
    print(f"wrote {TARGET}")
    plugin.unload()
    return 0


if __name__ == "__main__":
    sys.exit(main())
