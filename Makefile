# spegel-py: `make demo` runs a local 3-node cluster; `make test` runs the whole test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := containerd docker-registry skopeo build-essential libgmp-dev chromium iproute2 \
	ca-certificates curl

.PHONY: all deps venv static proto lint format test test-fast demo bench clean

all: test

# System packages (Debian). Needs root; skipped when every package is already installed.
deps:
	@pkgs="$(APT_PACKAGES)"; command -v npm >/dev/null 2>&1 || pkgs="$$pkgs nodejs npm"; \
	if ! dpkg -s $$pkgs >/dev/null 2>&1; then \
		if [ "$$(id -u)" != "0" ]; then echo "run as root to install: $$pkgs"; exit 1; fi; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$pkgs; \
	fi

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: deps $(VENV)/.installed

# Front-end libraries for the visualize page come from the npm registry, served as static files.
static: venv
	@if [ -f visualize/package.json ]; then cd visualize && npm ci --no-audit --no-fund --silent; fi
	@if [ -f visualize/build_static.py ]; then $(PY) visualize/build_static.py; fi

# Regenerate the containerd gRPC stubs from registry/containerd/proto.
proto: venv
	$(PY) -m registry.containerd.generate

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: venv static lint
	$(VENV)/bin/pytest -p no:cacheprovider

test-fast: venv
	$(VENV)/bin/pytest -p no:cacheprovider -m "not slow"

demo: venv static
	$(PY) -m registry.demo

bench: venv static
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) staticfiles visualize/node_modules
