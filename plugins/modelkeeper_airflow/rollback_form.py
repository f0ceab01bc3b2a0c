"""What the rollback DAG's trigger form shows before a person presses Trigger.

Airflow 3.3's form is static per parse: a Param can carry `description_md` (Markdown under
the field) and `values_display` (labels for enum values), nothing fetched when the dialog
opens. So dags/modelkeeper_rollback.py renders them when the DAG file is parsed, from the
audit trail (every alias move modelkeeper made, with its reason): each model's current
champion and since when, what `previous` points at, and the record of the versions one
could roll back to. The figures are as of the last parse (the page says when); the
rollback itself still checks the registry (compare-and-set).

Parse-time cost: one SQL query per model on the `modelkeeper_audit` Connection (no MLflow,
no pandas). A trail that cannot be read leaves the form usable and says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelkeeper.contracts.lineage import ALIAS_MOVES

log = logging.getLogger(__name__)

SHOWN = 5  # versions listed per model
REASON_CHARS = 160


@dataclass(frozen=True)
class ModelRecord:
    model: str
    champion: str | None = None
    since: str | None = None
    previous: str | None = None  # the champion before the last move (rollback's `previous`)
    versions: list[str] = field(default_factory=list)  # "v2: promotion 2026-… (reason)"


def records(models: list[str], events_of: Any) -> list[ModelRecord]:
    """Per model, from `events_of(model)` (AuditLog.events: oldest first)."""
    out = []
    for model in models:
        events = events_of(model)
        moves = [e for e in events if e["event"] in ALIAS_MOVES]
        last = moves[-1] if moves else None
        seen: dict[str, str] = {}
        for e in events:
            version = e.get("candidate_version") or (
                e.get("version_after") if e["event"] in ALIAS_MOVES else None
            )
            if version:
                reason = " ".join(str(e.get("reason") or "").split())
                if len(reason) > REASON_CHARS:
                    reason = reason[: REASON_CHARS - 1] + "…"
                who = e.get("who") or "?"
                seen[str(version)] = f"{e['event']} {_at(e['at'])} by {who}: {reason}"
        newest = sorted(seen, key=lambda v: int(v) if v.isdigit() else 0, reverse=True)
        out.append(
            ModelRecord(
                model,
                champion=last["version_after"] if last else None,
                since=_at(last["at"]) if last else None,
                previous=last["version_before"] if last else None,
                versions=[f"v{v}: {seen[v]}" for v in newest[:SHOWN]],
            )
        )
    return out


def _at(at: Any) -> str:
    return str(at)[:16].replace("T", " ")


def _v(version: str | None) -> str:
    return f"v{version}" if version else "none"


def model_labels(found: list[ModelRecord]) -> dict[str, str]:
    """The model dropdown's labels: "flight_delay (champion v3 since 2026-03-01 10:00)"."""
    return {
        r.model: f"{r.model} (champion {_v(r.champion)}"
        + (f" since {r.since})" if r.since else ")")
        for r in found
    }


def model_markdown(found: list[ModelRecord], as_of: str, error: str | None = None) -> str:
    lines = ["Model to roll back (none is pre-selected)."]
    if error:
        return lines[0] + f" The audit trail could not be read when this form was built: {error}"
    lines += ["", f"Champions by the audit trail, as of {as_of}:"]
    lines.append("")
    for r in found:
        since = f" since {r.since}" if r.since else ""
        lines.append(
            f"- **{r.model}**: champion **{_v(r.champion)}**{since}; _previous_ is {_v(r.previous)}"
        )
    return "\n".join(lines)


def target_markdown(found: list[ModelRecord], error: str | None = None) -> str:
    # no `code` spans: the form draws them as boxes taller than the line
    lines = ["_previous_ (the champion before the last move) or a registered version number."]
    if error:
        return lines[0]
    lines += ["", "The versions' records (newest first):", ""]
    for r in found:
        lines.append(f"- **{r.model}**" + ("" if r.versions else ": no versions yet"))
        lines += [f"  - {text}" for text in r.versions]
    return "\n".join(lines)


def form(models: list[str]) -> dict[str, Any]:
    """description_md for `model` and `target_version`, values_display for `model`: never
    raises (a DAG file must parse whatever the trail's state)."""
    as_of = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        from modelkeeper.records.audit import AuditLog
        from modelkeeper_airflow import clients

        audit = AuditLog(clients.audit_engine())
        found, error = records(models, audit.events), None
    except Exception as exc:  # noqa: BLE001 - shown in the form instead
        # No audit Connection (a DAG check, a fresh install) is a state, not a fault: the
        # form says so; every parse (each 30 s) would otherwise warn about it.
        missing = type(exc).__name__ == "AirflowNotFoundException"
        level = logging.INFO if missing else logging.WARNING
        log.log(level, "rollback form: the audit trail could not be read: %s", exc)
        found, error = [ModelRecord(m) for m in models], f"{type(exc).__name__}: {exc}"[:200]
    return {
        "model_md": model_markdown(found, as_of, error),
        "target_md": target_markdown(found, error),
        "labels": model_labels(found) if not error else {},
    }
