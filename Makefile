# CWSC toolkit. `make demo` runs the whole workflow; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
QGIS_VENV := .venv-qgis
QGIS_PY := $(QGIS_VENV)/bin/python
STAMPS := .stamps
export QT_QPA_PLATFORM ?= offscreen
export CWSC_BACKEND_PYTHON ?= $(CURDIR)/$(VENV_PY)

.PHONY: setup qgis test test-backend test-plugin bench demo package deploy clean

setup: $(STAMPS)/qgis $(STAMPS)/backend $(STAMPS)/plugin-test

qgis: $(STAMPS)/qgis

$(STAMPS)/qgis:
	@bash scripts/ensure_qgis.sh
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/backend: requirements/backend.txt requirements/test.txt
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --disable-pip-version-check -r requirements/backend.txt -r requirements/test.txt
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/plugin-test: requirements/plugin-test.txt $(STAMPS)/qgis
	@test -x $(QGIS_PY) || /usr/bin/python3 -m venv --system-site-packages $(QGIS_VENV)
	$(QGIS_PY) -m pip install -q --disable-pip-version-check -r requirements/plugin-test.txt
	@mkdir -p $(STAMPS) && touch $@

test: setup test-backend test-plugin

test-backend: $(STAMPS)/backend
	$(VENV_PY) -m pytest -q tests/backend

test-plugin: $(STAMPS)/plugin-test $(STAMPS)/backend
	$(QGIS_PY) -m pytest -q -p no:cacheprovider tests/plugin

bench: $(STAMPS)/backend
	$(VENV_PY) -m benchmarks

demo:
	@bash scripts/demo.sh

package:
	@bash scripts/package.sh

deploy: package $(STAMPS)/qgis $(STAMPS)/backend
	@bash scripts/deploy.sh

clean:
	rm -rf build dist demo-output $(STAMPS)
