# `make run`: set up what is missing, then a headless editor on the demo project, bridge on :8080.
# `make test`: the same set-up (plus Debian's chromium for the dashboard test), then lint and
# the whole test suite.
# `make bench`: the same set-up, then benchmarks P1-P7 (docs/BENCHMARKS.md); BENCH_ARGS=--quick
# for a shorter run.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test unit lint setup godot browser display clean bench

setup: $(STAMP) godot

$(STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

godot:
	@tools/install_godot >/dev/null

# Debian's chromium + chromium-driver for the dashboard's browser test (apt-get, as root).
browser:
	@tools/ensure_chromium

# Debian's Xvfb + Mesa llvmpipe, so launched games render for screenshots (apt-get, as root).
display:
	@tools/ensure_xvfb

run: setup display
	@exec tools/run

lint: $(STAMP)
	$(VENV)/bin/ruff check sidecar tests tools
	$(VENV)/bin/ruff format --check sidecar tests tools
	$(VENV)/bin/mypy
	$(VENV)/bin/gdlint addons tests/gd
	$(VENV)/bin/gdformat --check addons tests/gd

# The fast subset: everything that needs no Godot, in seconds.
unit: $(STAMP)
	GDB_UNIT_ONLY=1 $(VPY) -m pytest -q -m "not godot and not slow" $(PYTEST_ARGS)

# Two workers: the suite mostly waits on editors and games. Tests that measure CPU or
# latency against a limit (marker `timing`) run alone afterwards. Exit 5 is "none selected".
test: setup browser display lint
	GODOT="$$(tools/install_godot)" $(VPY) -m pytest -n 2 -m "not timing" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	GODOT="$$(tools/install_godot)" $(VPY) -m pytest -m timing $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: setup
	GODOT="$$(tools/install_godot)" $(VPY) tools/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .godot .pytest_cache .ruff_cache .hypothesis
