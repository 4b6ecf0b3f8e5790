#!/usr/bin/env bash
# `make package`: dist/cwsc_qgis.zip, accepted by QGIS "Plugins > Install from ZIP".
# The zip holds one folder, cwsc_qgis/, with the plugin code, metadata.txt, resources/
# (icon, QML styles), the numeric package (cwsc_qgis/lib/cwsc/ with its pyproject.toml, run as a separate
# process with PYTHONPATH=cwsc_qgis/lib) and requirements/lock.txt (exact versions) for its environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${CWSC_DIST_DIR:-$ROOT/dist}
mkdir -p "$OUT"
# The documentation site, opened offline by each algorithm's Help button: built here when the
# package's environment can (make docs), else the zip goes without it (and says so).
if [ ! -f docs/_build/html/index.html ] && [ -x .venv/bin/python ] && .venv/bin/python -c "import sphinx, myst_parser, furo, sphinx_copybutton" 2>/dev/null; then
    .venv/bin/python -m sphinx -q -b html docs docs/_build/html || true
fi
[ -f docs/_build/html/index.html ] || echo "package: no docs/_build/html (make docs): the Help buttons will open nothing" >&2
PY=$(command -v python3 || command -v python)
"$PY" - "$ROOT" "$OUT/cwsc_qgis.zip" <<'PYEOF'
import os, sys, zipfile, time

root, target = sys.argv[1], sys.argv[2]
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
SKIP_FILES = {"backend_python.txt"}  # written per machine by scripts/deploy.sh
SKIP_EXT = (".pyc", ".pyo", ".part.tif", ".so", ".pyd", ".dll", ".dylib")  # no compiled files

def walk(src, dest):
    for folder, dirs, files in os.walk(os.path.join(root, src)):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name in SKIP_FILES or name.endswith(SKIP_EXT) or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, os.path.join(root, src))
            yield path, "/".join(["cwsc_qgis", dest, rel.replace(os.sep, "/")]).replace("//", "/")

entries = list(walk("cwsc_qgis", ""))
entries += list(walk("cwsc", "lib/cwsc"))
entries += list(walk("resources", "resources"))
if os.path.isfile(os.path.join(root, "docs", "_build", "html", "index.html")):
    entries += list(walk(os.path.join("docs", "_build", "html"), "docs"))
for extra, dest in (("metadata.txt", "metadata.txt"), ("README.md", "README.md"),
                    ("LICENSE", "LICENSE"), ("requirements/lock.txt", "requirements/lock.txt"),
                    ("pyproject.toml", "lib/pyproject.toml"), ("README.md", "lib/README.md"),
                    ("LICENSE", "lib/LICENSE")):
    if os.path.isfile(os.path.join(root, extra)):
        entries.append((os.path.join(root, extra), "cwsc_qgis/" + dest))
missing = [m for m in ("cwsc_qgis/metadata.txt", "cwsc_qgis/LICENSE", "cwsc_qgis/__init__.py",
                       "cwsc_qgis/lib/cwsc/__main__.py",
                       "cwsc_qgis/resources/icon.svg") if m not in {e[1] for e in entries}]
if missing:
    sys.exit("package: missing " + ", ".join(missing))
tmp = target + ".tmp"
stamp = time.localtime(time.time())[:6]
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
    zf.writestr(zipfile.ZipInfo("cwsc_qgis/", stamp), "")
    for path, arc in entries:
        zf.write(path, arc)
os.replace(tmp, target)
print(f"package: {target} ({len(entries)} files, {os.path.getsize(target) // 1024} KiB)")
PYEOF
