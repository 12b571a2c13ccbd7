# Aisle: two commands on a fresh machine.
#   make demo   the closed loop on the embedded default: history in, the stack up, Airflow's
#               scheduler runs ingest -> features -> drift -> retrain -> gate -> promotion over
#               the last weeks of both timelines; ends with both models live and a summary
#   make test   the test suite (what CI runs)
#   make test-fast  unit and DAG tests only (a few minutes), for everyday work
# Also: make stack (start everything; AISLE_PROFILE=production for Celery/PostgreSQL/Redis),
#       make stack-down, make browser (Debian's chromium for the UI test).
# Every target bootstraps .venv from requirements.lock; nothing is installed by hand.

PYTHON      ?= python3.11
VENV        := .venv
BIN         := $(VENV)/bin
UV_VERSION  := 0.13.9
# A local directory of wheels (this machine ships the CPU build of torch there); used when present.
WHEELS_DIR  ?= /opt/wheels
FIND_LINKS  := $(if $(wildcard $(WHEELS_DIR)),--find-links $(WHEELS_DIR),)
DATA_DIR    ?= data
export AISLE_DATA_DIR ?= $(abspath $(DATA_DIR))
export AIRFLOW_HOME   ?= $(abspath $(DATA_DIR))/airflow
export AIRFLOW_CONFIG ?= $(abspath airflow.cfg)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv java data demo stack stack-down browser test test-fast lint lock bench clean

venv: $(VENV)/.installed java

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --python $(BIN)/python $(FIND_LINKS) requirements.lock
	# recbole carries MovieLens-100k; its own dependencies are not needed (DESIGN.md section 3).
	# Airflow's Spark provider (SparkSubmitOperator, the production profile's AISLE_ENGINE=spark)
	# requires pyspark-client, which installs over pyspark's own files; spark-submit is pyspark's.
	$(BIN)/uv pip install --python $(BIN)/python --no-deps "recbole==1.2.1" \
		"apache-airflow-providers-apache-spark==6.3.4" -e .
	# Bytecode for every installed module, once: uv installs none, and with
	# PYTHONDONTWRITEBYTECODE set (as on the CI host) every process would compile each module it
	# imports, each time (importing Feast took 11.5 s that way, 6.2 s with bytecode). A few files
	# are not Python 3.11 (torch's py312 test helpers) and fail to compile; nothing imports them.
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	touch $@

data: venv
	$(BIN)/aisle data fetch

# The demo replays MovieLens a week per DAG run (the DAG's default is a day).
demo: export AISLE_INTERACTIONS_SCHEDULE ?= @weekly
demo: data
	$(BIN)/aisle demo

stack: venv
	$(BIN)/aisle stack up

stack-down: venv
	$(BIN)/aisle stack down

# AISLE_ENGINE=spark runs Apache Spark, which needs a Java runtime (17+); Debian's OpenJDK is
# installed here when none is on the PATH (needs root).
java:
	@command -v java >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

# The UI test drives Debian's chromium (headless); installed here when missing (needs root).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Two pytest-xdist workers: much of the suite waits on stacks, servers and schedulers, so two
# share the two cores well; tests that share a server stay on one worker (tests/conftest.py).
TEST_WORKERS ?= 2

# The project's own bytecode too (stale files are recompiled by their mtime): the suite starts
# hundreds of processes (Airflow tasks, servers, CLI runs) that import it.
PACKAGES = core features training serving monitoring aisle dags plugins

test: venv browser
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m compileall -q $(PACKAGES) >/dev/null
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

test-fast: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q tests/unit tests/dags

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11 \
		$(FIND_LINKS) --no-header --quiet

bench: data
	$(BIN)/python benchmarks/etl.py
	$(BIN)/python benchmarks/online_features.py
	$(BIN)/python benchmarks/training_set.py
	$(BIN)/python benchmarks/engines.py
	$(BIN)/python benchmarks/recommender.py
	$(BIN)/python benchmarks/buy_again.py
	$(BIN)/python benchmarks/pricing.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/catalogue.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/drift_replays.py
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/loop.py
	$(BIN)/python benchmarks/experiments.py
	$(BIN)/python benchmarks/experiment_e2e.py

clean:
	rm -rf $(VENV) $(DATA_DIR)
