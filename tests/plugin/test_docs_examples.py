"""Every shell and Python example of README.md and docs/ runs as written, so that a broken
example fails ``make test``.

The fenced ``bash`` and ``python`` blocks of each page run in order, in one fresh folder per
page (a page's later blocks use what its earlier ones wrote): ``bash`` blocks with
``bash -e -o pipefail`` and the backend's environment first on ``PATH`` (so ``cwsc`` and
``python`` are the package's, as after ``source .venv/bin/activate``); ``python`` blocks with
the backend's interpreter; ``qgis_process.bin`` with the plugin deployed into a fresh QGIS
home (``qp_env``). A block the suite cannot run (it needs a GPU, a cluster, the real products,
or it is ``make test`` itself) is preceded by an HTML comment saying why::

    <!-- example not run: needs a SLURM cluster -->

and nothing else is skipped. The algorithm pages (``docs/algorithms/``) are generated and have
no examples; ``tests/plugin/test_docs.py`` guards them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from plugin_testing import QGIS_PROCESS, ROOT

#: The marker before a block the suite does not run; the reason is required.
SKIP = re.compile(r"<!--\s*example not run:\s*(?P<reason>\S.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\S*)\s*$")
RUN_LANGUAGES = {"bash", "sh", "shell", "python"}


@dataclass(frozen=True)
class Example:
    page: str  # path relative to the repository root
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    skip_reason: str | None


def examples(path: Path) -> list[Example]:
    """The fenced code blocks of one Markdown page, in order, with their skip markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i, previous = [], 0, ""
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        indent, start = len(match["indent"]), i
        i += 1
        body = []
        while i < len(lines) and not re.match(rf"^ {{{indent}}}```\s*$", lines[i]):
            body.append(lines[i][indent:])
            i += 1
        i += 1
        skip = SKIP.search(previous)
        found.append(
            Example(
                str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                start + 1,
                match["lang"],
                "\n".join(body) + "\n",
                skip["reason"] if skip else None,
            )
        )
        previous = ""
    return found


def pages() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if not {"_build", "algorithms"} & set(p.parts))
    return [ROOT / "README.md", *docs]


def runnable(page: Path) -> list[Example]:
    return [e for e in examples(page) if e.language in RUN_LANGUAGES]


def _heavy(page: Path) -> bool:
    """A page whose examples run the commands (demo data, calibration, training): tens of
    seconds; the API pages' examples take a second or two each."""
    return any(
        re.search(r"^\s*(cwsc|qgis_process\S*) ", e.code, re.M) for e in runnable(page) if not e.skip_reason
    )


PAGES_WITH_EXAMPLES = [
    pytest.param(p, id=str(p.relative_to(ROOT)), marks=[pytest.mark.slow] if _heavy(p) else [])
    for p in pages()
    if runnable(p)
]


def test_the_extractor_finds_blocks_and_their_markers(tmp_path):
    """The parser itself: fences, an indented fence in a list, the marker, other languages."""
    page = tmp_path / "page.md"
    text = (
        "Text\n\n```bash\necho one\n```\n\n<!-- example not run: needs a GPU -->\n\n```bash\n"
        "nvidia-smi\n```\n\n1. item\n\n   ```python\n   print(2)\n   ```\n\n```text\nnot code\n```\n"
    )
    page.write_text(text, encoding="utf-8")
    found = examples(page)
    assert [(e.line, e.language, e.code, e.skip_reason) for e in found] == [
        (3, "bash", "echo one\n", None),
        (9, "bash", "nvidia-smi\n", "needs a GPU"),
        (15, "python", "print(2)\n", None),
        (19, "text", "not code\n", None),
    ]


def test_every_shell_block_is_run_or_says_why_not():
    """A shell example in another fence (console, shell-session ...) would escape the run."""
    for page in pages():
        for e in examples(page):
            assert e.language not in {"console", "shell-session", "zsh", "powershell"}, (
                f"{e.page}:{e.line}: write shell examples as ```bash (run by this test) "
                "or mark them '<!-- example not run: why -->'"
            )


def _environment(qp_env: dict | None) -> dict:
    """The shell of a page: QGIS's for a page of ``qgis_process`` examples (``qp_env``: the
    plugin deployed into a fresh home), else the package's environment activated."""
    backend = Path(os.environ["CWSC_BACKEND_PYTHON"])
    env = dict(qp_env) if qp_env is not None else dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(key, None)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["BACKEND_PYTHON"] = str(backend)  # python blocks run with it
    if qp_env is None:
        # As after `source .venv/bin/activate`: the package's cwsc and python come first.
        # Not for qgis_process: QGIS's Python takes the first python3 on PATH, and the
        # backend's has no qgis module ("Couldn't load SIP module"), as the workflow page says.
        env["PATH"] = os.pathsep.join([str(backend.parent), env["PATH"]])
        env["VIRTUAL_ENV"] = str(backend.parent.parent)
    return env


def run_page(page: Path, folder: Path, env: dict, timeout: float = 600) -> list[str]:
    """Run the page's runnable blocks in order in ``folder``; the reasons of those skipped."""
    skipped = []
    for e in runnable(page):
        if e.skip_reason:
            skipped.append(f"{e.page}:{e.line}: {e.skip_reason}")
            continue
        if e.language == "python":
            command = [env["BACKEND_PYTHON"], "-c", e.code]
        else:
            command = ["bash", "-e", "-o", "pipefail", "-c", e.code]
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (
            f"{e.page}:{e.line}: the example fails (exit {done.returncode}):\n{e.code}\n"
            f"--- stdout (tail)\n{done.stdout[-3000:]}\n--- stderr (tail)\n{done.stderr[-3000:]}"
        )
    return skipped


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES)
def test_the_examples_of_the_page_run(page, tmp_path, request):
    uses_qgis = any("qgis_process" in e.code and not e.skip_reason for e in runnable(page))
    if uses_qgis and QGIS_PROCESS is None:
        pytest.skip("qgis_process is not installed")
    env = _environment(request.getfixturevalue("qp_env") if uses_qgis else None)
    skipped = run_page(page, tmp_path, env)
    print(
        f"\n{page.relative_to(ROOT)}: {len(runnable(page)) - len(skipped)} examples run", *skipped, sep="\n"
    )


if __name__ == "__main__":  # a quick listing: python tests/plugin/test_docs_examples.py
    for p in pages():
        for e in examples(p):
            print(f"{e.page}:{e.line} {e.language} {'SKIP ' + e.skip_reason if e.skip_reason else ''}")
    sys.exit(0)
