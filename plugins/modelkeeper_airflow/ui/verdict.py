"""A model's verdict on its health page: healthy, degraded or failing, with the rule.

Pure: from the spec, the rows ui.health already read (windows, drift, alarms, audit
events) and the latest run of each of the model's DAGs. The rule is the spec's own
thresholds, so the page can print it beside the verdict:

- failing: the latest realized primary metric is past `monitoring.metric_floor`, or the
  latest run of one of the model's DAGs failed (predictions or measurements are not
  being made);
- degraded: an alarm fired that no retrain has answered yet (no retrain decision,
  promotion or refusal after it), alarms suppressed by the cooldown since, the latest
  estimated primary metric past the floor, the latest scored batch's drift share at or
  above `monitoring.drift_share`, or no champion;
- healthy: none of these, on measurements (a window's realized or estimated metric, or
  a scored batch's drift);
- unknown (grey): none of these, and nothing measured yet: a new model is not "healthy".

Each condition knows since when it holds (the first window of the streak, the alarm's or
the run's time); the verdict's "since" is the earliest of the deciding level's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelkeeper.contracts.lineage import AuditAction

HEALTHY, DEGRADED, FAILING, UNKNOWN = "healthy", "degraded", "failing", "unknown"
COLORS = {HEALTHY: "#2e7d32", DEGRADED: "#b26a00", FAILING: "#c0392b", UNKNOWN: "#777"}
#: audit events that answer an alarm: a retrain looked at it (every action but a dry run's)
ANSWERS = tuple(a for a in AuditAction.__args__ if a not in ("dry_run", "approval"))


@dataclass(frozen=True)
class Condition:
    level: str  # DEGRADED or FAILING
    text: str
    since: str | None = None
    link: tuple[str, str] | None = None  # (label, URL): the run behind it


@dataclass(frozen=True)
class AlarmRow:
    """An alarm from the history (kind "alarm"): fired or suppressed by the cooldown."""

    at: str
    status: str
    kinds: str
    reason: str
    version: str | None
    run_id: str | None
    dag_id: str | None
    open: bool = False  # fired, and no retrain has answered it yet


@dataclass(frozen=True)
class LastRun:
    """The latest run of one of the model's DAGs (from Airflow's metadata DB)."""

    dag_id: str
    run_id: str
    state: str
    at: str | None  # when it ended (or started, while running)
    url: str | None = None


@dataclass(frozen=True)
class Verdict:
    level: str
    since: str | None
    conditions: list[Condition] = field(default_factory=list)
    rule: list[str] = field(default_factory=list)  # the rule, with the spec's numbers

    @property
    def color(self) -> str:
        return COLORS[self.level]


def alarms(series: list[dict], events: list[dict]) -> list[AlarmRow]:
    """The alarm rows, newest first; a fired one is open until a retrain answers it."""
    answered = max((e["at"] for e in events if e["event"] in ANSWERS), default="")
    out = []
    for r in series:
        if r["kind"] != "alarm":
            continue
        detail = r.get("detail") or {}
        status = detail.get("status") or "fired"
        at = r.get("recorded_at") or ""
        out.append(
            AlarmRow(
                at=at,
                status=status,
                kinds=str(r["metric"]),
                reason=str(detail.get("reason") or ""),
                version=r.get("version"),
                run_id=r.get("run_id"),
                dag_id=r.get("dag_id"),
                open=status == "fired" and _later(at, answered),
            )
        )
    return sorted(out, key=lambda a: a.at, reverse=True)


def _later(at: str, than: str) -> bool:
    """Timestamps as the stores write them (ISO, UTC): compare their first 19 chars."""
    return at[:19].replace(" ", "T") > than[:19].replace(" ", "T")


def _streak(points: list[tuple[str, float | None]], bad: Any) -> tuple[float, str] | None:
    """The latest value and the start of the streak of bad values that ends it, or None
    when the latest value is fine (points oldest first, None values left out)."""
    known = [(at, v) for at, v in points if v is not None]
    if not known or not bad(known[-1][1]):
        return None
    since = known[-1][0]
    for at, v in reversed(known):
        if not bad(v):
            break
        since = at
    return known[-1][1], since


def verdict(
    spec: Any,
    *,
    champion: str | None,
    champion_known: bool,
    windows: list[Any],
    drift: list[Any],
    alarm_rows: list[AlarmRow],
    last_runs: list[LastRun],
    champion_since: str | None = None,
) -> Verdict:
    """The verdict and the conditions behind it (`windows` are ui.health.Window, oldest
    first; `drift` ui.health.DriftPoint)."""
    conditions = [
        *_metric_conditions(spec, windows),
        *_run_conditions(last_runs),
        *_alarm_conditions(spec, alarm_rows),
        *_drift_conditions(spec, drift),
    ]
    if champion_known and champion is None:
        conditions.append(Condition(DEGRADED, "no champion: nothing serves predictions"))
    if any(c.level == FAILING for c in conditions):
        level = FAILING
    else:
        level = DEGRADED if conditions else HEALTHY
    measured = any(w.realized is not None or w.estimated is not None for w in windows) or any(
        p.share is not None for p in drift
    )
    if level == HEALTHY and not measured:
        level = UNKNOWN
    deciding = [c for c in conditions if c.level == level and c.since]
    if deciding:
        since = min(c.since for c in deciding)
    else:
        since = champion_since if level == HEALTHY else None
    return Verdict(level, since, conditions, rule(spec))


def _metric_conditions(spec: Any, windows: list[Any]) -> list[Condition]:
    """The latest realized (failing) or estimated (degraded) metric past the floor."""
    from modelkeeper.contracts.metric_names import higher_is_better

    m, primary = spec.monitoring, spec.metrics.primary
    floor = m.metric_floor if m is not None else None
    if floor is None:
        return []
    up = higher_is_better(primary)
    word = "below" if up else "above"

    def past(v: float) -> bool:
        return (v < floor) if up else (v > floor)

    out = []
    for kind, level in (("realized", FAILING), ("estimated", DEGRADED)):
        found = _streak([(w.start, getattr(w, kind)) for w in windows], past)
        if found:
            value, since = found
            out.append(
                Condition(
                    level,
                    f"{kind} {primary} {value:.3f} {word} the floor {floor:g} "
                    f"(windows from {since[:10]} on)",
                    since,
                )
            )
    return out


def _run_conditions(last_runs: list[LastRun]) -> list[Condition]:
    return [
        Condition(
            FAILING,
            f"the latest run of {run.dag_id} failed",
            run.at,
            (run.run_id, run.url) if run.url else None,
        )
        for run in last_runs
        if run.state == "failed"
    ]


def _alarm_conditions(spec: Any, alarm_rows: list[AlarmRow]) -> list[Condition]:
    """Open alarms (newest first in `alarm_rows`), and those the cooldown suppressed since
    the last one fired."""
    out = []
    opened = [a for a in alarm_rows if a.open]
    if opened:
        out.append(
            Condition(
                DEGRADED,
                f"{len(opened)} open alarm(s), not yet answered by a retrain: {opened[0].reason}",
                opened[-1].at,
            )
        )
    last_fired = next((a.at for a in alarm_rows if a.status == "fired"), "")
    suppressed = [a for a in alarm_rows if a.status == "suppressed" and _later(a.at, last_fired)]
    if suppressed:
        out.append(
            Condition(
                DEGRADED,
                f"{len(suppressed)} alarm(s) suppressed by the cooldown "
                f"({spec.monitoring.cooldown_hours:g} h) since the last that fired",
                suppressed[-1].at,
            )
        )
    return out


def _drift_conditions(spec: Any, drift: list[Any]) -> list[Condition]:
    m = spec.monitoring
    if m is None or m.drift_share is None:
        return []
    found = _streak([(p.start or "", p.share) for p in drift], lambda v: v >= m.drift_share)
    if not found:
        return []
    share, since = found
    return [
        Condition(
            DEGRADED,
            f"drift share {share:.0%} ≥ {m.drift_share:.0%} in the latest scored batch",
            since or None,
        )
    ]


def rule(spec: Any) -> list[str]:
    """The rule in words, with the spec's numbers (printed under the verdict)."""
    from modelkeeper.contracts.metric_names import higher_is_better

    m = spec.monitoring
    primary = spec.metrics.primary
    floor = m.metric_floor if m is not None else None
    word = "below" if higher_is_better(primary) else "above"
    dags = f"retrain_/score_/monitor_{spec.name}"
    if floor is None:
        on_floor = f"(the spec sets no floor for {primary}: monitoring.metric_floor)"
        failing = f"failing: the latest run of {dags} failed {on_floor}"
        estimated = ""
    else:
        failing = (
            f"failing: the latest realized {primary} is {word} the floor {floor:g} "
            f"(monitoring.metric_floor), or the latest run of {dags} failed"
        )
        estimated = f"the latest estimated {primary} is {word} {floor:g}; "
    drift = (
        f"the latest scored batch's drift share is at least {m.drift_share:.0%} "
        "(monitoring.drift_share); "
        if m is not None and m.drift_share is not None
        else ""
    )
    cooldown = m.cooldown_hours if m is not None else 0
    degraded = (
        "degraded: an alarm fired and no retrain has answered it yet, or alarms were "
        f"suppressed by the cooldown ({cooldown:g} h) since; {estimated}{drift}or no champion"
    )
    return [
        failing,
        degraded,
        "healthy: none of these, on measurements (a window's realized or estimated "
        f"{primary}, or a scored batch's drift)",
        "unknown: none of these, and nothing measured yet",
    ]
