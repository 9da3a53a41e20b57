# One entry point for people and CI alike. Every target installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[worker,dev,dashboard,tracing]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.demo

# The suite under coverage (lines and branches; see [tool.coverage.run] in pyproject.toml):
# the figure is printed, and `make test` fails below fail_under. The tests run in TEST_WORKERS
# xdist processes (most of them wait on workers, leases and sleeps, so more processes than
# cores pay); pytest-cov measures each and combines their data into .coverage. Not
# --dist loadgroup nor loadscope: they schedule by node id, and schemathesis' cases of
# tests/dashboard/test_schemathesis.py share one, so all but one would silently not run.
# The 25 slowest tests are listed at the end: what to shorten when the suite grows.
TEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/coverage erase
	$(BIN)/python -m pytest -m "not soak" -n $(TEST_WORKERS) --durations=25 \
	  --cov --cov-report= --cov-fail-under=0
	@echo "coverage (lines and branches): $$($(BIN)/coverage report --format=total)%"
	@$(BIN)/coverage report > /dev/null || { $(BIN)/coverage report; exit 2; }

lint: $(STAMP)
	$(BIN)/ruff check producer worker examples benchmarks tests
	$(BIN)/ruff format --check producer worker examples benchmarks tests
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The benchmark (benchmarks/): the bench extra in the main venv, and Celery in a venv of its
# own inside it (Celery needs redis-py >= 6.1, arq < 6). A quick run:
#   make bench BENCH_ARGS="--scale 0.05"      (see python -m benchmarks --help)
# Sluice on 1, 2 and 4 workers (docs/performance.md, "Scale-out"):
#   make bench BENCH_ARGS="--workloads scale-out,tiny --systems sluice,sluicex2,sluicex4"
BENCH_ARGS  ?=
CELERY_VENV ?= $(VENV)/celery

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[worker,dev,bench]'
	touch $@

$(CELERY_VENV)/.installed:
	$(PYTHON) -m venv $(CELERY_VENV)
	$(CELERY_VENV)/bin/pip install --quiet --upgrade pip
	$(CELERY_VENV)/bin/pip install --quiet 'celery[redis]>=5.4,<6' 'urllib3>=2'
	touch $@

bench: $(VENV)/.bench-installed $(CELERY_VENV)/.installed
	$(BIN)/python -m benchmarks --celery-python $(CELERY_VENV)/bin/python $(BENCH_ARGS)

soak: $(STAMP)
	$(BIN)/python -m pytest -m soak -p no:cacheprovider

clean:
	rm -rf $(VENV) .sluice .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* site
