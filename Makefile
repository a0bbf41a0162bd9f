PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
# `make bench` runs every row of the targets table (`idnode bench --targets`, about 40 minutes: it seeds 10M
# identifiers for the scale rows); `make bench SCENARIOS="hs-udp-hot rest-cold"` runs only those
# (see `idnode bench --list`), `make bench SCENARIOS=all` every scenario.
SCENARIOS ?=
# `make bench SCENARIOS=all RECORDS=small` (or mixed): the kind of records (`idnode bench --records`; default large).
RECORDS ?=

.PHONY: run test bench bench-quick clean

# pip -qq: errors only (a machine's pip config may warn about missing find-links
# on every package, which would bury the node admin secret `make run` prints once).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/idnode --home var init --if-missing
	$(BIN)/idnode --home var serve

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The harness's extra (matplotlib for the plots) on top of the usual install.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -qq -e '.[test,bench]'
	touch $(BENCH_STAMP)

# Full runs: 1M identifiers, 10 s per run; results, tables and plots in bench/results/.
bench: $(BENCH_STAMP)
	$(BIN)/idnode bench $(if $(SCENARIOS),$(if $(RECORDS),--records $(RECORDS)) $(SCENARIOS),--targets)

# Smoke run (under 2 minutes, 10k identifiers): checks the harness works, not a timing.
bench-quick: $(BENCH_STAMP)
	$(BIN)/idnode bench --quick --output bench/results/quick $(if $(RECORDS),--records $(RECORDS)) $(SCENARIOS)

clean:
	rm -rf $(VENV) build *.egg-info
