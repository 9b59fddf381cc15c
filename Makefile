# The two set-up commands (README): `make demo` and `make test`.
# Both install everything they need themselves: uv, the locked Python environment,
# the front-end assets from npm and, for the browser tests, Debian's chromium.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PEOPLE ?= 20000
SEED ?= 42
export NOMINAL_HOME ?= $(CURDIR)/nominal-data

.PHONY: demo test setup lint typecheck pytest lock assets browser-deps c-compiler postgres benchmarks clean

## demo: install, generate the synthetic town, build the hub and serve it
demo: setup
	$(VENV)/bin/nominal demo --people $(PEOPLE) --seed $(SEED)

## test: install, lint, type-check and run the test suite
test: setup browser-deps c-compiler
	$(VENV)/bin/ruff check src tests benchmarks fuzz
	$(VENV)/bin/ruff format --check src tests benchmarks fuzz
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

setup: $(VENV)/.synced assets

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --break-system-packages --user uv

$(VENV)/.synced: requirements.lock pyproject.toml | $(UV)
	test -x $(PY) || $(UV) venv --quiet --python 3.11 $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet requirements.lock
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --no-deps -e .
	touch $@

## assets: GOV.UK Frontend, HTMX, Leaflet, Vega and axe-core from npm, copied into the package
assets: node_modules/.package-lock.json
	$(PY) -m nominal.web.assets node_modules

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

## c-compiler: the C pseudonym kernel is built with it (ingest falls back without one;
## the tests build and check the kernel, so `make test` makes sure a compiler is there)
c-compiler:
	@command -v cc >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null)

browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null)

postgres:
	pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start

## lock: recompile the hashed lock file after changing pyproject.toml
lock: | $(UV)
	$(UV) pip compile pyproject.toml --all-extras --generate-hashes --no-emit-index-url -o requirements.lock

lint:
	$(VENV)/bin/ruff check src tests benchmarks fuzz
	$(VENV)/bin/ruff format --check src tests benchmarks fuzz

typecheck:
	$(VENV)/bin/mypy

benchmarks: setup
	$(VENV)/bin/pytest -m "slow or benchmark" -p no:cacheprovider

clean:
	rm -rf $(VENV) node_modules nominal-data src/nominal/web/static/vendor
