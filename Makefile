# The two set-up commands of the README. Each creates .venv on first use and installs what it needs.
#   make run    the main job: the metabolism benchmark on the built-in defaults (CPU, no API key)
#   make test   the test suite (what CI runs)
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	touch $@

run: $(STAMP)
	$(VENV)/bin/gnnlab run --out runs/metabolism

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python bench/metabolism.py --ablations
