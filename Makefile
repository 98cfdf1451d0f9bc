# The two set-up commands of the README. Each creates .venv on first use and installs what it needs.
#   make run    the main job: the metabolism benchmark on the built-in defaults (CPU, no API key)
#   make test   the test suite (what CI runs)
PYTHON ?= python3
# The pinned Claude Code CLI (tools/claude/package-lock.json) for the `claude` agent and its loopback tests.
CLAUDE_CLI := tools/claude/node_modules/.package-lock.json
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	# the flyvis connectome file only: flyvis's own dependencies (torchvision, ...) would replace the CPU torch
	$(VENV)/bin/python -m pip install --quiet --no-deps flyvis==1.2.0
	touch $@

$(CLAUDE_CLI): tools/claude/package-lock.json
	npm ci --prefix tools/claude --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP)
	$(VENV)/bin/gnnlab run --out runs/metabolism

test: $(STAMP) $(CLAUDE_CLI)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python bench/metabolism.py --ablations
