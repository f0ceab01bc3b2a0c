"""The promotion gate: a pure function from evidence to a decision a person can read.

`decide(candidate, champion, spec)` never touches MLflow or Airflow; the promote step
acts on its Decision. A refusal is a normal outcome, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelkeeper.contracts.metric_names import higher_is_better
from modelkeeper.contracts.results import Decision, ModelScore
from modelkeeper.modeling.evaluation import slice_gap

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec


@dataclass(frozen=True)
class Candidate:
    version: str | None
    score: ModelScore
    input_columns: list[str]
    validated: bool  # training data carries a passed-validation lineage tag
    data_end: str | None = None  # ISO timestamp of the newest row it was trained/held out on


@dataclass(frozen=True)
class Champion:
    version: str
    score: ModelScore | None
    input_columns: list[str] | None = None
    load_error: str | None = None
    data_end: str | None = None


def _f(x: float) -> str:
    return f"{x:.3f}"


def decide(candidate: Candidate, champion: Champion | None, spec: ModelSpec) -> Decision:
    policy, primary = spec.promotion, spec.metrics.primary
    up = higher_is_better(primary)
    cand = candidate.score
    base = {
        "candidate_version": candidate.version,
        "champion_version": champion.version if champion else None,
    }

    def refuse(reason: str, checks: list[str] | None = None) -> Decision:
        return Decision(False, f"refused: {reason}", checks or [], **base)

    # Preconditions: without these the comparison itself cannot be trusted.
    if not candidate.validated:
        return refuse("training data has no passed-validation lineage tag")
    if cand.rows < policy.min_eval_rows:
        return refuse(f"evaluation frame too small: {cand.rows} rows < {policy.min_eval_rows}")
    if spec.target.task == "classification" and len(cand.classes) < 2:
        return refuse(f"class missing from evaluation frame: only {cand.classes} present")
    if primary not in cand.metrics:
        return refuse(f"{primary} could not be computed on the evaluation frame")
    unusable = None  # why the champion cannot be compared with, if it cannot
    if champion is not None:
        if champion.load_error:
            unusable = f"champion v{champion.version} unloadable: {champion.load_error}"
        elif champion.input_columns is not None and sorted(champion.input_columns) != sorted(
            candidate.input_columns
        ):
            extra = sorted(set(candidate.input_columns) - set(champion.input_columns))
            gone = sorted(set(champion.input_columns) - set(candidate.input_columns))
            unusable = (
                f"champion v{champion.version} input schema differs (new: {extra}, dropped: {gone})"
            )
        if unusable and policy.unusable_champion == "refuse":
            return refuse(unusable)
        # A rerun of an old run, or a backfill, can score well on its own (older) holdout:
        # never let a model of an older data window replace one that saw newer data.
        if candidate.data_end and champion.data_end and candidate.data_end < champion.data_end:
            return refuse(
                f"stale candidate: its data ends {candidate.data_end}, champion "
                f"v{champion.version}'s ends {champion.data_end}"
            )

    value = cand.metrics[primary]
    checks: list[str] = []
    if policy.floor is not None:
        below = value < policy.floor if up else value > policy.floor
        if below:
            return refuse(f"{primary} {_f(value)} below floor {_f(policy.floor)}")
        checks.append(f"{primary} {_f(value)} clears floor {_f(policy.floor)}")

    gap = (
        slice_gap(cand, primary, policy.min_slice_rows)
        if policy.max_slice_gap is not None
        else None
    )
    if gap is not None:
        if gap[0] > policy.max_slice_gap:
            return refuse(f"slice gap {_f(gap[0])} > {_f(policy.max_slice_gap)} ({gap[1]})", checks)
        checks.append(f"slice gap {_f(gap[0])} ≤ {_f(policy.max_slice_gap)}")

    if champion is None:
        return Decision(
            True,
            f"promoted: first model, {primary} {_f(value)}; " + "; ".join(checks),
            checks,
            **base,
        )
    if unusable:
        # Nothing to compare with: the absolute checks passed, and a person decides.
        passed = "; ".join(checks) or f"{primary} {_f(value)}"
        reason = f"needs approval: {unusable}; nothing to compare with, {passed}"
        return Decision(True, reason, checks, needs_approval=True, **base)

    champ = champion.score
    assert champ is not None  # a loadable champion was scored
    old = champ.metrics.get(primary)
    if old is None:
        return refuse(f"champion v{champion.version} has no {primary} on this frame", checks)
    gain = (value - old) if up else (old - value)
    need = max(policy.min_improvement, policy.min_relative_improvement * abs(old))
    moved = f"{primary} {_f(old)} → {_f(value)} ({gain:+.3f}"
    if gain < need:
        return refuse(f"{moved} < {need:+.3f} required)", checks)
    checks.append(f"{moved} ≥ {need:+.3f})")

    guard_notes = []
    for guard in spec.metrics.guardrails:
        c, o = cand.metrics.get(guard.name), champ.metrics.get(guard.name)
        if c is None or o is None:
            return refuse(f"guardrail {guard.name} not computable", checks)
        worse = (o - c) if higher_is_better(guard.name) else (c - o)
        if worse > guard.tolerance:
            return refuse(
                f"guardrail {guard.name} {_f(o)} → {_f(c)} worse by {worse:.3f} > {guard.tolerance:.3f}",
                checks,
            )
        guard_notes.append(f"{guard.name} {_f(o)} → {_f(c)}")

    if policy.max_latency_ratio is not None and cand.latency_ms_per_1k and champ.latency_ms_per_1k:
        ratio = cand.latency_ms_per_1k / champ.latency_ms_per_1k
        if ratio > policy.max_latency_ratio:
            return refuse(
                f"latency {ratio:.1f}x the champion's > {policy.max_latency_ratio:.1f}x", checks
            )
        guard_notes.append(f"latency {ratio:.2f}x")

    reason = f"promoted: {checks[-1]}"
    if guard_notes:
        reason += "; guardrails ok: " + ", ".join(guard_notes)
    return Decision(True, reason, checks + guard_notes, **base)
