# Nengjian: two commands on a fresh machine.
#   make run    start the gateway on the sim board with simulated meters and a local platform
#   make test   install what is needed and run every test
#   make lint   ruff, then mypy over the firmware against each board's MicroPython stubs
#               (tools/typecheck.py: the ESP32 boards against the ESP32 port, the sim against unix)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DURATION ?= 0
HEAP ?= 320k
PYTEST_ARGS ?=
# The sim tests mostly wait on simulated time and sockets: four workers on two cores cut CI from ~17 to
# ~11 minutes. A real rig (--port) is one gateway: PYTEST_WORKERS=0.
PYTEST_WORKERS ?= 4

.PHONY: venv run test lint bench clean firmware-sim

$(STAMP): requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/nengjian sim --duration $(DURATION) --heap $(HEAP)

lint: $(STAMP)
	$(BIN)/ruff check firmware boards host tests bench tools
	$(BIN)/python tools/typecheck.py

test: $(STAMP) lint firmware-sim
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The sim board runs the firmware compiled to .mpy, as a gateway does (build/sim-mpy).
firmware-sim: $(STAMP)
	$(BIN)/python -c "from nengjian_host.sim import build; print('sim firmware:', build.firmware_path())"

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) run build .pytest_cache .ruff_cache
