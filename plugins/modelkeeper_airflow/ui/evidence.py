"""The evidence behind retrains, shaped for the health page (no Airflow, no I/O).

Per labelled batch the retrain pipeline's monitor records, in the history: the champion's
change detector (kind "detector": statistic, threshold, alarm), the shadow challenger's
advantage with its interval and the drift share against the share the champion's own
reference shows by chance (kind "evidence"). A batch is its run, in the order recorded,
labelled by its window start where the rows carry one, else by when it was recorded. Per retrain decision (audit "decision" row): its
triggers and numbers, joined to what followed in the same run (the promotion, refusal,
dry run or rejection, whose reason carries the gate's paired interval).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from modelkeeper.contracts import lineage as L

DETECTOR, EVIDENCE = "detector", "evidence"  # history kinds (stages.evidence)
SHADOW_ADVANTAGE, DRIFT_SHARE = "shadow_advantage", "drift_share"
DECISION = L.DECISION  # the audit action of a retrain decision: the gate verdict's word
# What a retrain run's promote step ends in, as audit actions (records.governance).
OUTCOMES = tuple(L.AUDIT_ACTION[a] for a in ("promoted", "refused", "dry_run", "rejected"))
INTERVAL = re.compile(r"\d+% CI \[[^\]]*\]")  # the gate's paired interval in its reason


@dataclass(frozen=True)
class Batch:
    """One labelled batch: what the champion measured on it and what a retrain weighed."""

    run_id: str | None
    at: str  # when monitor recorded it (ISO)
    version: str | None  # the champion measured
    window: str | None = None  # the batch's window start, where the rows carry one
    metric: float | None = None  # its primary metric on the batch
    statistic: float | None = None  # the detector after the batch
    threshold: float | None = None
    alarm: bool = False
    note: str = ""  # e.g. warming up
    advantage: float | None = None  # the shadow's, over the champion (> 0: shadow better)
    lo: float | None = None
    hi: float | None = None
    level: float | None = None
    needs: float | None = None  # the advantage a retrain needs (decisions.retrain.min_gain)
    drift_share: float | None = None
    drift_by_chance: float | None = None  # the share the reference shows by chance

    @property
    def label(self) -> str:
        """The batch on a chart's x axis: its window, else when it was measured (minutes)."""
        return (self.window or self.at)[:16].replace("T", " ")


@dataclass(frozen=True)
class Outcome:
    """What followed a retrain decision in its run: an audit promotion, refusal, ..."""

    event: str
    version: str | None  # the candidate
    reason: str
    who: str | None = None

    @property
    def interval(self) -> str | None:
        """The gate's paired interval ("95% CI [+0.0030, +0.0067]"), when it had one."""
        found = INTERVAL.search(self.reason)
        return found.group(0) if found else None

    @property
    def why(self) -> str:
        """The reason without the verdict it starts with (the page says that itself)."""
        for verdict in ("promoted: ", "refused: "):
            if self.reason.startswith(verdict):
                return self.reason.removeprefix(verdict)
        return self.reason


@dataclass(frozen=True)
class RetrainRecord:
    """A retrain decision, its evidence (as the audit row keeps it) and what followed."""

    at: str
    run_id: str | None
    champion: str | None  # the version it decided against
    reason: str
    triggers: list[str] = field(default_factory=list)
    shadow: dict[str, float] | None = None  # advantage, lo, hi, level
    detector: dict[str, float] | None = None  # statistic, threshold
    drift: dict[str, float | None] | None = None  # share, calibrated_threshold
    followed: Outcome | None = None


def _detector(row: dict, detail: dict) -> dict[str, Any]:
    return {
        "metric": detail.get("value"),
        "statistic": row["value"],
        "threshold": detail.get("threshold"),
        "alarm": bool(detail.get("alarm")),
        "note": detail.get("note") or "",
    }


def _shadow(row: dict, detail: dict, spec: Any) -> dict[str, Any]:
    from modelkeeper.decisions.retrain import min_gain

    # On the scale the decision's reason states it: the champion's metric on the batch.
    return {
        "advantage": row["value"],
        "lo": detail.get("lo"),
        "hi": detail.get("hi"),
        "level": detail.get("level"),
        "needs": min_gain(spec, detail.get(L.CHAMPION)),
    }


def batches(series: list[dict], spec: Any) -> list[Batch]:
    """One Batch per run that measured a labelled batch, oldest first (`series`: history
    rows of any kinds; only the detector's on the primary metric and the evidence count)."""
    primary = spec.metrics.primary
    found: dict[str, dict[str, Any]] = {}
    for row in sorted(series, key=lambda r: (r.get("recorded_at") or "", r.get("id") or 0)):
        kind, metric, detail = row["kind"], row["metric"], row.get("detail") or {}
        if kind == DETECTOR and metric == primary:
            fields = _detector(row, detail)
        elif kind == EVIDENCE and metric == SHADOW_ADVANTAGE:
            fields = _shadow(row, detail, spec)
        elif kind == EVIDENCE and metric == DRIFT_SHARE:
            fields = {"drift_share": row["value"]}
            fields["drift_by_chance"] = detail.get("calibrated_threshold")
        else:
            continue
        key = row.get("run_id") or row.get("recorded_at") or "?"
        first = {"run_id": row.get("run_id"), "at": row.get("recorded_at") or ""}
        first |= {"version": row.get("version"), "window": row.get("window_start")}
        found.setdefault(key, first).update(fields)
    return [Batch(**b) for b in found.values()]


def _record(e: dict) -> RetrainRecord:
    metrics = e.get("metrics") or {}
    return RetrainRecord(
        at=e["at"],
        run_id=e.get("run_id"),
        champion=e.get("version_before"),
        reason=e.get("reason") or "",
        triggers=list(metrics.get("triggers") or []),
        shadow=metrics.get("shadow"),
        detector=metrics.get("detector"),
        drift=metrics.get("drift"),
    )


def decisions(events: list[dict]) -> list[RetrainRecord]:
    """Every retrain decision in the trail (oldest first in `events`), newest first, each
    with the first promotion/refusal/dry run/rejection of its run that came after it."""
    records: list[RetrainRecord] = []
    followed: dict[int, Outcome] = {}
    waiting: dict[str, int] = {}  # run_id -> its decision's index, until an outcome
    for e in events:
        run_id = e.get("run_id")
        if e["event"] == DECISION:
            if run_id:
                waiting[run_id] = len(records)
            records.append(_record(e))
        elif e["event"] in OUTCOMES and run_id in waiting:
            followed[waiting.pop(run_id)] = Outcome(
                e["event"], e.get("candidate_version"), e.get("reason") or "", e.get("who")
            )
    return [replace(r, followed=followed.get(i)) for i, r in reversed(list(enumerate(records)))]
