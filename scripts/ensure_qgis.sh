#!/usr/bin/env bash
# QGIS 3.22+ with its Python bindings: installed from apt when we are root, else a clear
# message with the command to run. Nothing else happens without it. As root it also installs
# Xvfb (xvfb-run), for the test that drives the QGIS desktop on a virtual screen; without it
# that test is skipped.
set -euo pipefail
qgis_python=${CWSC_QGIS_PYTHON:-/usr/bin/python3}
have_qgis() {
  "$qgis_python" -c "import qgis.core" 2>/dev/null || return 1
  command -v qgis_process.bin >/dev/null 2>&1 || command -v qgis_process >/dev/null 2>&1
}
is_root() { [ "${CWSC_ASSUME_NOT_ROOT:-0}" != 1 ] && [ "$(id -u)" = 0 ]; }

want_xvfb() {
  command -v xvfb-run >/dev/null 2>&1 && return 0
  is_root && command -v apt-get >/dev/null 2>&1 || return 0
  echo "Installing Xvfb from apt (xvfb xauth), for the QGIS window test..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xauth >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xauth >/dev/null; } \
    || echo "Xvfb could not be installed: the QGIS window test will be skipped" >&2
}

if have_qgis; then want_xvfb; exit 0; fi
if is_root && command -v apt-get >/dev/null 2>&1; then
  echo "Installing QGIS from apt (qgis python3-qgis qgis-providers python3-venv)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq qgis python3-qgis qgis-providers python3-venv >/dev/null
  want_xvfb
  exit 0
fi
cat >&2 <<'MSG'
QGIS (with its Python bindings) is not installed and this is not a root shell.
Install it first, then run make again:

    sudo apt-get install -y qgis python3-qgis qgis-providers python3-venv

MSG
exit 1
