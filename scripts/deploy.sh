#!/usr/bin/env bash
# `make deploy`: install dist/cwsc_qgis.zip into the default QGIS profile, record the
# backend interpreter (this checkout's .venv/bin/python, or $CWSC_BACKEND_PYTHON) in
# cwsc_qgis/backend_python.txt where the plugin's runner finds it, and enable the plugin
# so `qgis_process list` shows the cwsc algorithms.
#
# Environment: QGIS_PROFILE_DIR (default: $QGIS_CUSTOM_CONFIG_PATH/profiles/default or
# ~/.local/share/QGIS/QGIS3/profiles/default), CWSC_BACKEND_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ZIP=${CWSC_DIST_DIR:-$ROOT/dist}/cwsc_qgis.zip
[ -f "$ZIP" ] || bash scripts/package.sh
if [ -n "${QGIS_PROFILE_DIR:-}" ]; then
    PROFILE=$QGIS_PROFILE_DIR
elif [ -n "${QGIS_CUSTOM_CONFIG_PATH:-}" ]; then
    PROFILE=$QGIS_CUSTOM_CONFIG_PATH/profiles/default
else
    PROFILE=$HOME/.local/share/QGIS/QGIS3/profiles/default
fi
PLUGINS=$PROFILE/python/plugins
mkdir -p "$PLUGINS"
rm -rf "$PLUGINS/cwsc_qgis"
PY=$(command -v python3 || command -v python)
"$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$ZIP" "$PLUGINS"

# The backend interpreter: absolute, but not resolved through symlinks (a venv's python
# is a symlink to the system one; resolving it would lose the venv).
BACKEND_PY=${CWSC_BACKEND_PYTHON:-$ROOT/.venv/bin/python}
case "$BACKEND_PY" in /*) ;; *) BACKEND_PY=$ROOT/$BACKEND_PY ;; esac
if [ ! -x "$BACKEND_PY" ]; then
    echo "deploy: warning: the backend interpreter $BACKEND_PY does not exist yet (run 'make setup')" >&2
fi
printf '%s\n' "$BACKEND_PY" > "$PLUGINS/cwsc_qgis/backend_python.txt"
echo "deploy: installed $PLUGINS/cwsc_qgis (backend: $BACKEND_PY)"

# Enable it. Debian's /usr/bin/qgis_process wrapper passes --noversioncheck, which QGIS
# 3.22 rejects ("Command --noversioncheck not known!"): fall back to qgis_process.bin.
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
enabled=""
for qp in qgis_process qgis_process.bin; do
    command -v "$qp" >/dev/null 2>&1 || continue
    out=$("$qp" plugins enable cwsc_qgis 2>&1) && ok=1 || ok=0
    grep -q "not known" <<<"$out" && continue
    if [ $ok = 1 ] || grep -q "already enabled" <<<"$out"; then
        enabled=$qp
        break
    fi
done
if [ -z "$enabled" ]; then
    echo "deploy: could not enable the plugin with qgis_process; enable 'CWSC toolkit' in" \
         "QGIS (Plugins > Manage and Install Plugins)" >&2
    exit 1
fi
count=$("$enabled" list 2>/dev/null | grep -c "cwsc:" || true)
echo "deploy: enabled with $enabled; qgis_process lists $count cwsc algorithms"
[ "$count" -ge 12 ] || { echo "deploy: expected 12 cwsc algorithms" >&2; exit 1; }
