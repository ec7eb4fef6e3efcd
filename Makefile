# multiarch-kit: `make run` (the main job) and `make test` (the whole suite) work from a fresh clone.
# macOS ships Python 3.9: the venv step below says how to get 3.11+ and stops before pip does.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
KIT := $(VENV)/bin/multiarch-kit

.PHONY: venv lab run test test-fast test-desktop test-arm64 test-arm64-trimmed test-tools jupyter bench fuzz mutants down

# Reinstall only when the dependency list or the tested versions change; constraints.txt holds the versions
# the notebooks' stored outputs were checked with, so a new pandas release cannot change a table under nbval.
$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "multiarch-kit needs Python 3.11 or newer, and '$(PYTHON)' is $$($(PYTHON) -V 2>&1 || echo missing): install one (macOS: brew install python@3.12, or uv python install 3.12; any system: conda env create -f environment.yml) and run make PYTHON=python3.12 $(MAKECMDGOALS)" >&2; \
	  exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,dev]'
	touch $@

venv: $(VENV)/.installed

lab: venv
	$(KIT) lab up --container-builder

run: lab
	$(KIT) doctor
	$(KIT) notebooks --src notebooks --out results

test-tools:
	bash scripts/provision-test-tools.sh

# Everything: unit and engine tests, then every notebook under strict nbval (named here, not in addopts).
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg
test: lab test-tools
	$(PY) -m pytest tests notebooks $(NBVAL)

# Docker Desktop's shape, rehearsed here (root, Debian): a non-root reader with an engine it did not start, port
# 5000 held, Docker Hub's images from a stand-in mirror; every notebook under strict nbval. See the script's docstring.
test-desktop: lab
	$(PY) scripts/rehearse_desktop.py

# An arm64 engine here: a Debian arm64 VM under qemu-system-aarch64 (lab up --arm64-vm, made once, then only
# booted), used as the lab's engine through its Docker context: the VM's own tests, then the lessons that must hold
# on an arm64 engine, under strict nbval. The trimmed tier (.ci/run's) keeps 00 and 02 of the lessons.
# The whole tier names the lab registry by this machine's address (MULTIARCH_KIT_REGISTRY), as a second machine
# would: the VM reaches it through QEMU's network, not through a forwarded localhost. Then 10 runs on this
# machine's engine with the VM up (its multi-node and split sections), and the registry goes back to loopback.
ARM64_REGISTRY ?= $(shell hostname -I 2>/dev/null | cut -d' ' -f1):5000
NAMED := MULTIARCH_KIT_REGISTRY=$(ARM64_REGISTRY)
ARM64_ENV := DOCKER_CONTEXT=multiarch-kit-arm64 MULTIARCH_KIT_REHEARSAL=arm64 $(NAMED)
ARM64_NOTEBOOKS ?= 00-lab 01-one-tag-many-platforms 02-build-per-platform 03-manifest-list 04-one-command 07-verify
ARM64_SELECT ?=
test-arm64: lab
	$(NAMED) $(KIT) lab up --arm64-vm --container-builder
	$(ARM64_ENV) $(KIT) lab up
	$(ARM64_ENV) $(KIT) doctor
	$(ARM64_ENV) $(PY) -m pytest tests/arm64 $(ARM64_SELECT)
	$(ARM64_ENV) $(PY) -m pytest $(patsubst %,notebooks/%.ipynb,$(ARM64_NOTEBOOKS)) $(NBVAL)
	$(NAMED) $(PY) -m pytest notebooks/10-split-build.ipynb $(NBVAL)
	$(KIT) lab up --container-builder

# Without the bench test (its build base for an arm64 build platform takes minutes to make the first time).
test-arm64-trimmed:
	$(MAKE) test-arm64 ARM64_NOTEBOOKS="00-lab 02-build-per-platform" ARM64_SELECT='-k "not bench"'


# The fast tier: no engine needed (it may be stopped), no notebooks.
test-fast: venv
	$(PY) -m pytest -m "not engine"

# Loopback only; root (a provisioned Debian box) must say so explicitly to JupyterLab.
jupyter: lab
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

bench: lab
	$(PY) scripts/bench.py

# Property tests exploring: a fresh seed and more examples each run (make test's are fixed). An example found here
# becomes an @example in tests/ once it is understood.
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/test_fuzz.py tests/test_platforms.py -m "not engine" -q

# Remove a check from a copy of the package, one at a time; the tests that name it must fail.
mutants: venv
	$(PY) scripts/mutants.py

down: venv
	$(KIT) lab down
