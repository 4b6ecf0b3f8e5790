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
# Test processes per suite (pytest-xdist): 2 for the 2-core machines CI and developers have;
# TEST_WORKERS=0 runs a suite in one process. Tests marked `serial` measure time (a stop within
# N s, a speed) and run alone after the parallel pass, so that the other process does not slow them.
TEST_WORKERS ?= 2
# $(call suite,PYTHON AND PYTEST OPTIONS,MARKER EXPRESSION TAIL,FOLDER): both passes run, and the
# target fails when either failed (pytest's 5, no test selected, is no failure of the serial pass).
suite = $(1) -n $(TEST_WORKERS) --dist loadgroup -m "not serial$(2)" $(3); parallel=$$?; \
	$(1) -m "serial$(2)" $(3); serial=$$?; [ $$serial = 5 ] && serial=0; exit $$((parallel || serial))
FAST := and not slow and not gui and not network

.PHONY: setup qgis test test-fast test-backend test-plugin lint lock bench demo docs package deploy clean

setup: $(STAMPS)/qgis $(STAMPS)/backend $(STAMPS)/plugin-test

qgis: $(STAMPS)/qgis

$(STAMPS)/qgis:
	@bash scripts/ensure_qgis.sh
	@mkdir -p $(STAMPS) && touch $@

# The package's own environment: the exact versions of requirements/lock*.txt, then the
# package itself (editable), so `cwsc` and `python -m cwsc` work from any folder.
$(STAMPS)/backend: requirements/lock.txt requirements/lock-test.txt pyproject.toml | $(STAMPS)/qgis
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q --disable-pip-version-check -r requirements/lock.txt -r requirements/lock-test.txt
	$(VENV_PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@$(VENV_PY) -c "import torch; print('torch', torch.__version__ + ':', 'CUDA' if torch.version.cuda else 'CPU', 'build')"
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/plugin-test: requirements/plugin-test.txt $(STAMPS)/qgis
	@test -x $(QGIS_PY) || /usr/bin/python3 -m venv --system-site-packages $(QGIS_VENV)
	$(QGIS_PY) -m pip install -q --disable-pip-version-check -r requirements/plugin-test.txt
	@mkdir -p $(STAMPS) && touch $@

test: setup test-backend test-plugin

# The tests that finish in a few minutes: everything but those marked slow or gui.
test-fast: setup docs
	$(call suite,$(VENV_PY) -m pytest -q, $(FAST),tests/cwsc)
	$(call suite,$(QGIS_PY) -m pytest -q -p no:cacheprovider, $(FAST),tests/plugin)

test-backend: $(STAMPS)/backend
	$(call suite,$(VENV_PY) -m pytest -q,,tests/cwsc)

docs: $(STAMPS)/backend
	$(VENV_PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

lint: $(STAMPS)/backend
	$(VENV_PY) -m ruff check .
	$(VENV_PY) -m ruff format --check .

# requirements/lock*.txt from pyproject.toml's lower bounds (pip-tools). torch's local build
# label (+cpu) is dropped so that the plugin's set-up can pick the CPU or CUDA build.
lock:
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -q pip-tools
	$(VENV_PY) -m piptools compile -q --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements/lock.txt pyproject.toml
	$(VENV_PY) -m piptools compile -q --strip-extras --no-emit-index-url --no-emit-find-links \
		--extra test --extra lint --extra docs -c requirements/lock.txt -o requirements/lock-test.txt pyproject.toml
	sed -i -E 's/^(torch==[0-9.]+)\+cpu$$/\1/' requirements/lock.txt requirements/lock-test.txt

test-plugin: $(STAMPS)/plugin-test $(STAMPS)/backend docs
	$(call suite,$(QGIS_PY) -m pytest -q -p no:cacheprovider,,tests/plugin)

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
