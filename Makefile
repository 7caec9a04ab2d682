# `make run` and `make test` set up everything they need themselves, on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test lint format install bench clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(INSTALLED)

install: $(INSTALLED)

examples/digits/models/digits.pt: examples/digits/train.py examples/digits/model.py | $(INSTALLED)
	$(PY) examples/digits/train.py

## Serve the digits classifier at http://localhost:9000 (train it first when its weights are missing).
run: $(INSTALLED) examples/digits/models/digits.pt
	$(VENV)/bin/algolink serve examples/digits

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALLED)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## The whole suite: lint, then every test.
test: lint
	$(PY) -m pytest

bench: $(INSTALLED)
	$(PY) bench/serve_overhead.py
	$(PY) bench/kernel_serving.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
