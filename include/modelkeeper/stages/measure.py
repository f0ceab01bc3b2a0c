"""measure and alarm: late labels joined to predictions, and when to call for a retrain.

measure joins the labels that arrived to the prediction log by key; per window and per
version that served it, it records the realized metrics where enough labels are in and
estimates where enough rows were scored (`labels.min_rows`, both), into the history: CBPE
from a classifier's probabilities (calibrated on the version's holdout), DLE from a
regressor's features and prediction (a model of its loss fitted on that holdout).
Predictions still unlabelled `labels.expected_delay_days` after scoring are counted as
overdue (the labels' deadline; monitor_<model>'s measure task tells the owner). alarm
folds the serving version's change detector over its windows and compares the latest
measurements with the spec's fixed thresholds where it sets them; only the version
serving now can raise an alarm (a retrain replaces the champion, not a version already
replaced); within the cooldown a second alarm is recorded as suppressed.
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

    from modelkeeper.contracts.results import Detector, Watched
    from modelkeeper.monitoring.cbpe import Calibrator
    from modelkeeper.monitoring.dle import LossEstimator
    from modelkeeper.stages.workspace import Run, Workspace

log = logging.getLogger(__name__)


def measure(ws: Workspace, run: Run, *, now: datetime | None = None) -> Measured:
    """Realized and estimated metrics of the windows that can still change; the
    predictions whose label is overdue at `now` (default: the wall clock)."""
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
    since = _horizon_start(ws, newest[ts].max())
    predictions = newest[newest[ts] >= since].reset_index(drop=True)
    if spec.target.task == "regression":
        predictions = _with_features(ws, predictions, since)
    labels = load_pool(stream_spec(spec, "labels"), storage, since=since)
    joined = alarms.join_labels(predictions, labels, spec)
    unmatched = _unmatched(ws, run, labels, newest)
    overdue, overdue_since = _overdue(ws, run, joined, now)
    found = []
    for version, part in joined.groupby(scoring.VERSION):
        found += _windows(ws, run, str(version), part)
    label = spec.label_column
    have = int(joined[label].notna().sum())
    log.info(
        "%s predictions joined with their label, %s pending, %s labels match no prediction "
        "(kept: joined when one arrives); %s",
        have,
        len(joined) - have,
        unmatched,
        "; ".join(
            f"v{m['version']} {m['kind']} {m['metric']} {m['value']:.3f} "
            f"({m['window_start'][:10]}, {m['rows']} rows)"
            for m in found
            if m["slice_column"] is None
        )
        or "no window measured",
    )
    return Measured(
        have, len(joined) - have, found, unmatched, overdue=overdue, overdue_since=overdue_since
    )


def _overdue(ws: Workspace, run: Run, joined: pd.DataFrame, now: datetime | None) -> tuple:
    """Predictions past the labels' deadline (monitoring.deadlines): how many, and when
    the oldest was scored; recorded (history kind "deadline", metric "labels_overdue",
    zero too: the series shows when they came)."""
    from modelkeeper.monitoring.deadlines import overdue_labels
    from modelkeeper.serving import scoring

    spec = ws.spec
    count, since = overdue_labels(joined, spec, scoring.SCORED_AT, now)
    if count:
        delay = spec.labels.expected_delay_days
        log.warning("%s predictions without their label %s days after scoring", count, delay)
    if ws.history is not None and not joined.empty and scoring.SCORED_AT in joined.columns:
        detail = {"expected_delay_days": spec.labels.expected_delay_days, "oldest_scored_at": since}
        _record(ws, run, "deadline", "labels_overdue", count, len(joined), detail=detail)
    return count, since


def _unmatched(ws: Workspace, run: Run, labels: pd.DataFrame, logged: pd.DataFrame) -> int:
    """Labels of the open windows, from the first prediction on, whose key no prediction
    has (yet): counted and recorded (history kind "labels"), never dropped; they stay in
    the labels pool, and a later run joins them when their prediction comes."""
    from modelkeeper.data.keys import anti_join

    spec = ws.spec
    ts = spec.data_schema.timestamp_column
    if not labels.empty and not logged.empty:
        # rows older than the first prediction were never meant to be scored (the training
        # data the labels stream may share a landing folder with)
        labels = labels[labels[ts] >= logged[ts].min()]
    if labels.empty:
        return 0
    missing = len(anti_join(labels, logged, list(spec.labels.key), spec))
    if ws.history is not None:
        times = labels[ts]
        window = {"window_start": times.min().isoformat(), "window_end": times.max().isoformat()}
        _record(ws, run, "labels", "unmatched", missing, len(labels), **window)
    return missing


def _record(ws: Workspace, run: Run, kind: str, metric: str, value: float, rows: int, **extra):  # noqa: ANN003
    """One row of this run's bookkeeping in the history (counts, not model metrics)."""
    from modelkeeper.monitoring.history import Measurement

    row = Measurement(
        ws.spec.name,
        kind,
        metric,
        float(value),
        rows=rows,
        run_id=run.run_id,
        dag_id=run.dag_id,
        **extra,
    )
    ws.history.record([row])


