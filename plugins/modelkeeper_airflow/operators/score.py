"""The champion at work: score new rows, watch the scored batch, measure late labels, alarm.

Each operator calls its stage in modelkeeper.stages (serve: score, watch; measure:
measure, alarm) and adds what only Airflow has: skips, extra links, the alarm's Asset
event and telling the owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.links import DriftReportLink, MlflowRunLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Alarm, Measured, Scored, Watched


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
        from modelkeeper.stages.serve import score

        dest = self.spec.scoring.destination
        engine = self._sql_engine(dest.conn_id) if dest.kind == "sql" else None
        scored = score(
            self.workspace(history=True),
            self.run(context),
            Accepted.from_dict(self.accepted),
            sql_engine=engine,
        )
        if scored.version is None:
            raise AirflowSkipException(scored.note)
        return scored

    @staticmethod
    def _sql_engine(conn_id: str) -> Any:
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id).get_hook().get_sqlalchemy_engine()


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
        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Accepted, Scored
        from modelkeeper.stages.serve import watch
        from modelkeeper_airflow import links

        watched = watch(
            self.workspace(history=True),
            self.run(context),
            Accepted.from_dict(self.accepted),
            Scored.from_dict(self.scored),
        )
        name, run_id = self.spec.name, context["run_id"]
        if (self.storage.report_dir(name, run_id) / L.REPORT_DRIFT).exists():
            self.push_link(
                context,
                L.LINK_DRIFT_REPORT,
                lambda: links.report_url(name, run_id, L.REPORT_DRIFT),
            )
        return watched


class MeasureOperator(ModelkeeperOperator):
    """Join the labels that arrived to the prediction log; realized metrics where a window
    has enough labels, estimates (CBPE, DLE) where it has enough scored rows; into the
    history. Labels overdue (`labels.expected_delay_days` after scoring) alarm the owner.

    :param labels: the labels stream's validate result (None when nothing new arrived).
    """

    template_fields: Sequence[str] = ("model", "labels")

    def __init__(self, *, labels: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = labels

    def stage(self, context: Any) -> Measured:
        from modelkeeper.contracts import lineage as L
        from modelkeeper.records.outcome import of_measured
        from modelkeeper.stages.measure import measure

        measured = measure(self.workspace(history=True), self.run(context))
        # the run's note (the listener): unmatched labels are counted where people look
        note = of_measured(measured.joined, measured.pending, measured.unmatched)
        if measured.overdue:
            note += f"; {measured.overdue} labels overdue"
            for line in labels_overdue(self.spec, measured, context):
                self.log.warning("labels overdue: %s", line)
        context["ti"].xcom_push(key=L.OUTCOME_XCOM, value=note)
        return measured


def labels_overdue(spec: Any, measured: Measured, context: Any) -> list[str]:
    """Tell the owner that labels missed their deadline (event "alarm"; no retrain: it is
    the labels that are late, not the model that is worse); the delivery lines."""
    from modelkeeper.contracts import lineage as L
    from modelkeeper_airflow.notify import notify

    delay = spec.labels.expected_delay_days
    return notify(
        spec,
        L.NOTIFY_ALARM,
        subject=f"{spec.name}: {measured.overdue} labels overdue",
        text=(
            f"{measured.overdue} predictions still have no label {delay:g} days after they "
            f"were scored (labels.expected_delay_days); the oldest was scored at "
            f"{measured.overdue_since}. Check the labels feed ({spec.labels.source.kind})."
        ),
        context=context,
        details={"overdue": measured.overdue, "oldest_scored_at": measured.overdue_since},
    )


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
        from airflow.sdk.exceptions import AirflowSkipException

        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Measured, Watched
        from modelkeeper.stages.measure import alarm
        from modelkeeper_airflow.notify import notify

        spec = self.spec
        result = alarm(
            self.workspace(history=True),
            self.run(context),
            watched=Watched.from_dict(self.watched) if self.watched else None,
            measured=Measured.from_dict(self.measured) if self.measured else None,
        )
        if result.status != "none":  # the run's note: the alarm after the labels line
            from modelkeeper.records.outcome import of_alarm, of_measured

            m = Measured.from_dict(self.measured) if self.measured else None
            before = of_measured(m.joined, m.pending, m.unmatched) if m else None
            line = of_alarm(result.status, result.reason, before)
            context["ti"].xcom_push(key=L.OUTCOME_XCOM, value=line)
        if result.status == "none":
            raise AirflowSkipException("no alarm")
        if result.status == "suppressed":
            self.log.warning(
                "alarm suppressed (cooldown %sh since %s): %s",
                spec.monitoring.cooldown_hours,
                result.last_fired,
                result.reason,
            )
            raise AirflowSkipException(f"alarm suppressed by the cooldown: {result.reason}")
        self._mark_outlet(context, L.alarm_asset(spec.name), result.reason, result.kinds)
        delivered = notify(
            spec,
            "alarm",
            subject=f"{spec.name}: alarm, retraining",
            text=result.reason,
            context=context,
            details={"version": result.version, "kinds": result.kinds},
        )
        self.log.warning(
            "ALARM for %s: %s; retrain_%s triggered; %s",
            spec.name,
            result.reason,
            spec.name,
            "; ".join(delivered) or "nobody to tell",
        )
        return result

    def _mark_outlet(self, context: Any, name: str, reason: str, kinds: list[str]) -> None:
        from airflow.sdk import Asset

        context["outlet_events"][Asset(name)].extra = {"reason": reason, "kinds": kinds}
