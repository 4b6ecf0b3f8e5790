#!/usr/bin/env bash
# QGIS 3.22+ with its Python bindings: installed from apt when we are root, else a clear
# message with the command to run. Nothing else happens without it.
set -euo pipefail
if /usr/bin/python3 -c "import qgis.core" 2>/dev/null && command -v qgis_process.bin >/dev/null 2>&1 \
   || /usr/bin/python3 -c "import qgis.core" 2>/dev/null && command -v qgis_process >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing QGIS from apt (qgis python3-qgis qgis-providers)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq qgis python3-qgis qgis-providers python3-venv >/dev/null
  exit 0
fi
cat >&2 <<'MSG'
QGIS (with its Python bindings) is not installed and this is not a root shell.
Install it first, then run make again:

    sudo apt-get install -y qgis python3-qgis qgis-providers python3-venv

MSG
exit 1
