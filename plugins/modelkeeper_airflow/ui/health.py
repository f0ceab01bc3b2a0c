"""What a model's health page shows, shaped from the core's rows (no Airflow, no I/O).

Inputs are what the core already returns: the spec, the registry's champion version,
`AuditLog.events(model)` and `History.series(model)`. The monitor re-measures windows
whose labels may still arrive, so one window can have several rows over time: the one on
the most rows (the last recorded of equals) is the current number for that window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelkeeper.contracts.lineage import ALIAS_MOVES
from modelkeeper_airflow.ui import evidence, verdict
from modelkeeper_airflow.ui.evidence import Batch, RetrainRecord
from modelkeeper_airflow.ui.verdict import AlarmRow, LastRun, Verdict

REALIZED, ESTIMATED, EVALUATION = "realized", "estimated", "evaluation"
DRIFT, SCORING = "drift", "scoring"
ALARM, LABELS, UNMATCHED = "alarm", "labels", "unmatched"
DRIFT_SHARE = "drift_share"
COLUMN = "column:"  # per-column drift rows: metric "column:<name>", detail.drifted
TOP_COLUMNS = 8  # columns shown in the most-drifted grid
SCORING_METRICS = ("rows", "failed_rows", "p50_ms_per_1k", "p95_ms_per_1k")


@dataclass(frozen=True)
class Window:
    """The primary metric over one window: realized (labels in) and CBPE's estimate."""

    start: str
    end: str | None
    realized: float | None = None
    estimated: float | None = None
    version: str | None = None
    evaluated: float | None = None  # a candidate's metric on its holdout, at evaluation


@dataclass(frozen=True)
class DriftPoint:
    start: str | None
    share: float | None
    version: str | None
    run_id: str | None


@dataclass(frozen=True)
class ScoringRun:
    run_id: str
    version: str | None
    start: str | None
    end: str | None
    numbers: dict[str, float | None]
    dag_id: str | None = None


@dataclass(frozen=True)
class Unmatched:
    """Labels that matched no prediction, as the last monitor run counted them (history
    kind "labels"): kept in the labels pool, joined when their prediction arrives."""

    count: int
    labels: int | None  # labels of the open windows it looked at
    at: str | None
    run_id: str | None
    dag_id: str | None


@dataclass(frozen=True)
class ColumnDrift:
    """The most-drifted columns over the drift windows: drifted True/False/None per window."""

    windows: list[str] = field(default_factory=list)
    columns: list[tuple[str, list[bool | None]]] = field(default_factory=list)


@dataclass(frozen=True)
class VersionRow:
    """A version the trail knows: where it came from and what became of it, with links
    (label -> URL: the MLflow version page, and the report pages its run wrote)."""

    version: str
    run_id: str | None
    at: str
    event: str
    reason: str | None
    links: dict[str, str] = field(default_factory=dict)
    dag_id: str | None = None  # the DAG of the run that made it (its Airflow link)


@dataclass(frozen=True)
class ModelHealth:
    name: str
    owner: str
    description: str
    primary: str
    champion: str | None
    champion_since: str | None  # when the trail moved the alias to it; None if it did not
    trail_agrees: bool
    notice: str | None = None  # why a part is missing (the registry could not be asked)
    events: list[dict[str, Any]] = field(default_factory=list)  # newest first
    windows: list[Window] = field(default_factory=list)  # oldest first
    drift: list[DriftPoint] = field(default_factory=list)
    scoring: list[ScoringRun] = field(default_factory=list)
    columns: ColumnDrift = field(default_factory=ColumnDrift)
    # guardrail -> {window start: realized value}, the last measurement per window
    guardrails: dict[str, dict[str, float | None]] = field(default_factory=dict)
    versions: list[VersionRow] = field(default_factory=list)  # newest first
    batches: list[Batch] = field(default_factory=list)  # labelled batches, oldest first
    decisions: list[RetrainRecord] = field(default_factory=list)  # newest first
    turned_off: tuple[str, ...] = ()  # evidence the spec does not gather: detector, shadow
    verdict: Verdict | None = None  # healthy / degraded / failing, and why (ui.verdict)
    alarms: list[AlarmRow] = field(default_factory=list)  # newest first
    unmatched: Unmatched | None = None  # the last monitor run's labels without a prediction
    last_runs: list[LastRun] = field(default_factory=list)

    @property
    def last_decision(self) -> RetrainRecord | None:
        return self.decisions[0] if self.decisions else None

    @property
    def latest_drift(self) -> float | None:
        shares = [d.share for d in self.drift if d.share is not None]
        return shares[-1] if shares else None

    def latest(self, kind: str) -> float | None:
        values = [getattr(w, kind) for w in self.windows if getattr(w, kind) is not None]
        return values[-1] if values else None


def champion_since(events: list[dict], champion: str | None) -> tuple[str | None, bool]:
    """When the trail's last alias move made `champion` champion, and whether the trail
    agrees with the registry at all (an alias moved outside modelkeeper does not)."""
    moves = [e for e in events if e["event"] in ALIAS_MOVES]
    last = moves[-1] if moves else None
    expected = last["version_after"] if last else None
    if champion is None or expected != champion:
        return None, expected == champion
    return last["at"], True


