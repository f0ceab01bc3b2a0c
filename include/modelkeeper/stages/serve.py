"""score and watch: the champion at work on new rows, and how those rows compare.

score predicts with `models:/<model>@champion` loaded the way any MLflow consumer loads
it (pyfunc), writes the predictions to the spec's destination and the prediction log
(once per key per version), and records volume and latency. watch measures the scored
batch's drift against the champion's out-of-sample holdout (features and prediction)
and its data quality, into the monitoring history.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from modelkeeper.contracts import lineage as L
from modelkeeper.contracts.errors import TransientError
from modelkeeper.contracts.results import Scored, Watched

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.contracts.results import Accepted
    from modelkeeper.stages.workspace import Run, Workspace

log = logging.getLogger(__name__)


def score(ws: Workspace, run: Run, accepted: Accepted, *, sql_engine: Any = None) -> Scored:
    """Predictions of the accepted rows; `sql_engine` is the destination's database when
    the spec writes to SQL. Scored.version is None when there is nothing to score with."""
    from modelkeeper.serving import pending, scoring

    spec, storage = ws.spec, ws.storage
    owed = pending.owed(storage, spec, run.run_id)  # earlier batches without predictions
    if not accepted.path and not owed:
        return Scored(version=None, rows=0, note="nothing accepted to score")
    model, version = ws.registry.load_champion_pyfunc(ws.name)
    if model is None:
        waiting = accepted.rows + sum(len(rows) for _, rows in owed)
        return Scored(version=None, rows=0, note=f"no champion to score with: {waiting} rows wait")
    batch = _with_owed(ws, accepted, owed)
    predicted, timings, failed = scoring.predict_timed(
        model, batch[spec.features.all], spec.target.task
    )
    ok = predicted[scoring.PREDICTION].notna()
    predictions = scoring.predictions_frame(
        batch[ok.to_numpy()], predicted[ok], spec, version, run.run_id
    )
    fresh, known = scoring.drop_known(predictions, spec, storage, run.run_id)
    if spec.scoring.destination.kind == "files":
        destination = scoring.write_files_destination(spec, storage, run.run_id, fresh)
    else:
        destination = scoring.write_sql_destination(spec, sql_engine, run.run_id, fresh)
    log_files = scoring.write_log(spec, storage, run.run_id, fresh)
    path = storage.write_parquet(
        fresh, storage.snapshot_dir(spec.name, run.run_id) / "predictions.parquet"
    )
    rows_path = None
    if owed:  # what watch measures: every row scored here
        folder = storage.snapshot_dir(spec.name, run.run_id)
        rows_path = str(storage.write_parquet(batch, folder / "scored_rows.parquet"))
        log.info(
            "caught up %s rows accepted by earlier runs that never stored their predictions: %s",
            sum(len(rows) for _, rows in owed),
            ", ".join(earlier for earlier, _ in owed),
        )
    pending.settle(storage, spec.name, [run.run_id, *(e for e, _ in owed)], by=run.run_id)
    p50, p95 = scoring.latency(timings)
    volume = {"rows": len(fresh), "failed_rows": failed, "p50_ms_per_1k": p50, "p95_ms_per_1k": p95}
    window = _span(ws, batch, accepted)
    _record(ws, run, "scoring", volume, version=version, rows=len(fresh), window=window)
    log.info(
        "scored %s rows with %s v%s (%s already predicted by it, %s failed); predict "
        "p50 %.1f / p95 %.1f ms per 1k rows; written to %s and the prediction log",
        len(fresh),
        ws.name,
        version,
        known,
        failed,
        p50 or 0,
        p95 or 0,
        destination,
    )
    return Scored(
        version=version,
        rows=len(fresh),
        skipped_known=known,
        failed=failed,
        p50_ms_per_1k=p50,
        p95_ms_per_1k=p95,
        log_files=log_files,
        destination=destination,
        path=str(path),
        rows_path=rows_path,
        caught_up=[earlier for earlier, _ in owed],
    )


def watch(ws: Workspace, run: Run, accepted: Accepted, scored: Scored) -> Watched:
    """Drift and quality of the scored batch, against the serving version's holdout."""
    from modelkeeper.monitoring import alarms
    from modelkeeper.monitoring.drift import DriftError, compute_drift

    spec = ws.spec
    batch = ws.storage.read_parquet(scored.rows_path or accepted.path)
    current = _with_probability(ws, batch, scored)
    reference = _holdout_reference(ws, scored.version)
    reports = ws.storage.report_dir(spec.name, run.run_id)
    extra = ["prediction"] if "prediction" in current and "prediction" in reference else []
    try:
        drift = compute_drift(
            reference,
            current,
            spec,
            extra_numeric=extra,
            html_path=reports / L.REPORT_DRIFT if ws.reports else None,
            json_path=reports / L.DRIFT_JSON if ws.reports else None,
        )
    except DriftError as exc:
        log.warning("drift not computed: %s", exc)
        drift = None
    quality = alarms.quality(batch, spec)
    window = {"version": scored.version, "rows": len(batch), "window": _span(ws, batch, accepted)}
    if drift is not None:
        _record(ws, run, "drift", {"drift_share": drift.drifted_share}, **window)
        details = {
            f"column:{col}": (r["score"], {k: r[k] for k in ("drifted", "method", "threshold")})
            for col, r in drift.columns.items()
        }
        _record(ws, run, "drift", details, **window)
    _record(ws, run, "quality", quality, **window)
    worst = max(quality.items(), key=lambda kv: kv[1]) if quality else None
    log.info(
        "scored batch of %s rows vs v%s's holdout: %s; worst quality %s",
        len(batch),
        scored.version,
        drift.summary if drift else "drift not computed",
        worst,
    )
    return Watched(
        version=scored.version,
        rows=len(batch),
        drift_share=None if drift is None else drift.drifted_share,
        drift_summary=None if drift is None else drift.summary,
        prediction_drift=None if drift is None else drift.columns.get("prediction"),
        worst_quality=None if worst is None else {"measure": worst[0], "share": worst[1]},
    )


