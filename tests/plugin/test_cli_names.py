"""The page that maps every QGIS parameter to its command-line option (docs/cli.md) says what
the plugin does: it is generated from the plugin's definitions (a changed parameter without a
regenerated page fails here), and each algorithm really passes the option the page names for
each parameter, which is also the name the command line's errors use."""

import importlib.util
from pathlib import Path

from plugin_testing import ROOT
from qgis.core import QgsApplication
from test_contract import _algorithm, _build, _parameters, _variants

from cwsc import cli
from cwsc.commands.options import option_of


def _generator():
    spec = importlib.util.spec_from_file_location("make_cli_docs", ROOT / "scripts" / "make_cli_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_says_what_the_plugin_says(provider):  # noqa: ARG001
    page = _generator().page()
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == page, (
        "regenerate with scripts/make_cli_docs.py"
    )


def _options(args):
    """``--flag value...`` of a built command line as {flag: (values...)} (``--no-x``: ``--x``
    off)."""
    out, flag = {}, None
    for arg in map(str, args):
        if arg.startswith("--no-"):  # a switch's other name: --no-position is --position off
            flag = "--" + arg[len("--no-") :]
            out[flag] = ("off",)
        elif arg.startswith("--"):
            flag, _, value = arg.partition("=")
            out[flag] = (value,) if value else ()
        elif flag is not None:
            out[flag] += (arg,)
    return out


def test_every_parameter_is_passed_as_the_option_the_page_names(provider, data_dir, tmp_path):  # noqa: ARG001
    """A setting moved off its default changes the option the page names for it (and only
    options of its own); a file or layer given is passed under that option."""
    wrong = []
    for alg in QgsApplication.processingRegistry().providerById("cwsc").algorithms():
        if not getattr(alg, "COMMAND", None) or alg.COMMAND == "info":
            continue
        alg = _algorithm(alg.name())
        flags = set(cli.command_options(alg.COMMAND))
        full = _parameters(alg, data_dir, tmp_path, True)
        base = _options(_build(alg, full))
        varied = set()
        for name, value in _variants(alg):
            other = _options(_build(alg, {**full, name: value}))
            changed = {f for f in set(base) | set(other) if base.get(f) != other.get(f)}
            varied.add(name)
            if changed and option_of(name) not in changed:
                wrong.append(f"cwsc:{alg.name()} {name}={value!r} changed {sorted(changed)}")
        for d in alg.parameterDefinitions():
            flag = option_of(d.name())
            if flag not in flags:
                wrong.append(f"cwsc:{alg.name()} {d.name()}: the backend has no {flag}")
            value = full.get(d.name())
            if d.name() in varied or not isinstance(value, (str, list)) or d.type() in ("field", "extent"):
                continue
            files = value if isinstance(value, list) else [value]
            names = [Path(f.split("|")[0]).stem for f in files]
            given = " ".join(base.get(flag, ()))
            if not all(n in given for n in names):
                wrong.append(f"cwsc:{alg.name()} {d.name()} {names} not under {flag}: {base.get(flag)}")
    assert wrong == []
