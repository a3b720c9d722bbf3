# atdata-lab: `make demo` runs the main job, `make test` runs every test.
# Both set everything up on a fresh machine (venv, packages, services).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test test-fast test-browser lint bench reliability setup system-deps sandbox-install voila lab clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of PyTorch (on this machine's disk); the torch extra's range then installs nothing more
	$(PY) -m pip install -q 'torch==2.13.0'
	$(PY) -m pip install -q -e '.[all,dev,torch,ray]'
	touch $(STAMP)

setup: $(STAMP)

# Debian packages the tests need (real Redis, PostgreSQL, Chromium). Installed only when missing.
system-deps:
	@bash scripts/install-system-deps.sh

demo: setup system-deps sandbox-install
	$(PY) -m atdata_lab.demo

# The sandbox PDS's pinned Node deps go into ~/.cache/atdata-lab once (about 2 minutes), and the
# AppView (atdata-app, pinned) into its own Python 3.12 venv there (about 20 s; skipped, with a note
# saying how to get Python 3.12, where there is none: the PDS sandbox works without it).
sandbox-install: setup system-deps
	$(PY) -c "from atdata_lab.sandbox import ensure_installed; ensure_installed()"
	$(PY) -c "from atdata_lab.sandbox import ensure_appview_installed; ensure_appview_installed(required=False)"

test: setup system-deps sandbox-install lint
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not browser and not sandbox and not slow and not redis and not postgres and not s3 and not reliability"

test-browser: setup system-deps
	$(PY) -m pytest -m browser tests/browser

voila: setup system-deps sandbox-install
	$(PY) -m voila notebooks/04-widgets-tour.ipynb

lab: setup system-deps sandbox-install
	$(PY) -m jupyterlab notebooks/

# Fails on lint errors, on unformatted code (run `ruff format` to fix), on type errors and on dead code.
lint: setup
	$(PY) -m ruff check atdata_lab tests benchmarks
	$(PY) -m ruff format --check atdata_lab tests benchmarks
	$(PY) -m mypy
	$(PY) -m vulture atdata_lab --min-confidence 80

bench: setup
	$(PY) benchmarks/run.py

reliability: setup system-deps sandbox-install
	$(PY) -m pytest -m reliability

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist *.egg-info
