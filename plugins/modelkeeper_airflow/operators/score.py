"""The champion at work: score new rows, watch the scored batch, measure late labels, alarm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelkeeper.contracts.handoff import Handoff
from modelkeeper_airflow.links import DriftReportLink, MlflowRunLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.monitoring.alarms import Alarm
    from modelkeeper.serving.scoring import Scored


@dataclass(frozen=True)
class Watched(Handoff):
    """watch's result: drift and quality of one scored batch."""

    version: str | None
    rows: int
    drift_share: float | None = None
    drift_summary: str | None = None
    prediction_drift: dict | None = None
    worst_quality: dict | None = None


@dataclass(frozen=True)
class Measured(Handoff):
    """measure's result: realized and estimated metrics of the windows it looked at."""

    joined: int  # predictions that have their label now
    pending: int  # predictions still waiting for one
    measurements: list[dict]  # the primary metric's, for the alarm


class ScoreOperator(ModelkeeperOperator):
    """Predict with `models:/<model>@champion` (pyfunc, as any consumer would) on the rows
    validate accepted; write them to the destination and the prediction log.

    :param accepted: the scoring stream's validate result (its `.output`).
    """

    template_fields: Sequence[str] = ("model", "accepted")

    def __init__(self, *, accepted: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.accepted = accepted

    def stage(self, context: Any) -> Scored:
        from airflow.sdk.exceptions import AirflowSkipException

        from modelkeeper.contracts.results import Accepted
        from modelkeeper.monitoring.history import Measurement
        from modelkeeper.serving import scoring

        spec, registry, storage, run_id = self.spec, self.registry, self.storage, context["run_id"]
        accepted = Accepted.from_dict(self.accepted)
        if not accepted.path:
            raise AirflowSkipException("nothing accepted to score")
        batch = self.storage.read_parquet(accepted.path)
        name = spec.registered_model_name
        model, version = registry.load_champion_pyfunc(name)
        if model is None:
            raise AirflowSkipException("no champion to score with")
        predicted, timings, failed = scoring.predict_timed(
            model, batch[spec.features.all], spec.target.task
        )
        ok = predicted[scoring.PREDICTION].notna()
        predictions = scoring.predictions_frame(
            batch[ok.to_numpy()], predicted[ok], spec, version, run_id
        )
        fresh, known = scoring.drop_known(predictions, spec, storage, run_id)
        destination = self._write_destination(fresh, run_id)
        log_files = scoring.write_log(spec, storage, run_id, fresh)
        path = storage.write_parquet(
            fresh, storage.snapshot_dir(spec.name, run_id) / "predictions.parquet"
        )
        p50, p95 = scoring.latency(timings)
        self.history.record(
            [
                Measurement(
                    spec.name,
                    "scoring",
                    metric,
                    value,
                    version=version,
                    rows=len(fresh),
                    window_start=accepted.start,
                    window_end=accepted.end,
                    run_id=run_id,
                    dag_id=context["dag"].dag_id,
                )
                for metric, value in (
                    ("rows", len(fresh)),
                    ("failed_rows", failed),
                    ("p50_ms_per_1k", p50),
                    ("p95_ms_per_1k", p95),
                )
            ]
        )
        self.log.info(
            "scored %s rows with %s v%s (%s already predicted by it, %s failed); predict "
            "p50 %.1f / p95 %.1f ms per 1k rows; written to %s and the prediction log",
            len(fresh),
            name,
            version,
            known,
            failed,
            p50 or 0,
            p95 or 0,
            destination,
        )
        return scoring.Scored(
            version=version,
            rows=len(fresh),
            skipped_known=known,
            failed=failed,
            p50_ms_per_1k=p50,
            p95_ms_per_1k=p95,
            log_files=log_files,
            destination=destination,
            path=str(path),
        )

    def _write_destination(self, predictions: Any, run_id: str) -> str:
        from modelkeeper.serving import scoring

        spec = self.spec
        dest = spec.scoring.destination
        if dest.kind == "files":
            return scoring.write_files_destination(spec, self.storage, run_id, predictions)
        import sqlalchemy as sa
        from airflow.sdk import BaseHook

        engine = BaseHook.get_connection(dest.conn_id).get_hook().get_sqlalchemy_engine()
        with engine.begin() as conn:  # a rerun replaces its own rows
            if sa.inspect(conn).has_table(dest.table):
                conn.execute(
                    sa.text(f'DELETE FROM "{dest.table}" WHERE {scoring.RUN} = :run'),
                    {"run": run_id},
                )
            predictions.to_sql(dest.table, conn, index=False, if_exists="append")
        return f"{dest.conn_id}:{dest.table}"


class WatchOperator(ModelkeeperOperator):
    """Drift of a scored batch against the champion's out-of-sample holdout (features and
    predictions), and its data quality; every number goes to the history.

    :param accepted: the scoring stream's validate result; :param scored: score's result.
    """

    template_fields: Sequence[str] = ("model", "accepted", "scored")
    # Its drift report stays in the run's report folder (no MLflow run holds it): the
    # link opens it there, served by the UI plugin.
    operator_extra_links = (MlflowRunLink(), DriftReportLink())

    def __init__(self, *, accepted: Any, scored: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.accepted = accepted
        self.scored = scored

    def stage(self, context: Any) -> Watched:
        import tempfile

        import pandas as pd

        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Accepted
        from modelkeeper.monitoring import alarms as monitoring
        from modelkeeper.monitoring.drift import DriftError, compute_drift
        from modelkeeper.monitoring.history import Measurement
        from modelkeeper.serving import scoring
        from modelkeeper_airflow import links

        spec, registry, run_id = self.spec, self.registry, context["run_id"]
        scored = scoring.Scored.from_dict(self.scored)
        accepted = Accepted.from_dict(self.accepted)
        batch = self.storage.read_parquet(accepted.path)
        predictions = self.storage.read_parquet(scored.path) if scored.path else pd.DataFrame()
        version = registry.get_version(spec.registered_model_name, scored.version)
        current = batch.copy()
        key = list(spec.scoring.key)
        if len(predictions) and scoring.PROBABILITY in predictions:
            merged = current.merge(predictions[[*key, scoring.PROBABILITY]], on=key, how="left")
            current = merged.rename(columns={scoring.PROBABILITY: "prediction"})
        with tempfile.TemporaryDirectory() as tmp:
            try:
                reference = pd.read_parquet(
                    registry.download(version.run_id, L.HOLDOUT_SCORED_ARTIFACT, tmp)
                )
            except Exception as exc:  # an older champion: no out-of-sample reference stored
                if isinstance(exc, ConnectionError):
                    raise
                self.log.warning("no out-of-sample reference for v%s: %s", version.version, exc)
                reference = pd.read_parquet(
                    registry.download(version.run_id, L.REFERENCE_ARTIFACT, tmp)
                )
        reports = self.storage.report_dir(spec.name, run_id)
        extra = ["prediction"] if "prediction" in current and "prediction" in reference else []
        try:
            drift = compute_drift(
                reference,
                current,
                spec,
                extra_numeric=extra,
                html_path=reports / L.REPORT_DRIFT,
                json_path=reports / "drift.json",
            )
        except DriftError as exc:
            self.log.warning("drift not computed: %s", exc)
            drift = None
        base = {
            "version": scored.version,
            "run_id": run_id,
            "dag_id": context["dag"].dag_id,
            "window_start": accepted.start,
            "window_end": accepted.end,
            "rows": len(batch),
        }
        rows = []
        if drift is not None:
            rows.append(Measurement(spec.name, "drift", "drift_share", drift.drifted_share, **base))
            rows += [
                Measurement(
                    spec.name,
                    "drift",
                    f"column:{col}",
                    r["score"],
                    detail={
                        "drifted": r["drifted"],
                        "method": r["method"],
                        "threshold": r["threshold"],
                    },
                    **base,
                )
                for col, r in drift.columns.items()
            ]
        quality = monitoring.quality(batch, spec)
        rows += [Measurement(spec.name, "quality", k, v, **base) for k, v in quality.items()]
        self.history.record(rows)
        if (reports / L.REPORT_DRIFT).exists():
            self.push_link(
                context,
                L.LINK_DRIFT_REPORT,
                lambda: links.report_url(spec.name, run_id, L.REPORT_DRIFT),
            )
        worst = max(quality.items(), key=lambda kv: kv[1]) if quality else None
        self.log.info(
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


class MeasureOperator(ModelkeeperOperator):
    """Join the labels that arrived to the prediction log; realized metrics where a window
    has enough labels, CBPE estimates from the probabilities everywhere; into the history.

    :param labels: the labels stream's validate result (None when nothing new arrived).
    """

    template_fields: Sequence[str] = ("model", "labels")

    def __init__(self, *, labels: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = labels

    def stage(self, context: Any) -> Measured:
        import pandas as pd

        from modelkeeper.data.pool import load_pool
        from modelkeeper.data.streams import stream_spec
        from modelkeeper.monitoring import alarms as monitoring
        from modelkeeper.monitoring import performance
        from modelkeeper.monitoring.history import Measurement
        from modelkeeper.serving import scoring

        spec, storage, run_id = self.spec, self.storage, context["run_id"]
        policy, ts = spec.monitoring, spec.data_schema.timestamp_column
        newest = scoring.read_log(spec, storage)  # (dates only: see the window below)
        if newest.empty:
            return Measured(0, 0, [])
        # Windows that can still change: labels take expected_delay_days to arrive.
        horizon = pd.Timedelta(days=spec.labels.expected_delay_days + 3 * policy.window_days)
        since = newest[ts].max() - horizon
        predictions = newest[newest[ts] >= since].reset_index(drop=True)
        labels = load_pool(stream_spec(spec, "labels"), storage, since=since)
        joined = monitoring.join_labels(predictions, labels, spec)
        label = spec.label_column
        slices = [f.column for f in policy.slice_floors]
        found: list[performance.Measurement] = []
        rows: list[Measurement] = []
        for version, part in joined.groupby(scoring.VERSION):
            common = dict(
                time_column=ts,
                every=f"{policy.window_days}D",
                start=policy.window_anchor,
                slices=slices,
            )
            real = performance.realized(
                part,
                label=label,
                proba=scoring.PROBABILITY,
                min_rows=spec.labels.min_rows,
                **common,
            )
            est = performance.estimated(
                part,
                proba=scoring.PROBABILITY,
                calibrator=self._calibrator(str(version)),
                min_rows=1,
                **common,
            )
            for m in (*real, *est):
                rows.append(
                    Measurement(
                        spec.name,
                        m.kind,
                        m.metric,
                        m.value,
                        version=str(version),
                        window_start=m.window_start,
                        window_end=m.window_end,
                        rows=m.rows,
                        slice_column=m.slice_column,
                        slice_value=m.slice_value,
                        run_id=run_id,
                        dag_id=context["dag"].dag_id,
                    )
                )
                if m.metric == spec.metrics.primary:
                    found.append(m)
        self.history.record(rows)
        have = int(joined[label].notna().sum())
        self.log.info(
            "%s predictions joined with their label, %s pending; %s",
            have,
            len(joined) - have,
            "; ".join(
                f"{m.kind} {m.metric} {m.value:.3f} ({m.window_start[:10]}, {m.rows} rows)"
                for m in found
                if m.slice_column is None
            )
            or "no window measured",
        )
        return Measured(
            joined=have,
            pending=len(joined) - have,
            measurements=[m.to_dict() for m in found],
        )

    def _calibrator(self, version: str):  # noqa: ANN202
        import json
        import tempfile

        from modelkeeper.contracts import lineage as L
        from modelkeeper.monitoring.performance import Calibrator

        info = self.registry.get_version(self.spec.registered_model_name, version)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.registry.download(info.run_id, L.CALIBRATION_ARTIFACT, tmp)
                return Calibrator.from_dict(json.loads(path.read_text()))
            except Exception as exc:
                if isinstance(exc, ConnectionError):
                    raise
                self.log.warning(
                    "v%s has no stored calibration (%s): raw probabilities", version, exc
                )
                return None


class AlarmOperator(ModelkeeperOperator):
    """Raise an alarm when drift or decay crosses the spec's thresholds: an Asset event
    that triggers retrain_<model>, with the reason in its extra; tell the owner.

    Within the cooldown a second alarm is recorded as suppressed and no event is sent.
    Nothing to alarm about: the task skips (no event).

    :param watched: watch's result, or :param measured: measure's (an upstream `.output`).
    """

    template_fields: Sequence[str] = ("model", "watched", "measured")

    def __init__(self, *, watched: Any = None, measured: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watched = watched
        self.measured = measured

    def stage(self, context: Any) -> Alarm:
        from datetime import UTC, datetime, timedelta

        from airflow.sdk.exceptions import AirflowSkipException

        from modelkeeper.contracts import lineage as L
        from modelkeeper.monitoring.alarms import Alarm, alarm_reasons
        from modelkeeper.monitoring.history import Measurement
        from modelkeeper_airflow.notify import notify

        spec, run_id = self.spec, context["run_id"]
        watched = Watched.from_dict(self.watched) if self.watched else None
        measured = Measured.from_dict(self.measured) if self.measured else None
        reasons = alarm_reasons(
            spec,
            drift_share=watched.drift_share if watched else None,
            drift_rows=watched.rows if watched else 0,
            metrics=measured.measurements if measured else [],
        )
        if not reasons:
            self.log.info("no alarm: every measurement within the spec's thresholds")
            raise AirflowSkipException("no alarm")
        reason = "; ".join(r for _, r in reasons)
        kinds = sorted({k for k, _ in reasons})
        last = self.history.last_alarm(spec.name)
        cooldown = timedelta(hours=spec.monitoring.cooldown_hours)
        now = datetime.now(UTC)
        status = "fired"
        if last is not None and now - datetime.fromisoformat(last["recorded_at"]) < cooldown:
            status = "suppressed"
        version = (watched.version if watched else None) or next(
            (m.get("version") for m in (measured.measurements if measured else [])), None
        )
        self.history.record(
            [
                Measurement(
                    spec.name,
                    "alarm",
                    ",".join(kinds),
                    1.0,
                    version=version,
                    run_id=run_id,
                    dag_id=context["dag"].dag_id,
                    detail={
                        "status": status,
                        "reason": reason,
                        "last_fired": last["recorded_at"] if last else None,
                    },
                )
            ]
        )
        if status == "suppressed":
            self.log.warning(
                "alarm suppressed (cooldown %sh since %s): %s",
                spec.monitoring.cooldown_hours,
                last["recorded_at"],
                reason,
            )
            raise AirflowSkipException(f"alarm suppressed by the cooldown: {reason}")
        self._mark_outlet(context, L.alarm_asset(spec.name), reason, kinds)
        delivered = notify(
            spec,
            "alarm",
            subject=f"{spec.name}: alarm, retraining",
            text=reason,
            context=context,
            details={"version": version, "kinds": kinds},
        )
        self.log.warning(
            "ALARM for %s: %s; retrain_%s triggered; %s",
            spec.name,
            reason,
            spec.name,
            "; ".join(delivered) or "nobody to tell",
        )
        return Alarm(status="fired", reason=reason, kinds=kinds)

    def _mark_outlet(self, context: Any, name: str, reason: str, kinds: list[str]) -> None:
        from airflow.sdk import Asset

        context["outlet_events"][Asset(name)].extra = {"reason": reason, "kinds": kinds}
