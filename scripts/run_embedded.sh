#!/usr/bin/env bash
# `make run`: Airflow standalone (SQLite, LocalExecutor) + an MLflow server, state in .modelkeeper/.
# Ctrl-C or TERM (to make, or to its process group) stops everything this script started,
# every time; running it again reuses the state.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${MODELKEEPER_STATE:-$ROOT/.modelkeeper}   # another folder: a second, separate instance
AIRFLOW_PORT=${AIRFLOW_PORT:-8080}
MLFLOW_PORT=${MLFLOW_PORT:-5000}

export PATH=$ROOT/.venv/bin:$PATH   # standalone starts its parts as `airflow ...` subprocesses
export AIRFLOW_HOME=$STATE/airflow
export AIRFLOW__CORE__DAGS_FOLDER=$ROOT/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$ROOT/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__PORT=$AIRFLOW_PORT
export AIRFLOW__API__HOST=127.0.0.1          # not reachable from other machines
# The public address: links (MLflow's airflow_run_url, notifications) are absolute. Set
# AIRFLOW__API__BASE_URL yourself behind a proxy.
export AIRFLOW__API__BASE_URL=${AIRFLOW__API__BASE_URL:-http://127.0.0.1:$AIRFLOW_PORT}
# Tasks run on this machine and reach the scheduler through the execution API. Its default
# is <base_url>/execution/, and :8080 without a base_url whatever [api] port says: name it,
# on loopback, so it follows AIRFLOW_PORT even when base_url is a proxy's address.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$AIRFLOW_PORT/execution/}
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30
export AIRFLOW__CORE__PARALLELISM=4            # a laptop, not a cluster: fewer worker processes
# Warm task processes (plugins/modelkeeper_airflow/warm.py): the executor's workers fork
# from a forkserver that imported pandas, scikit-learn, GX, Evidently and MLflow once, so a
# task does not pay ~10-20 s of imports; the scheduler itself stays lean.
# Python 3.11's forkserver ignores the scheduler's sys.path (and skips a preload it cannot
# import without a word): put plugins/ on its path explicitly.
export PYTHONPATH=$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}
export AIRFLOW__SCHEDULER__MP_START_METHOD=${AIRFLOW__SCHEDULER__MP_START_METHOD:-forkserver}
export AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD=${AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD-modelkeeper_airflow.warm}
# Short tasks: an idle scheduler looks for work 4 times a second instead of once, so the
# next task starts ~0.4 s sooner on average (docs/benchmarks.md measures its idle CPU).
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=${AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME:-0.25}
# Tasks may start before the API server answers; let them retry instead of dying.
export AIRFLOW__WORKERS__EXECUTION_API_RETRIES=10
export AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN=2
export AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX=20
export MODELKEEPER_STORAGE=$STATE/storage
export MODELKEEPER_MLFLOW_URI=http://127.0.0.1:$MLFLOW_PORT
export MODELKEEPER_AUDIT_DB=$STATE/audit.db
# The demo replays 2013 a week every few minutes (scoring, late labels, alarms on their own).
export MODELKEEPER_DEMO_FEED_SCHEDULE="${MODELKEEPER_DEMO_FEED_SCHEDULE:-*/5 * * * *}"
export MLFLOW_DISABLE_TELEMETRY=true
# modelkeeper uses tracking and the registry only: skip MLflow's job runner (three huey
# consumer processes polling the store on a 2-core machine).
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
# MLflow's client retries a refused call for ~4 min by default, under Airflow's own
# retries: keep its part short so an MLflow outage fails a task in seconds, then retries.
export MLFLOW_HTTP_REQUEST_MAX_RETRIES=3 MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=1
export GIT_PYTHON_REFRESH=quiet
mkdir -p "$STATE/mlflow" "$AIRFLOW_HOME" "$MODELKEEPER_STORAGE"

