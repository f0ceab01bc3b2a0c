"""Append-only audit trail of decisions, promotions, rejections and rollbacks.

MLflow aliases are last-writer-wins and keep no history, so every move (and every
refusal) is recorded here, in a real database reached through an Airflow Connection
(SQLite file by default, Postgres when scaled out). Rows are only ever inserted; an
`event_key` (run + step) makes a retried task's insert a no-op instead of a duplicate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from modelkeeper.contracts.errors import PermanentError
from modelkeeper.contracts.lineage import ALIAS_MOVES
from modelkeeper.contracts.lineage import AuditAction as EventKind
from modelkeeper.records.sqlstore import SqlStore, keyed_table


class ReconcileMismatch(PermanentError):
    """The registry's champion is not the one the trail says: a person must look."""


audit_table = keyed_table(
    "modelkeeper_audit",
    "event_key",
    500,
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("model", sa.String(200), nullable=False, index=True),
    sa.Column("event", sa.String(20), nullable=False),
    sa.Column("version_before", sa.String(20)),
    sa.Column("version_after", sa.String(20)),
    sa.Column("candidate_version", sa.String(20)),
    sa.Column("mode", sa.String(20)),
    sa.Column("who", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("metrics", sa.Text),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("run_id", sa.String(250)),
)


@dataclass(frozen=True)
class AuditEvent:
    model: str
    event: EventKind
    who: str
    reason: str
    version_before: str | None = None
    version_after: str | None = None
    candidate_version: str | None = None
    mode: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    dag_id: str | None = None
    run_id: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def key(self) -> str:
        return f"{self.model}:{self.dag_id}:{self.run_id}:{self.event}"


class AuditLog(SqlStore):
    table, key, json_column = audit_table, "event_key", "metrics"

    def record(self, event: AuditEvent) -> bool:
        """Insert once; returns False when this (run, step) was already recorded."""
        return self._insert_new([{**asdict(event), "event_key": event.key()}]) == 1

    def events(self, model: str | None = None) -> list[dict]:
        query = sa.select(audit_table).order_by(audit_table.c.id)
        if model:
            query = query.where(audit_table.c.model == model)
        return self._select(query)

    def expected_champion(self, model: str) -> str | None:
        """The champion the trail says is current: the last promotion or rollback."""
        moves = [e for e in self.events(model) if e["event"] in ALIAS_MOVES]
        return moves[-1]["version_after"] if moves else None


def reconcile(audit: AuditLog, model: str, registry_champion: str | None) -> tuple[bool, str]:
    """Does the registry's `champion` alias agree with the audit trail?"""
    expected = audit.expected_champion(model)
    if expected == registry_champion:
        return (
            True,
            f"{model}: registry and audit trail agree (champion {registry_champion or 'none'})",
        )
    return False, (
        f"{model}: MISMATCH: registry champion is {registry_champion or 'none'}, "
        f"audit trail says {expected or 'none'} (alias moved outside modelkeeper?)"
    )
