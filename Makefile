# `make run` serves the app; `make test` runs every test; `make bench` measures.
# Each builds .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench clean chromium

$(BIN)/.installed: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/pserve development.ini

# newman (pinned in package-lock.json) runs the Postman collection in the tests.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

test: $(BIN)/.installed node_modules/.installed chromium
	$(BIN)/python -m pytest

# The browser tests drive Debian's Chromium and chromedriver. In CI (CI set, root,
# fresh machine) a missing browser is installed; elsewhere those tests skip.
chromium:
	@case "$${CI:-}" in ""|0|false|no) exit 0;; esac; \
	if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	fi
# The benchmark also needs its peers (the `bench` extra); wrk is used when installed.
$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(BIN)/.bench-installed
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache node_modules
