"""measure and alarm: late labels joined to predictions, and when to call for a retrain.

measure joins the labels that arrived to the prediction log by key; per window it
records the realized metrics where enough labels are in, and CBPE estimates (from the
probabilities, calibrated on the version's holdout) everywhere, into the history. alarm
compares the latest measurements with the spec's thresholds; within the cooldown a
second alarm is recorded as suppressed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelkeeper.contracts import lineage as L
from modelkeeper.contracts.errors import TransientError
from modelkeeper.contracts.results import Alarm, Measured

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.contracts.results import Watched
    from modelkeeper.monitoring.cbpe import Calibrator
    from modelkeeper.stages.workspace import Run, Workspace

log = logging.getLogger(__name__)


def measure(ws: Workspace, run: Run) -> Measured:
    """Realized and estimated metrics of the windows that can still change."""
    from modelkeeper.data.pool import load_pool
    from modelkeeper.data.streams import stream_spec
    from modelkeeper.monitoring import alarms
    from modelkeeper.serving import scoring

    spec, storage = ws.spec, ws.storage
    ts = spec.data_schema.timestamp_column
    newest = scoring.read_log(spec, storage)
    if newest.empty:
        return Measured(0, 0, [])
    # Windows that can still change: labels take expected_delay_days to arrive.
    since = newest[ts].max() - _horizon(ws)
    predictions = newest[newest[ts] >= since].reset_index(drop=True)
    labels = load_pool(stream_spec(spec, "labels"), storage, since=since)
    joined = alarms.join_labels(predictions, labels, spec)
    found = []
    for version, part in joined.groupby(scoring.VERSION):
        found += _windows(ws, run, str(version), part)
    label = spec.label_column
    have = int(joined[label].notna().sum())
    log.info(
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
        joined=have, pending=len(joined) - have, measurements=[m.to_dict() for m in found]
    )


def _horizon(ws: Workspace) -> pd.Timedelta:
    import pandas as pd

    days = ws.spec.labels.expected_delay_days + 3 * ws.spec.monitoring.window_days
    return pd.Timedelta(days=days)


def _windows(ws: Workspace, run: Run, version: str, part: pd.DataFrame) -> list[Any]:
    """One version's realized and estimated measurements per window, recorded; returns
    those of the primary metric (what alarm compares with the thresholds)."""
    from modelkeeper.monitoring import performance
    from modelkeeper.monitoring.history import Measurement
    from modelkeeper.serving import scoring

    spec, policy = ws.spec, ws.spec.monitoring
    common = dict(
        time_column=spec.data_schema.timestamp_column,
        every=f"{policy.window_days}D",
        start=policy.window_anchor,
        slices=[f.column for f in policy.slice_floors],
    )
    real = performance.realized(
        part,
        label=spec.label_column,
        proba=scoring.PROBABILITY,
        min_rows=spec.labels.min_rows,
        **common,
    )
    est = performance.estimated(
        part, proba=scoring.PROBABILITY, calibrator=_calibrator(ws, version), min_rows=1, **common
    )
    if ws.history is not None:
        ws.history.record(
            [
                Measurement(
                    spec.name,
                    m.kind,
                    m.metric,
                    m.value,
                    version=version,
                    window_start=m.window_start,
                    window_end=m.window_end,
                    rows=m.rows,
                    slice_column=m.slice_column,
                    slice_value=m.slice_value,
                    run_id=run.run_id,
                    dag_id=run.dag_id,
                )
                for m in (*real, *est)
            ]
        )
    return [m for m in (*real, *est) if m.metric == spec.metrics.primary]


def _calibrator(ws: Workspace, version: str) -> Calibrator | None:
    """The version's CBPE calibration (evaluate stored it); raw probabilities without."""
    import json
    import tempfile

    from modelkeeper.monitoring.cbpe import Calibrator

    info = ws.registry.get_version(ws.name, version)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = ws.registry.download(info.run_id, L.CALIBRATION_ARTIFACT, tmp)
            return Calibrator.from_dict(json.loads(path.read_text()))
        except TransientError:
            raise
        except Exception as exc:
            log.warning("v%s has no stored calibration (%s): raw probabilities", version, exc)
            return None


def alarm(
    ws: Workspace,
    run: Run,
    *,
    watched: Watched | None = None,
    measured: Measured | None = None,
    now: datetime | None = None,
) -> Alarm:
    """Whether the measurements cross the spec's thresholds: status "none", "fired" or
    "suppressed" (within the cooldown of the last alarm that fired); recorded unless none."""
    from modelkeeper.monitoring.alarms import alarm_reasons
    from modelkeeper.monitoring.history import Measurement

    spec = ws.spec
    metrics = measured.measurements if measured else []
    reasons = alarm_reasons(
        spec,
        drift_share=watched.drift_share if watched else None,
        drift_rows=watched.rows if watched else 0,
        metrics=metrics,
    )
    if not reasons:
        log.info("no alarm: every measurement within the spec's thresholds")
        return Alarm(status="none", reason="", kinds=[])
    reason = "; ".join(r for _, r in reasons)
    kinds = sorted({k for k, _ in reasons})
    last = ws.history.last_alarm(spec.name)
    cooldown = timedelta(hours=spec.monitoring.cooldown_hours)
    now = now or datetime.now(UTC)
    fired_lately = last is not None and now - datetime.fromisoformat(last["recorded_at"]) < cooldown
    status = "suppressed" if fired_lately else "fired"
    version = (watched.version if watched else None) or next(
        (m.get("version") for m in metrics), None
    )
    detail = {
        "status": status,
        "reason": reason,
        "last_fired": last["recorded_at"] if last else None,
    }
    ws.history.record(
        [
            Measurement(
                spec.name,
                "alarm",
                ",".join(kinds),
                1.0,
                version=version,
                run_id=run.run_id,
                dag_id=run.dag_id,
                detail=detail,
            )
        ]
    )
    return Alarm(
        status=status, reason=reason, kinds=kinds, version=version, last_fired=detail["last_fired"]
    )