def _horizon_start(ws: Workspace, newest: Any) -> Any:
    """The start of the oldest window that can still change (labels take
    expected_delay_days to arrive): a window is measured whole or not at all, never
    recorded again on the few of its rows after a cut."""
    import pandas as pd

    from modelkeeper.monitoring.performance import window_codes

    policy = ws.spec.monitoring
    days = ws.spec.labels.expected_delay_days + 3 * policy.window_days
    cut = pd.Series([newest - pd.Timedelta(days=days)])
    codes, origin, step = window_codes(
        cut, every=f"{policy.window_days}D", start=policy.window_anchor
    )
    return origin + int(codes[0]) * step


def _windows(ws: Workspace, run: Run, version: str, part: pd.DataFrame) -> list[dict]:
    """One version's realized and estimated measurements per window, recorded; returns
    those of the primary metric, with the version (what alarm weighs)."""
    from dataclasses import replace

    spec, policy = ws.spec, ws.spec.monitoring
    common = dict(
        time_column=spec.data_schema.timestamp_column,
        every=f"{policy.window_days}D",
        start=policy.window_anchor,
        slices=[f.column for f in policy.slice_floors],
    )
    if spec.target.task == "regression":
        real, est = _regression(ws, version, part, common)
    else:
        real, est = _classification(ws, version, part, common)
    measured = [
        replace(m, model=spec.name, version=version, run_id=run.run_id, dag_id=run.dag_id)
        for m in (*real, *est)
    ]
    if ws.history is not None:
        ws.history.record(measured)
    return [m.to_dict() for m in measured if m.metric == spec.metrics.primary]


def _classification(ws: Workspace, version: str, part: pd.DataFrame, common: dict) -> tuple:
    """Realized metrics from the labels; CBPE from the probabilities."""
    from modelkeeper.monitoring import performance
    from modelkeeper.serving import scoring

    real = performance.realized(
        part,
        label=ws.spec.label_column,
        proba=scoring.PROBABILITY,
        min_rows=ws.spec.labels.min_rows,
        **common,
    )
    est = performance.estimated(
        part,
        proba=scoring.PROBABILITY,
        calibrator=_calibrator(ws, version),
        min_rows=ws.spec.labels.min_rows,  # an estimate's minimum sample too
        **common,
    )
    return real, est


def _regression(ws: Workspace, version: str, part: pd.DataFrame, common: dict) -> tuple:
    """Realized rmse/mae/r2 from the labels; DLE's rmse/mae from features and prediction."""
    from modelkeeper.monitoring import performance
    from modelkeeper.serving import scoring

    return performance.regression(
        part,
        label=ws.spec.label_column,
        prediction=scoring.PREDICTION,
        estimator=_loss_estimator(ws, version),
        min_rows=ws.spec.labels.min_rows,
        estimate_min_rows=ws.spec.labels.min_rows,
        **common,
    )


def _with_features(ws: Workspace, predictions: pd.DataFrame, since: Any) -> pd.DataFrame:
    """The predictions with the features they were made from (the prediction log keeps
    keys, not features; DLE reads them), from the scoring stream's accepted pool."""
    import numpy as np

    from modelkeeper.data.keys import left_join
    from modelkeeper.data.pool import load_pool
    from modelkeeper.data.streams import stream_spec

    spec = ws.spec
    wanted = [c for c in spec.features.all if c not in predictions.columns]
    if not wanted or spec.scoring is None:
        return predictions
    pool = load_pool(stream_spec(spec, "scoring"), ws.storage, since=since)
    if pool.empty:
        return predictions.assign(**{c: np.nan for c in wanted})
    return left_join(predictions, pool, list(spec.scoring.key), spec, wanted)


