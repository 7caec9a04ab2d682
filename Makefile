# `make run` and `make test` set up everything they need themselves, on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

## One clock for the progress lines of `make run` (scripts/install.py, then scripts/run.py).
ifndef ALGOLINK_MAKE_START
ALGOLINK_MAKE_START := $(shell date +%s)
endif
export ALGOLINK_MAKE_START

.PHONY: run test lint format install bench clean postgres chromium sandbox image-tools js-test node \
	i18n-extract i18n-update i18n-compile

## The JupyterLab extension's sources: a change rebuilds it (pip install runs `npm run build:prod`).
JS_SOURCES := $(wildcard js/src/*.ts js/style/*.css js/style/*.js) js/package.json js/package-lock.json

## Two distributions from this repository: modelcloud (runtime/, the runtime SDK) and algolink-jupyter
## (the rest, which depends on it); both installed editable, a progress line at least every 10 s
## (pip's output in .algolink/install.log).
$(INSTALLED): pyproject.toml runtime/pyproject.toml $(JS_SOURCES) | node
	@$(PYTHON) scripts/install.py $(VENV)
	@touch $(INSTALLED)

install: $(INSTALLED)

## The hub (SQLite in .algolink/) and JupyterLab on the quickstart, wired together; Ctrl-C stops both.
## Their logs go to .algolink/hub.log and .algolink/lab.log, so the two addresses stay last on screen.
run: $(INSTALLED) sandbox i18n-compile
	@$(PY) scripts/run.py

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALLED)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Node.js and npm build the JupyterLab extension during `pip install`: Debian's when npm is missing.
node:
	@command -v npm >/dev/null 2>&1 || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm; }

## PostgreSQL for the hub's API tests: Debian's package when initdb is on neither PATH nor the
## usual /usr/lib/postgresql/<version>/bin (the tests start their own server as a non-root user).
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; }

## Debian's Chromium (and a CJK font) for the hub's browser tests, driven by Playwright; never
## `playwright install`.
chromium:
	@test -x /usr/bin/chromium && fc-list :lang=zh | grep -q . || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	    chromium fonts-wqy-microhei; }

## Debian's bubblewrap: the hub runs services and builds in its sandbox (README, Security).
sandbox:
	@command -v bwrap >/dev/null 2>&1 || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	    bubblewrap; }

## Debian's buildah, debootstrap and skopeo: `algolink image` makes a Debian base with debootstrap and
## pushes or fetches images with skopeo; the image tests run images with buildah and push them to a
## registry of their own on loopback (docker-registry) (README, Images).
image-tools:
	@command -v buildah >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 && \
	  command -v skopeo >/dev/null 2>&1 && command -v docker-registry >/dev/null 2>&1 || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	    buildah debootstrap skopeo docker-registry; }

## The translation catalogs (README, Development): the .pot from the code, each .po merged with it,
## each .po compiled (the package build compiles them too; this recompiles after editing a .po).
CATALOGS := $(wildcard algolink_jupyter/locale/*/LC_MESSAGES/*.po)
i18n-extract: $(INSTALLED)
	$(PY) scripts/i18n.py extract
i18n-update: $(INSTALLED)
	$(PY) scripts/i18n.py update
i18n-compile: $(CATALOGS:.po=.mo)
algolink_jupyter/locale/%.mo: algolink_jupyter/locale/%.po | $(INSTALLED)
	$(PY) scripts/i18n.py compile

## The whole suite: lint, then every test.
test: lint js-test postgres chromium sandbox image-tools i18n-compile
	$(PY) -m pytest --durations=30

## The JupyterLab extension's own lint (eslint, tsc) and unit tests (node's test runner).
js/node_modules/.installed: js/package.json js/package-lock.json | node
	cd js && npm ci --no-audit --no-fund
	touch $@

js-test: js/node_modules/.installed
	cd js && npm run lint && npm test

bench: $(INSTALLED)
	$(PY) bench/serve_overhead.py
	$(PY) bench/kernel_serving.py
	$(PY) bench/hub.py
	$(PY) bench/hub_pages.py
	$(PY) bench/export.py
	$(PY) bench/batching.py
	$(PY) bench/image.py
	$(PY) bench/ray_backend.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
	rm -rf js/node_modules js/lib js/build-test js/tsconfig.tsbuildinfo algolink_jupyter/labextension
