"""The promotion gate: a pure function from evidence to a decision a person can read.

`decide(candidate, champion, spec)` never touches MLflow or Airflow; the promote step
acts on its Decision. A refusal is a normal outcome, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelkeeper.contracts.metric_names import higher_is_better
from modelkeeper.contracts.results import Comparison, Decision, ModelScore
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


def decide(
    candidate: Candidate,
    champion: Champion | None,
    spec: ModelSpec,
    comparison: Comparison | None = None,
) -> Decision:
    """The gate. `comparison`: the candidate (b) against the champion (a), paired on the
    same holdout rows; with `promotion.paired_test` the gain must also clear the noise."""
    base = {
        "candidate_version": candidate.version,
        "champion_version": champion.version if champion else None,
    }

    def refuse(reason: str, checks: list[str] | None = None) -> Decision:
        return Decision(False, f"refused: {reason}", checks or [], **base)

    why = _untrustworthy(candidate, spec)
    if why:
        return refuse(why)
    unusable, why = _champion_unusable(candidate, champion, spec)
    if why:
        return refuse(why)
    checks, why = _absolute_checks(candidate, spec)
    if why:
        return refuse(why, checks)
    primary, value = spec.metrics.primary, candidate.score.metrics[spec.metrics.primary]
    if champion is None:
        reason = "; ".join([f"promoted: first model, {primary} {_f(value)}", *checks])
        return Decision(True, reason, checks, **base)
    if unusable:
        # Nothing to compare with: the absolute checks passed, and a person decides.
        passed = "; ".join(checks) or f"{primary} {_f(value)}"
        reason = f"needs approval: {unusable}; nothing to compare with, {passed}"
        return Decision(True, reason, checks, needs_approval=True, **base)
    why = _better(candidate, champion, spec, comparison, checks)
    if why:
        return refuse(why, checks)
    guard_notes, why = _guardrails(candidate, champion, spec)
    if why:
        return refuse(why, checks)
    reason = f"promoted: {checks[-1]}"
    if guard_notes:
        reason += "; guardrails ok: " + ", ".join(guard_notes)
    return Decision(True, reason, checks + guard_notes, **base)


def _untrustworthy(candidate: Candidate, spec: ModelSpec) -> str | None:
    """Preconditions: without these the comparison itself cannot be trusted."""
    policy, primary, cand = spec.promotion, spec.metrics.primary, candidate.score
    if not candidate.validated:
        return "training data has no passed-validation lineage tag"
    if cand.rows < policy.min_eval_rows:
        return f"evaluation frame too small: {cand.rows} rows < {policy.min_eval_rows}"
    if spec.target.task == "classification" and len(cand.classes) < 2:
        return f"class missing from evaluation frame: only {cand.classes} present"
    if primary not in cand.metrics:
        return f"{primary} could not be computed on the evaluation frame"
    return None


def _champion_unusable(
    candidate: Candidate, champion: Champion | None, spec: ModelSpec
) -> tuple[str | None, str | None]:
    """(why the champion cannot be compared with, a refusal)."""
    if champion is None:
        return None, None
    unusable = None
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
    if unusable and spec.promotion.unusable_champion == "refuse":
        return unusable, unusable
    # A rerun of an old run, or a backfill, can score well on its own (older) holdout:
    # never let a model of an older data window replace one that saw newer data.
    if candidate.data_end and champion.data_end and candidate.data_end < champion.data_end:
        return unusable, (
            f"stale candidate: its data ends {candidate.data_end}, champion "
            f"v{champion.version}'s ends {champion.data_end}"
        )
    return unusable, None


def _absolute_checks(candidate: Candidate, spec: ModelSpec) -> tuple[list[str], str | None]:
    """The floor and the slice gap: (checks passed, a refusal)."""
    policy, primary = spec.promotion, spec.metrics.primary
    value, checks = candidate.score.metrics[primary], []
    if policy.floor is not None:
        below = value < policy.floor if higher_is_better(primary) else value > policy.floor
        if below:
            return checks, f"{primary} {_f(value)} below floor {_f(policy.floor)}"
        checks.append(f"{primary} {_f(value)} clears floor {_f(policy.floor)}")
    if policy.max_slice_gap is not None:
        gap = slice_gap(candidate.score, primary, policy.min_slice_rows)
        if gap is not None:
            if gap[0] > policy.max_slice_gap:
                return checks, f"slice gap {_f(gap[0])} > {_f(policy.max_slice_gap)} ({gap[1]})"
            checks.append(f"slice gap {_f(gap[0])} ≤ {_f(policy.max_slice_gap)}")
    return checks, None


def _better(
    candidate: Candidate,
    champion: Champion,
    spec: ModelSpec,
    comparison: Comparison | None,
    checks: list[str],
) -> str | None:
    """Is the candidate better by the required gain (and beyond noise)? Appends the check
    to `checks`; returns a refusal otherwise."""
    policy, primary = spec.promotion, spec.metrics.primary
    champ = champion.score
    assert champ is not None  # a loadable champion was scored
    old, value = champ.metrics.get(primary), candidate.score.metrics[primary]
    if old is None:
        return f"champion v{champion.version} has no {primary} on this frame"
    gain = (value - old) if higher_is_better(primary) else (old - value)
    need = max(policy.min_improvement, policy.min_relative_improvement * abs(old))
    interval = ""
    if comparison is not None and policy.paired_test:
        interval = f", {comparison.level:.0%} CI [{comparison.lo:+.4f}, {comparison.hi:+.4f}]"
    moved = f"{primary} {_f(old)} → {_f(value)} ({gain:+.3f}"
    if gain < need:
        return f"{moved} < {need:+.3f} required{interval})"
    if interval and not comparison.lo > 0:
        return f"{moved}{interval}): not better beyond noise on {comparison.rows} rows"
    checks.append(f"{moved} ≥ {need:+.3f}{interval})")
    return None


def _guardrails(
    candidate: Candidate, champion: Champion, spec: ModelSpec
) -> tuple[list[str], str | None]:
    """Guardrail metrics and latency: (notes, a refusal)."""
    policy, cand, champ = spec.promotion, candidate.score, champion.score
    notes = []
    for guard in spec.metrics.guardrails:
        c, o = cand.metrics.get(guard.name), champ.metrics.get(guard.name)
        if c is None or o is None:
            return notes, f"guardrail {guard.name} not computable"
        worse = (o - c) if higher_is_better(guard.name) else (c - o)
        if worse > guard.tolerance:
            return notes, (
                f"guardrail {guard.name} {_f(o)} → {_f(c)} worse by {worse:.3f} > "
                f"{guard.tolerance:.3f}"
            )
        notes.append(f"{guard.name} {_f(o)} → {_f(c)}")
    if policy.max_latency_ratio is not None and cand.latency_ms_per_1k and champ.latency_ms_per_1k:
        ratio = cand.latency_ms_per_1k / champ.latency_ms_per_1k
        if ratio > policy.max_latency_ratio:
            return notes, f"latency {ratio:.1f}x the champion's > {policy.max_latency_ratio:.1f}x"
        notes.append(f"latency {ratio:.2f}x")
    return notes, None
