"""Act and audit: the one way the champion alias changes, or is recorded as not changing.

Promote, rollback and an approver's rejection all call `act`: compare-and-set the alias
(when the action moves it), tag the version and the MLflow run, write the audit row.
Doing it in one function keeps the three in step: the same lineage check before any
promotion, the same tags, the same audit fields, the same behaviour on a retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from modelkeeper.contracts import lineage as L
from modelkeeper.contracts.errors import ContentionError
from modelkeeper.contracts.results import ChampionChange
from modelkeeper.records.audit import AuditEvent

if TYPE_CHECKING:
    from modelkeeper.records.audit import AuditLog
    from modelkeeper.records.registry import Registry

Request = Literal["promote", "keep", "dry_run", "reject", "rollback"]


@dataclass(frozen=True)
class ChangeRequest:
    """What a stage asks for. `expected` is the champion it decided against."""

    model: str
    request: Request
    version: str | None  # the candidate, or the rollback target
    expected: str | None
    reason: str  # the gate's reason, or the person's
    who: str
    mode: str
    dag_id: str | None = None
    run_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    mlflow_run_id: str | None = None  # the MLflow run that records the outcome


def act(registry: Registry, audit: AuditLog, req: ChangeRequest) -> ChampionChange:
    """Carry out `req`; retrying after a crash at any point ends in the same state."""
    action, reason, before, after = _outcome(registry, audit, req)
    change = ChampionChange(
        action=action,
        reason=reason,
        champion_before=before,
        champion_after=after,
        candidate_version=req.version,
        mode=req.mode,
        who=req.who,
    )
    if action == "noop":
        return change
    _tag(registry, req, change)
    # The audit row says what the change says, with the run it happened in.
    audit.record(
        AuditEvent(
            model=req.model,
            event=L.AUDIT_ACTION[change.action],
            who=change.who,
            reason=change.reason,
            version_before=change.champion_before,
            version_after=change.champion_after,
            candidate_version=change.candidate_version,
            mode=change.mode,
            metrics=req.metrics,
            dag_id=req.dag_id,
            run_id=req.run_id,
        )
    )
    return change


def _outcome(
    registry: Registry, audit: AuditLog, req: ChangeRequest
) -> tuple[L.Action, str, str | None, str | None]:
    """(action, reason, champion before, champion after)."""
    name, version, expected = req.model, req.version, req.expected
    if req.request == "keep":
        return "kept", req.reason, expected, expected
    if req.request == "dry_run":
        return "dry_run", f"dry run, nothing moved; would have {req.reason}", expected, expected
    if req.request == "reject":
        return "rejected", req.reason, expected, expected
    assert version is not None, "promote and rollback name a version"
    if req.request == "promote":
        # The last line of defence: promote refuses unvalidated lineage even if reached.
        if registry.get_version(name, version).tags.get(L.VALIDATION) != L.VALIDATION_PASSED:
            why = f"refused: v{version} lacks the {L.VALIDATION}={L.VALIDATION_PASSED} lineage tag"
            return "refused", why, expected, expected
        moved, current = registry.move_champion(name, version, expected)
        if not moved:
            why = f"refused: champion changed since evaluation (v{expected} then, v{current} now)"
            return "refused", why, expected, current
        return "promoted", req.reason, expected, version
    # rollback: `previous` stays where it is, so the same rollback twice is a no-op.
    before = expected
    if expected == version:
        recorded = audit.expected_champion(name)
        if recorded == version:
            return "noop", f"v{version} is already champion: nothing to do", version, version
        # A retry after the alias moved but before the audit row: record the move now.
        before = recorded
    else:
        moved, current = registry.move_champion(name, version, expected, keep_previous=True)
        if not moved:  # another promotion slipped in between: a retry re-reads
            raise ContentionError(
                f"champion changed during rollback (v{expected} then, v{current} now)"
            )
    reason = f"rollback v{before} → v{version} by {req.who}: {req.reason or 'no reason given'}"
    return "rolled_back", reason, before, version


def _tag(registry: Registry, req: ChangeRequest, change: ChampionChange) -> None:
    name, version = req.model, req.version
    if change.action == "promoted":
        registry.set_version_tags(
            name, version, {L.PROMOTED_BY: req.who, L.PROMOTED_IN: req.run_id}
        )
        # Wall-clock time: a run id carries the logical date (or none), not when it moved.
        since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        where = f" in Airflow run {req.run_id}" if req.run_id else ""
        registry.describe_version(
            name, version, f"champion since {since}, by {req.who}{where}: {change.reason}"
        )
    elif change.action == "rolled_back":
        registry.set_version_tags(
            name, version, {L.ROLLED_BACK_BY: req.who, L.ROLLED_BACK_IN: req.run_id}
        )
        if change.champion_before not in (None, version):
            registry.set_version_tags(name, change.champion_before, {L.ROLLED_BACK_FROM: "true"})
    elif change.action == "rejected" and version is not None:
        registry.set_version_tags(name, version, {L.REJECTED_BY: req.who})
    if req.mlflow_run_id:
        registry.set_run_tags(
            req.mlflow_run_id, {L.PROMOTION: change.action, L.PROMOTION_REASON: change.reason}
        )
