"""A retrain run's outcome in one line, for the places people scan (the run's note).

"promoted v3: roc_auc 0.674 → 0.690", "refused v3: roc_auc 0.674 → 0.672 (-0.002 < +0.005
required)", "kept v2: nothing new". Pure functions of what the stages already know; the
stage that knows the outcome pushes its line (lineage.OUTCOME_XCOM), and the plugin's
listener copies the run's latest one to the DAG run's note. The full reason stays in the
audit trail, the task log and the MLflow run's tags.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelkeeper.contracts.results import ChampionChange

#: Airflow caps a DAG run note at 1000 characters; a glance line needs far fewer.
MAX_CHARS = 300


def _cut(line: str) -> str:
    line = " ".join(line.split())  # one line, whatever the reasons held
    return line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 1] + "…"


def metric_move(primary: str, candidate: float | None, champion: float | None) -> str:
    """ "roc_auc 0.674 → 0.690" (champion → candidate), "roc_auc 0.690" without a champion."""
    if candidate is None:
        return ""
    if champion is None:
        return f"{primary} {candidate:.3f}"
    return f"{primary} {champion:.3f} → {candidate:.3f}"


def _why(reason: str, *prefixes: str) -> str:
    for prefix in prefixes:
        reason = reason.removeprefix(prefix)
    return reason.strip()


def of_change(
    change: ChampionChange,
    primary: str,
    candidate: float | None,
    champion: float | None,
) -> str:
    """The line for what promote (or a rejection) did to the candidate."""
    v = f"v{change.candidate_version}" if change.candidate_version else "the candidate"
    move = metric_move(primary, candidate, champion)
    if change.action == "promoted":
        line = f"promoted {v}: {move}" if move else f"promoted {v}"
        if change.champion_before is None:
            line += " (first model)"
        if change.reason.startswith("approved by "):
            line += f", approved by {change.who}"
        return _cut(line)
    if change.action == "dry_run":
        return _cut(f"dry run, nothing moved: would have promoted {v}: {move}".rstrip(": "))
    if change.action == "rejected":
        return _cut(f"rejected {v} (by {change.who}): {move}".rstrip(": "))
    if change.action in ("kept", "refused"):
        why = _why(change.reason, "kept: ", "refused: ")
        if move and move not in why:
            why = f"{move} ({why})"
        return _cut(f"refused {v}: {why}")
    return _cut(change.summary)


def nothing_new(champion_version: str | None, twin_version: str) -> str:
    """A forced retrain on data and spec a version was already trained on."""
    if champion_version == twin_version:
        return f"kept v{champion_version}: nothing new"
    if champion_version is None:
        return f"no champion: nothing new (v{twin_version} was trained on this data and spec)"
    return f"kept v{champion_version}: nothing new (v{twin_version} was trained on this data)"


def of_measured(joined: int, pending: int, unmatched: int) -> str:
    """A monitor run's labels in one line: joined, still pending, matching no prediction."""
    line = f"labels: {joined} predictions joined with their label, {pending} pending"
    if unmatched:
        line += f"; {unmatched} labels match no prediction (kept: joined when theirs arrives)"
    else:
        line += "; every label matched a prediction"
    return _cut(line)


def of_alarm(status: str, reason: str, before: str | None = None) -> str:
    """A monitor or score run's alarm ("fired" or "suppressed"), after its labels line."""
    alarm = f"alarm {status}: {reason}" if reason else f"alarm {status}"
    return _cut(f"{before}; {alarm}" if before else alarm)
