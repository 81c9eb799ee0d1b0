# Two commands for a fresh machine:
#   make run   - set everything up and run the host on embedded defaults
#   make test  - set everything up and run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGIN_DIRS := $(wildcard plugins/*/pyproject.toml)
STAMP := $(VENV)/.installed
# parallel test workers (pytest-xdist); `make test PYTEST_WORKERS=0` runs serially
PYTEST_WORKERS ?= 4

.PHONY: run test setup services clean

$(STAMP): pyproject.toml $(PLUGIN_DIRS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' $(foreach p,$(PLUGIN_DIRS),-e $(dir $(p)))
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/greenroom start --config app-config.yaml --config app-config.local.yaml

services:
	./scripts/ensure-services.sh

test: $(STAMP) services
	./scripts/test-setup.sh $(PY)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .greenroom
