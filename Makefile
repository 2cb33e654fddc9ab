# `make run` serves the app; `make test` runs every test; `make lint` checks style and
# types; `make dist` builds the sdist and the wheel; `make bench` measures;
# `make test-all` runs every test on each supported Python the machine has (tox.ini).
# Each builds .venv first, with the Python that PYTHON names: PYTHON=python3.13 make run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUPPORTED_PYTHONS := 3.10 3.11 3.12 3.13
empty :=
space := $(empty) $(empty)
comma := ,

.PHONY: run test lint dist test-all test-other-pythons bench clean chromium services

# pyenv's shims run only the Pythons pyenv has selected (python3.13 fails while 3.11 is
# selected), so a Python is looked for in each pyenv version's own bin folder too.
PYENV_BINS := $(wildcard $(shell pyenv root 2>/dev/null)/versions/*/bin)
# $(call python_info,NAME): "path X.Y.Z" of the first Python called NAME that runs.
python_info = $(shell for p in $(1) $(addsuffix /$(1),$(PYENV_BINS)); do \
	"$$p" -c 'import platform, sys; print(sys.executable, platform.python_version())' \
	2>/dev/null && break; done)
PYTHON_INFO := $(call python_info,$(PYTHON))
PYTHON_EXE := $(word 1,$(PYTHON_INFO))
PY_VERSION := $(word 2,$(PYTHON_INFO))
PY_MINOR := $(subst $(space),.,$(wordlist 1,2,$(subst ., ,$(PY_VERSION))))
# The stamp names the Python the venv was built with: naming another Python rebuilds it.
INSTALLED := $(BIN)/.installed-python$(PY_VERSION)

$(INSTALLED): setup.cfg pyproject.toml
	@test -n "$(PYTHON_EXE)" || { echo "PYTHON=$(PYTHON) does not run here;" \
		"name a Python $(firstword $(SUPPORTED_PYTHONS)) or later, e.g. PYTHON=python3.12" >&2; exit 1; }
	@if [ -e $(VENV) ] && [ "$$($(BIN)/python -c 'import platform; \
		print(platform.python_version())' 2>/dev/null)" != "$(PY_VERSION)" ]; then \
		echo "$(VENV) is not from Python $(PY_VERSION) ($(PYTHON_EXE)): building it anew"; \
		rm -rf $(VENV); fi
	$(PYTHON_EXE) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(INSTALLED)
	$(BIN)/pserve development.ini

# newman (pinned in package-lock.json) runs the Postman collection in the tests, and
# @okta/okta-auth-js (Okta's SPA SDK) signs in against the development issuer in Chromium.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# PYTEST_ARGS passes options on, e.g. PYTEST_ARGS='-m "not e2e" -x'.
test: $(INSTALLED) node_modules/.installed chromium services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff (lint, then the format check) and mypy (pyproject.toml says how strict), in
# seconds; versions pinned in the `lint` extra.
$(BIN)/.lint-installed: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $@

lint: $(BIN)/.lint-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The sdist and the wheel in dist/, checked by twine (tests/test_packaging.py also
# installs the wheel alone and serves an app with it).
dist: $(INSTALLED)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*

# tox, in the venv, builds one environment per Python (.tox/py3XX) and runs the tests in
# each; it is shown pyenv's Pythons as well, and names each Python it did not find.
# TOX_ARGS passes options on, e.g. TOX_ARGS='-e py313 -- -m "not e2e"'.
$(BIN)/.tox-installed: $(INSTALLED)
	$(BIN)/python -m pip install --quiet 'tox >= 4.20'
	touch $@

TOX := PATH="$$PATH$(if $(PYENV_BINS),:$(subst $(space),:,$(strip $(PYENV_BINS))))" $(BIN)/tox

test-all: $(BIN)/.tox-installed node_modules/.installed chromium services
	$(TOX) $(TOX_ARGS)

# CI, after `make test`: the fast suite (-m "not e2e": no pserve, newman, browser or
# benchmark) on each supported Python other than PYTHON, side by side.
OTHER_PYTHONS = $(filter-out $(PY_MINOR),$(SUPPORTED_PYTHONS))
FOUND_OTHERS = $(strip $(foreach v,$(OTHER_PYTHONS),$(if $(call python_info,python$(v)),$(v))))
OTHER_ENVS = $(subst $(space),$(comma),$(foreach v,$(OTHER_PYTHONS),py$(subst .,,$(v))))

test-other-pythons: $(BIN)/.tox-installed
	$(if $(FOUND_OTHERS),$(TOX) run-parallel -p all -e $(OTHER_ENVS) -- -m "not e2e",\
		@echo "No other supported Python here (looked for $(OTHER_PYTHONS)): nothing more to test.")

# The browser tests drive Debian's Chromium and chromedriver. In CI (CI set, root,
# fresh machine) a missing browser is installed; elsewhere those tests skip.
chromium:
	@case "$${CI:-}" in ""|0|false|no) exit 0;; esac; \
	if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	fi
# The shared-store and deployment tests run Debian's redis-server, redis-sentinel,
# redis-cli (redis-tools: it makes the test cluster) and nginx on loopback ports of
# their own. In CI a missing one is installed; elsewhere those tests skip.
services:
	@case "$${CI:-}" in ""|0|false|no) exit 0;; esac; \
	if ! command -v redis-server >/dev/null || ! command -v redis-sentinel >/dev/null || \
		! command -v redis-cli >/dev/null || [ ! -x /usr/sbin/nginx ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends \
			redis-server redis-sentinel redis-tools nginx; \
	fi
# The benchmark also needs its peers (the `bench` extra); wrk is used when installed.
$(BIN)/.bench-installed: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(BIN)/.bench-installed
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache node_modules .tox dist build
