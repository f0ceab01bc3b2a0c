"""promote: move `champion` to the blessed candidate by compare-and-set, or record why not.

Nothing moves when the gate did not bless the candidate, in dry-run mode, when the
version lacks the passed-validation lineage tag, or when the champion moved since
evaluation. The move, the tags and the audit row are records.governance.act's; a
caller that promotes runs this in a one-slot pool (the DAG's `modelkeeper_promotion`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modelkeeper.contracts.errors import ConfigError

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Approval, ChampionChange, Evaluated
    from modelkeeper.stages.workspace import Run, Workspace

log = logging.getLogger(__name__)

MODES = ("auto", "dry_run", "approval")


def promote(
    ws: Workspace,
    run: Run,
    evaluated: Evaluated,
    *,
    mode: str = "",
    approval: Approval | None = None,
) -> ChampionChange:
    """Act on the gate's decision in `mode` ("" means the spec's); in approval mode (or
    when the gate asked for a person) a blessed candidate needs `approval`."""
    from modelkeeper.records.governance import ChangeRequest, act

    decision = evaluated.decision
    mode = mode or ws.spec.promotion.mode
    if mode not in MODES:
        raise ConfigError(f"promotion mode {mode!r} is not one of {MODES}")
    if ws.audit is None:
        raise ConfigError("promote needs the audit trail: the workspace has none")
    who, reason = run.who, decision.reason
    asked = mode == "approval" or (decision.needs_approval and mode != "dry_run")
    if asked and decision.promote:
        if approval is None or not approval.approved:
            raise ConfigError("approval needed, but the approve task recorded no approval")
        who = approval.by or who
        reason = f"approved by {who}; {reason}"
    request = "keep" if not decision.promote else ("dry_run" if mode == "dry_run" else "promote")
    change = act(
        ws.registry,
        ws.audit,
        ChangeRequest(
            model=ws.name,
            request=request,
            version=evaluated.candidate_version,
            expected=evaluated.champion_version,
            reason=reason,
            who=who,
            mode=mode,
            dag_id=run.dag_id,
            run_id=run.run_id,
            metrics=primary_metrics(ws, evaluated),
            mlflow_run_id=evaluated.mlflow_run_id,
        ),
    )
    log.info("%s", change.reason)
    if change.action in ("refused", "kept") and evaluated.champion is not None:
        _held(ws, evaluated)
    return change


def _held(ws: Workspace, evaluated: Evaluated) -> None:
    """The champion beat the challenger on its holdout: it is as fresh as that data."""
    from modelkeeper.contracts import lineage as L

    end = evaluated.holdout_end
    version = ws.registry.get_version(ws.name, evaluated.champion_version)
    if end and end > (version.tags.get(L.HELD_UNTIL) or ""):
        ws.registry.set_version_tags(ws.name, version.version, {L.HELD_UNTIL: end})


def primary_metrics(ws: Workspace, evaluated: Evaluated) -> dict[str, float | None]:
    """The primary metric of candidate and champion, as the audit row keeps them."""
    primary = ws.spec.metrics.primary
    metrics = {"candidate_" + primary: evaluated.candidate.metrics.get(primary)}
    if evaluated.champion:
        metrics["champion_" + primary] = evaluated.champion.metrics.get(primary)
    return metrics


def outcome_line(ws: Workspace, evaluated: Evaluated, change: ChampionChange) -> str:
    """The run's one-line outcome ("promoted v3: roc_auc 0.674 → 0.690")."""
    from modelkeeper.records.outcome import of_change

    primary = ws.spec.metrics.primary
    metrics = primary_metrics(ws, evaluated)
    return of_change(
        change, primary, metrics["candidate_" + primary], metrics.get("champion_" + primary)
    )
