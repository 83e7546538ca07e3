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
# more `nengjian sim` options for make run, e.g. SIM_ARGS="--speed 12 --dir /tmp/sim" (see nengjian sim --help)
SIM_ARGS ?=
PYTEST_ARGS ?=
# The sim tests mostly wait on simulated time and sockets: four workers on two cores cut CI from ~17 to
# ~11 minutes. A real rig (--port) is one gateway: PYTEST_WORKERS=0. worksteal: an idle worker takes tests
# queued on a busy one (the long e2e tests otherwise end the run on one worker while three wait).
PYTEST_WORKERS ?= 4

.PHONY: venv run test lint bench clean firmware-sim browser

$(STAMP): requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/nengjian sim --duration $(DURATION) --heap $(HEAP) $(SIM_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check firmware boards host tests bench tools
	$(BIN)/python tools/typecheck.py

test: $(STAMP) lint firmware-sim browser
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The status page's e2e test opens the page in headless Chromium with CJK fonts, both from Debian's
# packages: installed once where apt is at hand and Chromium is not (CI's fresh machine); else nothing.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium and fonts-noto-cjk (apt)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium fonts-noto-cjk; } >/dev/null || echo "chromium not installed: the status page's browser test will say so"; \
	fi

# The sim board runs the firmware compiled to .mpy, as a gateway does (build/sim-mpy).
firmware-sim: $(STAMP)
	$(BIN)/python -c "from nengjian_host.sim import build; print('sim firmware:', build.firmware_path())"

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) run build .pytest_cache .ruff_cache
