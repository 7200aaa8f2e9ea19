# The README's two commands: `make demo` and `make test`. Everything else here is what they are made of.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
COLLECTIONS := $(CURDIR)/.collections
COLLECTION_SRC := $(CURDIR)/build/collections
RUN_DIR := $(CURDIR)/run
PYTHON ?= python3

export JAVA_HOME ?= /usr/lib/jvm/java-17-openjdk-amd64
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_LOCAL_TEMP := $(CURDIR)/build/ansible-tmp
export ANSIBLE_PYTHON_INTERPRETER := $(PY)
export PATH := $(BIN):$(PATH)

.PHONY: help setup system venv collection demo test lint sanity unit sandbox-up sandbox-down explain bench clean

help:
	@echo "make demo    - set up everything, start the sandbox and run the self-healing demo"
	@echo "make test    - set up everything and run the whole test suite (lint, sanity, unit, sandbox, e2e)"
	@echo "make sandbox-up / sandbox-down - start or stop the sandbox (state in run/sandbox.json)"
	@echo "make explain SNAPSHOTS=<file or dir> OUT=<file> - replay snapshots through the decision engine"
	@echo "make bench   - print the benchmarks' figures"

setup: system venv collection

system:
	@bash scripts/install-system.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

# The collection is built from its own tarball and installed into a project-local path, as a user would.
collection: venv
	@bash scripts/install-collection.sh

demo: setup
	@$(PY) -m sandbox demo --run-dir $(RUN_DIR)

test: setup
	@bash scripts/run-tests.sh

lint: venv
	@bash scripts/run-tests.sh lint

sanity: venv
	@bash scripts/run-tests.sh sanity

unit: venv
	@bash scripts/run-tests.sh unit

sandbox-up: setup
	@$(PY) -m sandbox up --run-dir $(RUN_DIR) --detach

sandbox-down:
	@test -x $(PY) && $(PY) -m sandbox down --run-dir $(RUN_DIR) || true

explain: setup
	@test -n "$(SNAPSHOTS)" -a -n "$(OUT)" || { echo "usage: make explain SNAPSHOTS=<file or dir> OUT=<file>"; exit 2; }
	@$(BIN)/ansible-playbook zerotouch.selfheal.explain -e snapshots="$(abspath $(SNAPSHOTS))" -e output="$(abspath $(OUT))"

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: sandbox-down
	rm -rf build $(COLLECTIONS) $(RUN_DIR)
