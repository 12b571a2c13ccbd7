# Aisle: two commands on a fresh machine.
#   make demo   fetch the data sets, replay them through the ingest DAGs, print what landed where
#   make test   the test suite (what CI runs)
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

.PHONY: venv data demo test lint lock bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --python $(BIN)/python $(FIND_LINKS) requirements.lock
	# recbole carries MovieLens-100k; its own dependencies are not needed (DESIGN.md section 3).
	$(BIN)/uv pip install --python $(BIN)/python --no-deps "recbole==1.2.1" -e .
	touch $@

data: venv
	$(BIN)/aisle data fetch

# The demo replays MovieLens a week per DAG run (the DAG's default is a day: 215 runs).
demo: export AISLE_INTERACTIONS_SCHEDULE ?= @weekly
demo: data
	$(BIN)/aisle demo

test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11 \
		$(FIND_LINKS) --no-header --quiet

bench: data
	$(BIN)/python benchmarks/etl.py
	$(BIN)/python benchmarks/online_features.py
	$(BIN)/python benchmarks/training_set.py
	$(BIN)/python benchmarks/recommender.py
	$(BIN)/python benchmarks/pricing.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/catalogue.py
	$(BIN)/python benchmarks/drift.py
	$(BIN)/python benchmarks/drift_replays.py

clean:
	rm -rf $(VENV) $(DATA_DIR)
