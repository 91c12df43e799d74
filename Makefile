# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what they need: a virtualenv, the packages, the test servers.

SHELL := /bin/bash
PYENV_BIN := $(wildcard $(HOME)/.pyenv/versions/3.11*/bin) $(wildcard $(HOME)/.pyenv/versions/3.12*/bin)
export PATH := $(CURDIR)/.venv/bin:$(subst $() ,:,$(strip $(PYENV_BIN))):$(PATH)
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.11*/bin/python3.11) python3)
VENV := .venv
STAMP := $(VENV)/.installed
BACKEND ?= local

.PHONY: demo test test-fast lint typecheck bench docs system-deps node-deps clean

$(STAMP): pyproject.toml requirements/test.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev,s3,gcs,azure,sftp,webdav]" -r requirements/test.txt
	touch $(STAMP)

# Debian packages for the test servers and browser tests (needs root, as CI has).
system-deps:
	@missing=""; \
	for pkg in openssh-server chromium; do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# npm packages for the test servers (Azurite), pinned in tests/node/package-lock.json.
node-deps:
	@if [ -f tests/node/package.json ]; then cd tests/node && npm ci --silent --no-audit --no-fund; fi

lint: $(STAMP)
	ruff check .
	ruff format --check .

typecheck: $(STAMP)
	mypy --strict stowage

# The whole suite on Python 3.11 + Django 5.2 and Python 3.12 + Django 6.1.
test: $(STAMP) system-deps node-deps lint typecheck
	nox -s tests

# One combination only, in the main virtualenv: quicker while developing.
test-fast: $(STAMP) system-deps node-deps
	pytest $(ARGS)

demo: $(STAMP)
	python example/run.py --backend $(BACKEND)

bench: $(STAMP) system-deps node-deps
	python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .nox .pytest_cache .mypy_cache .ruff_cache