pids=()   # each started with setsid: its pid is the id of a session of its own
# The processes of our sessions: task processes move to process groups of their own
# (Airflow's supervisor calls setpgid), so killing the groups alone can leave them behind.
session_pids() {
  local sids=" ${pids[*]} "
  ps -e -o sid= -o pid= 2>/dev/null | while read -r sid pid; do
    if [[ $sids == *" $sid "* ]]; then echo "$pid"; fi
  done
}
signal_sessions() {  # $1: signal
  local pid
  for pid in "${pids[@]}"; do kill "-$1" -- "-$pid" 2>/dev/null || true; done
  for pid in $(session_pids); do kill "-$1" "$pid" 2>/dev/null || true; done
}
sessions_gone_within() {  # $1: seconds
  for _ in $(seq 1 $(($1 * 2))); do
    [[ -z $(session_pids) ]] && return 0
    sleep 0.5
  done
  [[ -z $(session_pids) ]]
}
cleanup() {  # $1: exit status (0 after Ctrl-C/TERM: stopping is what the user asked for)
  local rc=$1
  # A stop signal often comes twice (TERM to make's group reaches this script, and make
  # passes its own TERM on to it; Ctrl-C twice): ignore them from here on, so the cleanup
  # always runs to its end.
  trap '' INT TERM
  trap - EXIT
  echo; echo "modelkeeper: stopping..."
  if ((${#pids[@]})); then
    signal_sessions TERM
    if ! sessions_gone_within 30; then
      echo "modelkeeper: still running after 30 s, killing: $(session_pids | xargs)"
      signal_sessions KILL
      sessions_gone_within 10 || echo "modelkeeper: could not stop: $(session_pids | xargs)" >&2
    fi
  fi
  echo "modelkeeper: stopped (state kept in $STATE)"
  exit "$rc"
}
trap 'cleanup 0' INT TERM
trap 'cleanup $?' EXIT

for port in "$AIRFLOW_PORT" "$MLFLOW_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use: stop what runs there (or set AIRFLOW_PORT / MLFLOW_PORT)" >&2
    exit 1
  fi
done

echo "modelkeeper: starting MLflow on :$MLFLOW_PORT (log: $STATE/mlflow.log)"
setsid mlflow server --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1 \
  --backend-store-uri "sqlite:///$STATE/mlflow/mlflow.db" \
  --artifacts-destination "$STATE/mlflow/artifacts" >>"$STATE/mlflow.log" 2>&1 &
pids+=($!)

echo "modelkeeper: preparing Airflow in $AIRFLOW_HOME"
python scripts/bootstrap_airflow.py >"$STATE/bootstrap.log" 2>&1 || { tail -30 "$STATE/bootstrap.log"; exit 1; }
python -c "from modelkeeper.demo import land_next_weeks; from modelkeeper.data.storage import Storage; \
s = Storage(); n = len(list((s.landing_dir() / 'flights').glob('*.parquet'))); \
print('modelkeeper: demo data:', n, 'weeks landed' if n else 'landing 8 weeks', [p.name for p in land_next_weeks(s, 8)] if not n else '')"

echo "modelkeeper: starting Airflow standalone on :$AIRFLOW_PORT (log: $STATE/airflow.log)"
setsid airflow standalone >>"$STATE/airflow.log" 2>&1 &
pids+=($!)

wait_for() {  # url, name
  for _ in $(seq 1 180); do
    curl -sf -o /dev/null "$1" && return 0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "$2 exited; see logs in $STATE" >&2; exit 1; }; done
    sleep 2
  done
  echo "$2 did not come up in 6 minutes; see logs in $STATE" >&2; exit 1
}
wait_for "http://127.0.0.1:$MLFLOW_PORT/health" MLflow
wait_for "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" Airflow

password=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" \
  "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated" 2>/dev/null || echo "see $STATE/airflow.log")
cat <<MSG

  modelkeeper is up.
    Airflow UI  http://127.0.0.1:$AIRFLOW_PORT   login: admin / $password
    MLflow UI   http://127.0.0.1:$MLFLOW_PORT
  DAGs: retrain_flight_delay (weekly, on new labelled data, on alarms), score_flight_delay
        (new rows, a new champion), monitor_flight_delay (late labels, daily),
        modelkeeper_demo_feed (lands the next week every 5 minutes: flights to score, and the
        labels of the week before), modelkeeper_rollback (manual), modelkeeper_reconcile;
        retrain_us_births and retrain_mpls_stops (manual only: no feed lands their data;
        "make backtest MODEL=us_births" or "MODEL=mpls_stops" replays them).
  On a first start retrain_flight_delay trains the first champion (a few minutes); then
  score_flight_delay scores the demo's next week and monitor_flight_delay joins its labels
  when they land. To retrain now, trigger retrain_flight_delay with force_retrain=true;
  promotion_mode=approval makes it wait for you in the UI.
  Ctrl-C (or TERM to make) stops everything.

MSG
wait