def _with_owed(
    ws: Workspace, accepted: Accepted, owed: list[tuple[str, pd.DataFrame]]
) -> pd.DataFrame:
    """This run's accepted rows after the rows earlier runs still owe, one row per key (the
    newest accepted wins: a corrected row re-landed since)."""
    import pandas as pd

    frames = [rows for _, rows in owed]
    if accepted.path:
        frames.append(ws.storage.read_parquet(accepted.path))
    batch = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    if owed:
        key = list(ws.spec.scoring.key)
        batch = batch.drop_duplicates(subset=key, keep="last").reset_index(drop=True)
    return batch


def _span(ws: Workspace, batch: pd.DataFrame, accepted: Accepted) -> Accepted:
    """`accepted` with the event-time span of the rows actually scored (owed rows too)."""
    from dataclasses import replace

    ts = batch[ws.spec.data_schema.timestamp_column]
    if ts.empty:
        return accepted
    return replace(accepted, start=ts.min().isoformat(), end=ts.max().isoformat())


def _with_probability(ws: Workspace, batch: pd.DataFrame, scored: Scored) -> pd.DataFrame:
    """The batch with the probability score wrote for each key, as `prediction`."""
    from modelkeeper.serving import scoring

    predictions = ws.storage.read_parquet(scored.path) if scored.path else None
    if predictions is None or not len(predictions) or scoring.PROBABILITY not in predictions:
        return batch.copy()
    key = list(ws.spec.scoring.key)
    merged = batch.merge(predictions[[*key, scoring.PROBABILITY]], on=key, how="left")
    return merged.rename(columns={scoring.PROBABILITY: "prediction"})


def _holdout_reference(ws: Workspace, version: str | None) -> pd.DataFrame:
    """The version's holdout with its own out-of-sample prediction (evaluate stored it);
    a version from before that has only its training sample."""
    info = ws.registry.get_version(ws.name, version)
    try:
        return ws.run_frame(info.run_id, L.HOLDOUT_SCORED_ARTIFACT)
    except TransientError:
        raise
    except Exception as exc:  # an older champion: no out-of-sample reference stored
        log.warning("no out-of-sample reference for v%s: %s", info.version, exc)
        return ws.run_frame(info.run_id, L.REFERENCE_ARTIFACT)


def _record(
    ws: Workspace,
    run: Run,
    kind: str,
    values: dict[str, Any],
    *,
    version: str | None,
    rows: int,
    window: Accepted,
) -> None:
    """Measurements of one batch into the history: {metric: value or (value, detail)}."""
    from modelkeeper.monitoring.history import Measurement

    if ws.history is None:
        return
    base = {
        "version": version,
        "run_id": run.run_id,
        "dag_id": run.dag_id,
        "window_start": window.start,
        "window_end": window.end,
        "rows": rows,
    }
    measurements = []
    for metric, value in values.items():
        value, detail = value if isinstance(value, tuple) else (value, {})
        measurements.append(Measurement(ws.spec.name, kind, metric, value, detail=detail, **base))
    ws.history.record(measurements)
