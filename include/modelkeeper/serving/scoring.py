"""The champion at work: batch predictions, their destination and the prediction log.

The champion is loaded the way any MLflow consumer loads it (`mlflow.pyfunc` on
`models:/<name>@champion`, through the registry adapter). Predictions carry their key,
the model version, the score time, the prediction and (classification) the probability
of the positive class. They are written to the spec's destination and to the prediction
log, `prediction_log/<model>/date=YYYY-MM-DD/<run>.parquet` (by event date, the layout of
modelkeeper.data.partitions), which late labels are joined to. A prediction is written
once per key per model version: keys the log already holds for that version are dropped
(matched as modelkeeper.data.keys matches keys), and a rerun rewrites its own files.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelkeeper.data.keys import anti_join
from modelkeeper.data.partitions import read_partitioned, write_partitions
from modelkeeper.data.storage import run_key

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.objstore import Location
    from modelkeeper.data.storage import Storage

VERSION, SCORED_AT, PREDICTION, PROBABILITY = (
    "model_version",
    "scored_at",
    "prediction",
    "probability",
)
RUN = "run_id"
CHUNK = 1000  # latency is measured per 1k rows


def predict_timed(model: Any, X: pd.DataFrame, task: str) -> tuple[pd.DataFrame, list[float], int]:
    """Predictions (and probabilities), 1k rows at a time: (frame, ms per 1k rows, failed).

    `model` is a pyfunc model: `predict` enforces the logged signature and gives labels;
    the estimator underneath (`get_raw_model`) gives probabilities where it has them. A
    chunk the model cannot score is counted as failed, its rows left without a prediction.
    """
    raw = model.get_raw_model() if hasattr(model, "get_raw_model") else None
    proba_of = getattr(raw, "predict_proba", None) if task == "classification" else None
    preds = np.full(len(X), np.nan)
    probas = np.full(len(X), np.nan)
    timings: list[float] = []
    failed = 0
    for start in range(0, len(X), CHUNK):
        part = X.iloc[start : start + CHUNK]
        began = time.perf_counter()
        try:
            preds[start : start + len(part)] = np.asarray(model.predict(part)).reshape(-1)
            if proba_of is not None:
                probas[start : start + len(part)] = np.asarray(proba_of(part))[:, 1]
        except Exception:  # noqa: BLE001 - counted and reported; validation caught bad rows
            failed += len(part)
            continue
        timings.append((time.perf_counter() - began) * 1000 * CHUNK / max(len(part), 1))
    out = pd.DataFrame({PREDICTION: preds})
    if proba_of is not None:
        out[PROBABILITY] = probas
    return out, timings, failed


def predictions_frame(
    batch: pd.DataFrame,
    predicted: pd.DataFrame,
    spec: ModelSpec,
    version: str,
    run_id: str,
) -> pd.DataFrame:
    assert spec.scoring is not None
    ts = spec.data_schema.timestamp_column
    keep = list(dict.fromkeys([*spec.scoring.key, ts]))
    out = batch[keep].reset_index(drop=True).copy()
    out[VERSION] = version
    out[SCORED_AT] = datetime.now(UTC).isoformat()
    out[RUN] = run_id
    for col in predicted.columns:
        out[col] = predicted[col].to_numpy()
    return out


def log_dir(storage: Storage, model: str) -> Location:
    return storage.root / "prediction_log" / model


def read_log(
    spec: ModelSpec,
    storage: Storage,
    *,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    version: str | None = None,
) -> pd.DataFrame:
    """Logged predictions with event times in [since, until], reading only those days."""
    df = read_partitioned(
        storage,
        log_dir(storage, spec.name),
        ts_col=spec.data_schema.timestamp_column,
        since=since,
        until=until,
    )
    if version is not None and len(df):
        df = df[df[VERSION] == version]
    return df.reset_index(drop=True)


def drop_known(
    predictions: pd.DataFrame, spec: ModelSpec, storage: Storage, run_id: str
) -> tuple[pd.DataFrame, int]:
    """Predictions whose key this version has not logged yet (another run's), and how many
    were dropped; this run's own earlier attempt does not count (it is rewritten)."""
    if predictions.empty:
        return predictions, 0
    assert spec.scoring is not None
    ts = spec.data_schema.timestamp_column
    version = str(predictions[VERSION].iloc[0])
    logged = read_log(
        spec, storage, since=predictions[ts].min(), until=predictions[ts].max(), version=version
    )
    if logged.empty:
        return predictions, 0
    logged = logged[logged[RUN] != run_id]
    fresh = anti_join(predictions, logged, list(spec.scoring.key), spec)
    return fresh, len(predictions) - len(fresh)


def write_log(
    spec: ModelSpec, storage: Storage, run_id: str, predictions: pd.DataFrame
) -> list[str]:
    """This run's predictions into the log, one file per event date (a rerun rewrites)."""
    parts = write_partitions(
        storage,
        log_dir(storage, spec.name),
        predictions,
        ts_col=spec.data_schema.timestamp_column,
        run_id=run_id,
    )
    return [str(p.path) for p in parts]


def write_files_destination(
    spec: ModelSpec, storage: Storage, run_id: str, predictions: pd.DataFrame
) -> str:
    """Predictions to a files destination (a folder under the storage root, absolute, or
    a URI), one Parquet file per run, written whole (one PUT): a rerun replaces it."""
    assert spec.scoring is not None
    folder = spec.scoring.destination.path
    name = f"{run_key(run_id)}.parquet"
    return str(storage.write_parquet(predictions, storage.at(folder.rstrip("/")) / name))


def write_sql_destination(
    spec: ModelSpec, engine: Any, run_id: str, predictions: pd.DataFrame
) -> str:
    """Predictions to a SQL destination's table (the engine of its Airflow Connection);
    a rerun replaces its own rows."""
    import sqlalchemy as sa

    assert spec.scoring is not None
    dest = spec.scoring.destination
    with engine.begin() as conn:
        if sa.inspect(conn).has_table(dest.table):
            conn.execute(sa.text(f'DELETE FROM "{dest.table}" WHERE {RUN} = :run'), {"run": run_id})
        predictions.to_sql(dest.table, conn, index=False, if_exists="append")
    return f"{dest.conn_id}:{dest.table}"


def latency(timings: list[float]) -> tuple[float | None, float | None]:
    if not timings:
        return None, None
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 95))
