"""What monitor hands decide beyond the champion's metrics: the evidence for a retrain.

- drift of the batch against the champion's reference, with the threshold its own
  reference shows by chance (two disjoint samples of it, at the batch's size);
- the champion's change detector after this batch (decisions.detector), kept in the
  monitoring history between runs;
- the shadow challenger's advantage (stages.shadow);
- whether a refused candidate holds the slower triggers back.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from modelkeeper.contracts import lineage as L

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.contracts.results import Accepted, Detector
    from modelkeeper.records.registry import VersionInfo
    from modelkeeper.stages.workspace import Run, Workspace

log = logging.getLogger(__name__)
DETECTOR = "detector"  # the history kind of the detector's statistic per batch
EVIDENCE = "evidence"  # the history kind of the shadow's advantage and the drift share


def gather(
    ws: Workspace,
    run: Run,
    champion: VersionInfo,
    model: Any,
    accepted: Accepted,
    batch: pd.DataFrame,
    metrics: dict[str, float],
) -> dict[str, Any]:
    """Monitoring's evidence fields for this batch."""
    from modelkeeper.stages.monitor import drift_of
    from modelkeeper.stages.shadow import shadow

    key = ("drift_of", champion.source, str(accepted.path))
    if ws.reports or key not in ws.memo.frames:  # a report is written per run
        ws.memo.frames[key] = drift_of(ws, run, champion, model, batch, str(accepted.path))
    drifted = ws.memo.frames[key]
    out: dict[str, Any] = {
        "drift_share": None if drifted is None else drifted.drifted_share,
        "drift_summary": None if drifted is None else drifted.summary,
        "drift_threshold": None if drifted is None else drift_threshold(ws, champion, model, batch),
        "detector": detector(ws, run, champion, metrics, len(batch)),
    }
    found = shadow(ws, champion, batch, str(accepted.path))
    out["shadow"] = found if not isinstance(found, str) else None
    out["shadow_note"] = found if isinstance(found, str) else None
    out["held_back"] = held_back(ws, champion, accepted)
    _record(ws, run, champion, len(batch), out)
    return out


def _record(ws: Workspace, run: Run, champion: VersionInfo, rows: int, found: dict) -> None:
    """The shadow's advantage and the drift share against its calibrated threshold, as
    series beside the detector's (history kind "evidence")."""
    from modelkeeper.monitoring.history import Measurement

    if ws.history is None:
        return
    base = dict(version=champion.version, rows=rows, run_id=run.run_id, dag_id=run.dag_id)
    rows_ = []
    if found["shadow"] is not None:
        c = found["shadow"].comparison
        shadow = found["shadow"]
        detail = {"lo": c.lo, "hi": c.hi, "level": c.level, "twin": c.a, "shadow": c.b}
        detail[L.CHAMPION] = shadow.champion
        rows_.append(
            Measurement(ws.name, EVIDENCE, "shadow_advantage", c.advantage, detail=detail, **base)
        )
    if found["drift_share"] is not None:
        detail = {"calibrated_threshold": found["drift_threshold"]}
        rows_.append(
            Measurement(
                ws.name, EVIDENCE, "drift_share", found["drift_share"], detail=detail, **base
            )
        )
    ws.history.record(rows_)


def held_back(ws: Workspace, champion: VersionInfo, accepted: Accepted) -> str | None:
    """A candidate refused on the data just before this batch holds the floor and the
    detector for this batch (no retrain-refuse loop every step); the shadow still counts."""
    from modelkeeper.decisions.retrain import age_days

    held = champion.tags.get(L.HELD_UNTIL)
    gap = age_days(held, accepted.start)
    if held and gap is not None and gap < ws.spec.window.holdout_days:
        return f"v{champion.version} beat a challenger on the data up to {held[:10]}"
    return None


def detector(
    ws: Workspace, run: Run, champion: VersionInfo, metrics: dict[str, float], rows: int
) -> Detector | None:
    """The champion's detector after this batch, recorded in the history (None without a
    baseline on the version, a history, or a measured batch)."""
    from modelkeeper.decisions.detector import Baseline, detect
    from modelkeeper.monitoring.history import Measurement

    spec, tags = ws.spec, champion.tags
    primary = spec.metrics.primary
    conf = spec.retrain.detector
    if not conf.enabled or ws.history is None or primary not in metrics:
        return None
    if not tags.get(L.BASELINE_METRIC) or not tags.get(L.BASELINE_SD):
        return None  # trained before baselines were kept
    base = Baseline(
        primary,
        float(tags[L.BASELINE_METRIC]),
        float(tags[L.BASELINE_SD]),
        int(float(tags.get(L.BASELINE_ROWS) or rows)),
    )
    rows_before = [
        r
        for r in ws.history.series(ws.name, kind=DETECTOR, metric=primary)
        if r["version"] == champion.version and r["run_id"] != run.run_id
    ]
    past = [(r["detail"]["value"], r["rows"], r["value"] or 0.0) for r in rows_before]
    state = detect(
        base,
        past,
        metrics[primary],
        rows,
        false_alarm_rate=conf.false_alarm_rate,
        warmup_batches=conf.warmup_batches,
    )
    ws.history.record(
        [
            Measurement(
                ws.name,
                DETECTOR,
                primary,
                state.statistic,
                version=champion.version,
                rows=rows,
                run_id=run.run_id,
                dag_id=run.dag_id,
                detail={"value": metrics[primary], **state.to_dict()},
            )
        ]
    )
    return state


def drift_threshold(
    ws: Workspace, champion: VersionInfo, model: Any, batch: pd.DataFrame
) -> float | None:
    """The drift share two disjoint random samples of the champion's reference show at the
    batch's size (the larger of two draws), kept on the version once computed."""
    from modelkeeper.monitoring.drift import DriftError, drifted_share
    from modelkeeper.stages.monitor import reference_with_prediction

    known = champion.tags.get(L.DRIFT_THRESHOLD)
    if known is None:
        known = ws.memo.frames.get(("drift", champion.source))
    if known is not None:
        return float(known)
    reference = reference_with_prediction(ws, champion, model)
    size = min(len(batch), len(reference) // 2)
    if size < 2:
        return None
    shares = []
    for seed in (1, 2):
        shuffled = reference.sample(frac=1.0, random_state=seed)
        a, b = shuffled.iloc[:size], shuffled.iloc[size : 2 * size]
        try:
            shares.append(drifted_share(a, b, ws.spec, extra_numeric=["prediction"]))
        except DriftError as exc:
            log.info("no drift threshold: %s", exc)
            return None
    threshold = max(shares)
    ws.memo.frames[("drift", champion.source)] = threshold
    ws.registry.set_version_tags(ws.name, champion.version, {L.DRIFT_THRESHOLD: threshold})
    return threshold
