"""decide: whether this run retrains, and why, from what monitor measured.

A retrain that monitoring's evidence called for (or a person, or the age schedule) is
recorded in the audit trail as a "decision", with the numbers behind it, so every retrain
has its evidence next to the promotion or refusal that follows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modelkeeper.contracts import lineage as L

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Monitoring, RetrainDecision
    from modelkeeper.stages.workspace import Run, Workspace

log = logging.getLogger(__name__)


def decide(
    ws: Workspace,
    run: Run,
    monitoring: Monitoring,
    *,
    force: bool = False,
    force_reason: str = "",
    alarm: str | None = None,
) -> RetrainDecision:
    from modelkeeper.decisions.retrain import should_retrain

    decision = should_retrain(
        monitoring, ws.spec, force=force, force_reason=force_reason, alarm=alarm
    )
    log.info("%s", decision.reason)
    if decision.retrain and ws.audit is not None:
        _record(ws, run, monitoring, decision)
    return decision


def _record(ws: Workspace, run: Run, m: Monitoring, decision: RetrainDecision) -> None:
    from modelkeeper.records.audit import AuditEvent

    metrics: dict = {"triggers": decision.triggers, "champion_metric": m.champion_metric}
    if m.shadow is not None:
        c = m.shadow.comparison
        metrics["shadow"] = {"advantage": c.advantage, "lo": c.lo, "hi": c.hi, "level": c.level}
    if m.detector is not None:
        metrics["detector"] = {"statistic": m.detector.statistic, "threshold": m.detector.threshold}
    if m.drift_share is not None:
        metrics["drift"] = {"share": m.drift_share, "calibrated_threshold": m.drift_threshold}
    ws.audit.record(
        AuditEvent(
            model=ws.name,
            event=L.DECISION,
            who=run.who,
            reason=decision.reason,
            version_before=m.champion_version,
            mode="retrain",
            metrics=metrics,
            dag_id=run.dag_id,
            run_id=run.run_id,
        )
    )