def _loss_estimator(ws: Workspace, version: str) -> LossEstimator | None:
    """DLE fitted on the version's holdout with its labels and its own predictions (the
    scoring reference evaluate stored), once per process; None for a version stored
    without its holdout's labels."""
    from modelkeeper.monitoring.dle import fit_dle

    info = ws.registry.get_version(ws.name, version)
    key = ("dle", info.run_id)
    if key not in ws.memo.frames:
        spec = ws.spec
        try:
            reference = ws.run_frame(info.run_id, L.HOLDOUT_SCORED_ARTIFACT)
            ws.memo.frames[key] = fit_dle(
                reference,
                numeric=spec.features.numeric,
                categorical=spec.features.categorical,
                label=spec.target.column,
            )
        except TransientError:
            raise
        except Exception as exc:  # no stored reference, no labels in it, too few rows
            log.warning("v%s: no loss model for DLE (%s): realized metrics only", version, exc)
            ws.memo.frames[key] = None
    return ws.memo.frames[key]


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
    """Whether the serving version's measurements call for a retrain: its change detector
    over its windows (measure's, from monitor_<model>), drift and the spec's floors where
    it sets them. Status "none", "fired" or "suppressed" (within the cooldown of the last
    alarm that fired); recorded unless none. A version no longer serving raises nothing:
    the retrain its windows would ask for has happened (they are logged)."""
    from modelkeeper.monitoring.alarms import alarm_reasons, detector_reason

    spec = ws.spec
    metrics = measured.measurements if measured else []
    serving = _serving(ws, watched, metrics)
    by_version: dict[str | None, list[dict]] = {}
    for m in metrics:  # a measure from before versions were named: the serving one's
        by_version.setdefault(m.get("version") or serving, []).append(m)
    found: list[tuple[str | None, str, str]] = []
    if watched is not None:
        drift = alarm_reasons(spec, drift_share=watched.drift_share, drift_rows=watched.rows)
        found += [(watched.version, kind, reason) for kind, reason in drift]
    for version, group in by_version.items():
        found += [(version, kind, reason) for kind, reason in alarm_reasons(spec, metrics=group)]
    detectors = _detectors(ws, by_version) if measured is not None else {}
    for version, (state, window) in detectors.items():
        if state.alarm:
            found.append((version, "detector", detector_reason(state, window, version)))
    for version, _, reason in found:
        if version != serving:
            log.info("not an alarm: v%s no longer serves (v%s does): %s", version, serving, reason)
    reasons = [(kind, reason) for version, kind, reason in found if version == serving]
    state, window = detectors.get(serving, (None, None))
    if state is not None:
        log.info(
            "v%s: %s after the window from %s",
            serving,
            state.describe(),
            window["window_start"][:10],
        )
    if not reasons:
        log.info("no alarm: v%s's measurements within the spec's thresholds", serving)
        return Alarm(status="none", reason="", kinds=[], version=serving, detector=state)
    return _raise(ws, run, serving, reasons, state, window, now)


def _raise(ws, run, version, reasons, state, window, now) -> Alarm:  # noqa: ANN001
    """The alarm recorded: fired, or suppressed within the cooldown of the last that fired."""
    from modelkeeper.monitoring.history import Measurement

    spec = ws.spec
    reason = "; ".join(r for _, r in reasons)
    kinds = sorted({k for k, _ in reasons})
    last = ws.history.last_alarm(spec.name)
    cooldown = timedelta(hours=spec.monitoring.cooldown_hours)
    now = now or datetime.now(UTC)
    fired_lately = last is not None and now - datetime.fromisoformat(last["recorded_at"]) < cooldown
    status = "suppressed" if fired_lately else "fired"
    detail = {
        "status": status,
        "reason": reason,
        "last_fired": last["recorded_at"] if last else None,
    }
    if state is not None:
        detail["detector"] = {**state.to_dict(), "window_start": window["window_start"]}
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
        status=status,
        reason=reason,
        kinds=kinds,
        version=version,
        last_fired=detail["last_fired"],
        detector=state,
    )


def _serving(ws: Workspace, watched: Watched | None, metrics: list[dict]) -> str | None:
    """The version serving now: the one that scored the watched batch, else the champion
    alias, else the version of the newest window measured."""
    if watched is not None and watched.version:
        return watched.version
    champion = ws.registry.alias(ws.name)
    if champion is not None:
        return champion.version
    newest = max(metrics, key=lambda m: m["window_start"], default=None)
    return None if newest is None else newest.get("version")


def _detectors(ws: Workspace, by_version: dict) -> dict[str, tuple[Detector, dict]]:
    """Each version's change detector folded over its windows (the history's, oldest
    first, with this run's), and its last window; versions without a baseline have none."""
    from modelkeeper.monitoring.alarms import detector_over, window_values

    spec, conf = ws.spec, ws.spec.retrain.detector
    if not conf.enabled:
        return {}
    primary = spec.metrics.primary
    min_rows = spec.monitoring.min_rows if spec.monitoring else 1
    recorded = [] if ws.history is None else ws.history.series(spec.name, metric=primary)
    out = {}
    for version, group in by_version.items():
        base = _baseline(ws, version)
        if base is None:
            continue
        mine = [r for r in recorded if r["version"] == version]
        windows = window_values([*mine, *group], primary, min_rows=min_rows)
        state = detector_over(
            base,
            windows,
            false_alarm_rate=conf.false_alarm_rate,
            warmup_batches=conf.warmup_batches,
        )
        if state is not None:
            out[version] = (state, windows[-1])
    return out


def _baseline(ws: Workspace, version: str | None) -> Any:
    """The version's baseline from the tags evaluate wrote (None: trained before them)."""
    from modelkeeper.decisions.detector import Baseline

    if version is None:
        return None
    tags = ws.registry.get_version(ws.name, version).tags
    needed = (L.BASELINE_METRIC, L.BASELINE_SD, L.BASELINE_ROWS)
    if not all(tags.get(t) for t in needed):
        log.info("v%s has no baseline tags: no change detector", version)
        return None
    return Baseline(
        ws.spec.metrics.primary,
        float(tags[L.BASELINE_METRIC]),
        float(tags[L.BASELINE_SD]),
        int(float(tags[L.BASELINE_ROWS])),
    )
