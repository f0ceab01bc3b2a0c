# Two commands for users: `make run` and `make test`. Everything else is for developers.
PY := .venv/bin/python
UV := .venv/bin/uv
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: install run test test-fast test-scale bench lint lock clean-state backtest

.venv/.installed: pyproject.toml requirements.lock
	test -x $(PY) || python3.11 -m venv .venv
	$(PY) -m pip install -q "uv==0.13.9"
	$(UV) pip sync --python $(PY) requirements.lock
	$(UV) pip install --python $(PY) --no-deps -e .
	touch $@

install: .venv/.installed

## Start Airflow (:8080) and MLflow (:5000) on local state in .modelkeeper/ (AIRFLOW_PORT=…
## MLFLOW_PORT=… to move them); Ctrl-C or TERM stops both.
run: install
	./scripts/run_embedded.sh

# Two workers: the runtime tier (a real Airflow, mostly waiting on it) runs beside the rest.
XDIST := -n 2 --dist loadgroup --no-loadscope-reorder

## The whole suite, end-to-end DAG runs included (CI runs it, then test-scale).
test: install
	$(PY) -m pytest $(XDIST) -m "not scale"

## The compose topology run natively with two Celery workers: 100 specs, 20 concurrent
## retrains, a killed worker (~25 min on 2 cores; needs the local Postgres and Redis).
test-scale: install
	$(PY) -m pytest tests/scale -m scale

## Unit, operator and DAG-integrity tests only; needs no Postgres, Redis or running Airflow.
test-fast: install
	$(PY) -m pytest $(XDIST) -m "not slow and not postgres and not scale"

## Speed and memory of the stages (minutes); writes docs/benchmarks.md. `SECTIONS=...` for some.
bench: install
	$(PY) -m bench $(SECTIONS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

lock:
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

## Forget all local Airflow/MLflow state (runs, models, audit log).
clean-state:
	rm -rf .modelkeeper

## Replay a model's data and compare retraining policies: backtest/<MODEL>/report.{html,json}.
MODEL ?= flight_delay
backtest: install
	$(PY) -m modelkeeper.backtest $(MODEL) $(BACKTEST_ARGS)