def windows(series: list[dict], primary: str) -> list[Window]:
    """One entry per window of the primary metric (whole population, not slices): realized
    and estimated in service, or a candidate's at evaluation (its holdout's window)."""
    from modelkeeper.monitoring.history import prevailing

    found: dict[str, dict[str, Any]] = {}
    rows = [
        row
        for row in series
        if row["kind"] in (REALIZED, ESTIMATED, EVALUATION)
        and row["metric"] == primary
        and not row.get("slice_column")
        and row.get("window_start")
    ]
    # A window re-measured keeps its measurement on the most rows (the latest of equals):
    # a smaller sample never replaces a larger one.
    for row in prevailing(rows, per_version=False):
        w = found.setdefault(row["window_start"], {"end": row.get("window_end")})
        w[row["kind"]] = row["value"]
        w["version"] = row.get("version")
    return [
        Window(start, w["end"], w.get(REALIZED), w.get(ESTIMATED), w["version"], w.get(EVALUATION))
        for start, w in sorted(found.items())
    ]


def guardrails(series: list[dict], names: list[str]) -> dict[str, dict[str, float | None]]:
    """Each guardrail's realized value per window (the last measurement of a window)."""
    out: dict[str, dict[str, float | None]] = {n: {} for n in names}
    for row in series:
        if row["kind"] != REALIZED or row["metric"] not in out or row.get("slice_column"):
            continue
        if row.get("window_start"):
            out[row["metric"]][row["window_start"]] = row["value"]
    return {name: dict(sorted(values.items())) for name, values in out.items() if values}


def drift(series: list[dict]) -> list[DriftPoint]:
    return [
        DriftPoint(r.get("window_start"), r["value"], r.get("version"), r.get("run_id"))
        for r in series
        if r["kind"] == DRIFT and r["metric"] == DRIFT_SHARE
    ]


def column_drift(series: list[dict], top: int = TOP_COLUMNS) -> ColumnDrift:
    """Per window (oldest first), which columns drifted; the `top` columns that drifted
    in the most windows (ties by name), each with its flag per window."""
    flags: dict[str, dict[str, bool | None]] = {}
    windows: dict[str, None] = {}
    for r in series:
        if r["kind"] != DRIFT or not str(r["metric"]).startswith(COLUMN):
            continue
        window = r.get("window_start") or r.get("run_id") or "?"
        windows.setdefault(window)
        drifted = (r.get("detail") or {}).get("drifted")
        column = r["metric"].removeprefix(COLUMN)
        flags.setdefault(column, {})[window] = None if drifted is None else bool(drifted)
    order = sorted(windows)
    ranked = sorted(flags, key=lambda c: (-sum(1 for v in flags[c].values() if v), c))
    return ColumnDrift(order, [(c, [flags[c].get(w) for w in order]) for c in ranked[:top]])


def versions(events: list[dict], links: Any = None) -> list[VersionRow]:
    """One row per version the trail names (as candidate or as the alias's new target),
    newest event first; `links(version, run_id) -> {label: url}` adds its links."""
    rows: dict[str, VersionRow] = {}
    for e in events:  # oldest first: the last event per version wins, its run stays
        version = e.get("candidate_version") or (
            e.get("version_after") if e["event"] in ALIAS_MOVES else None
        )
        if not version:
            continue
        first = rows.get(str(version))
        run_id = first.run_id if first and first.run_id else e.get("run_id")
        dag_id = first.dag_id if first and first.run_id else e.get("dag_id")
        rows[str(version)] = VersionRow(
            str(version), run_id, e["at"], e["event"], e.get("reason"),
            links(str(version), run_id) if links else {}, dag_id,
        )  # fmt: skip
    return sorted(rows.values(), key=lambda r: r.at, reverse=True)


def scoring(series: list[dict]) -> list[ScoringRun]:
    """The scoring numbers of each run, in the order the runs' windows came."""
    runs: dict[str, dict[str, Any]] = {}
    for r in series:
        if r["kind"] != SCORING or r["metric"] not in SCORING_METRICS:
            continue
        run = runs.setdefault(
            r.get("run_id") or "?",
            {
                "version": r.get("version"),
                "start": r.get("window_start"),
                "end": r.get("window_end"),
                "numbers": {},
                "dag_id": r.get("dag_id"),
            },
        )
        run["numbers"][r["metric"]] = r["value"]
    return [ScoringRun(run_id, **run) for run_id, run in runs.items()]


def unmatched(series: list[dict]) -> Unmatched | None:
    """The last count of labels that matched no prediction."""
    rows = [r for r in series if r["kind"] == LABELS and r["metric"] == UNMATCHED]
    if not rows:
        return None
    r = max(rows, key=lambda r: (r.get("recorded_at") or "", r.get("id") or 0))
    return Unmatched(
        int(r["value"] or 0), r.get("rows"), r.get("recorded_at"), r.get("run_id"), r.get("dag_id")
    )


def model_health(
    spec: Any,
    champion: str | None,
    events: list[dict],
    series: list[dict],
    *,
    notice: str | None = None,
    links: Any = None,
    last_runs: list[LastRun] = (),  # type: ignore[assignment]
) -> ModelHealth:
    """Everything the pages show about one model (`spec` is a modelkeeper ModelSpec;
    `links(version, run_id)` gives a version's links, see versions; `last_runs` the latest
    run of each of its DAGs, for the verdict)."""
    since, agrees = champion_since(events, champion)
    if notice:  # the champion is unknown, not absent: nothing to compare the trail with
        agrees = True
    found_windows = windows(series, spec.metrics.primary)
    found_drift = drift(series)
    alarm_rows = verdict.alarms(series, events)
    return ModelHealth(
        name=spec.name,
        owner=spec.owner,
        description=spec.description,
        primary=spec.metrics.primary,
        champion=champion,
        champion_since=since,
        trail_agrees=agrees,
        notice=notice,
        events=list(reversed(events)),
        windows=found_windows,
        drift=found_drift,
        scoring=scoring(series),
        columns=column_drift(series),
        guardrails=guardrails(series, [g.name for g in spec.metrics.guardrails]),
        versions=versions(events, links),
        batches=evidence.batches(series, spec),
        decisions=evidence.decisions(events),
        turned_off=tuple(
            name for name in ("detector", "shadow") if not getattr(spec.retrain, name).enabled
        ),
        verdict=verdict.verdict(
            spec,
            champion=champion,
            champion_known=not notice,
            windows=found_windows,
            drift=found_drift,
            alarm_rows=alarm_rows,
            last_runs=list(last_runs),
            champion_since=since,
        ),
        alarms=alarm_rows,
        unmatched=unmatched(series),
        last_runs=list(last_runs),
    )


def model_dag_ids(spec: Any) -> set[str]:
    """The DAGs the factory builds for a model: reading any of them lets one see it."""
    return {spec.dag_id, spec.score_dag_id, spec.monitor_dag_id}


def collect(
    spec: Any,
    registry: Any,
    audit: Any,
    history: Any,
    *,
    scoring_runs: bool = True,
    registry_error: str | None = None,
    report_links: Any = None,
    last_runs: list[LastRun] = (),  # type: ignore[assignment]
) -> ModelHealth:
    """Read one model's health from the core's clients (Registry, AuditLog, History).

    Only the series the pages draw are queried (not the per-column drift or quality rows).
    The model page also gets the retraining evidence (ui.evidence); the list only the
    decisions, which are in the audit trail it reads anyway.
    A registry that cannot be asked (`registry` None with `registry_error`, or unreachable
    now) leaves the champion unknown and says why; the trail and the history still show.
    With `scoring_runs` (the model page), also the scoring runs, the per-column drift and
    each version's links: `report_links(run_id) -> {label: url}` (the app's, which knows
    the report folders) plus the version's page in the MLflow UI.
    """
    from modelkeeper.contracts.errors import UnavailableError

    champion = None
    if registry is not None:
        try:
            found = registry.alias(spec.registered_model_name)
            champion = found.version if found else None
        except UnavailableError as exc:
            registry_error = str(exc)
    notice = f"champion unknown: the MLflow registry {registry_error}" if registry_error else None
    primary = spec.metrics.primary
    series = [
        *history.series(spec.name, kind=ALARM),  # the verdict: open and suppressed alarms
        *history.series(spec.name, kind=LABELS, metric=UNMATCHED),
        *(
            history.series(spec.name, kind=REALIZED)  # the primary and the guardrails
            if scoring_runs
            else history.series(spec.name, kind=REALIZED, metric=primary)
        ),
        *history.series(spec.name, kind=ESTIMATED, metric=primary),
        *(history.series(spec.name, kind=EVALUATION, metric=primary) if scoring_runs else []),
        *(
            history.series(spec.name, kind=DRIFT)  # the share and every column
            if scoring_runs
            else history.series(spec.name, kind=DRIFT, metric=DRIFT_SHARE)
        ),
        *(history.series(spec.name, kind=SCORING) if scoring_runs else []),
        *(
            [
                *history.series(spec.name, kind=evidence.DETECTOR, metric=primary),
                *history.series(spec.name, kind=evidence.EVIDENCE),
            ]
            if scoring_runs
            else []
        ),
    ]
    series.sort(key=lambda r: (r.get("window_start") or "", r.get("id") or 0))

    def links(version: str, run_id: str | None) -> dict[str, str]:
        found = {}
        if registry is not None and not registry_error:
            url = registry.version_url(spec.registered_model_name, version)
            if url:
                found["MLflow version"] = url
        return {**found, **(report_links(run_id) if report_links else {})}

    return model_health(
        spec,
        champion,
        audit.events(spec.name),
        series,
        notice=notice,
        links=links if scoring_runs else None,
        last_runs=last_runs,
    )
