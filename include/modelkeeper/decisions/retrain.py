"""Whether a run should retrain: a pure function of what monitoring measured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkeeper.contracts.metric_names import higher_is_better
from modelkeeper.contracts.results import Monitoring, RetrainDecision

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec


def age_days(data_end: str | None, batch_end: str | None) -> float | None:
    """Days from a model's data end to a batch's newest row (ISO timestamps; None if
    either is unknown). Naive timestamps are taken as UTC."""
    from datetime import UTC, datetime

    if not data_end or not batch_end:
        return None

    def parse(text: str) -> datetime:
        t = datetime.fromisoformat(text)
        return t if t.tzinfo else t.replace(tzinfo=UTC)

    return (parse(batch_end) - parse(data_end)).total_seconds() / 86400


def should_retrain(
    m: Monitoring,
    spec: ModelSpec,
    *,
    force: bool = False,
    force_reason: str = "",
    alarm: str | None = None,
) -> RetrainDecision:
    primary = spec.metrics.primary
    if force:
        return RetrainDecision(True, f"forced by a person: {force_reason or 'no reason given'}")
    if m.trained_version is not None:
        # A cleared run finishes what it started; train reuses the version, no second one.
        return RetrainDecision(
            True, f"rerun: this run already trained v{m.trained_version}; finishing it"
        )
    if m.champion_version is None:
        return RetrainDecision(True, "no champion yet")
    if m.champion_problem:
        return RetrainDecision(
            True, f"champion v{m.champion_version} unusable: {m.champion_problem}"
        )
    if alarm:  # monitoring saw drift or decay in production: retrain on what is accepted
        return RetrainDecision(True, f"alarm: {alarm}")
    if m.batch_rows == 0:
        return RetrainDecision(
            False, f"no retrain: no new data; champion v{m.champion_version} holds"
        )
    reasons = []
    threshold = spec.drift.share_threshold
    if m.drift_share is not None and m.drift_share >= threshold:
        reasons.append(f"data drift: {m.drift_share:.0%} of columns drifted ≥ {threshold:.0%}")
    floor = spec.retrain.performance_floor
    if floor is not None and m.champion_metric is not None:
        decayed = (
            m.champion_metric < floor if higher_is_better(primary) else m.champion_metric > floor
        )
        if decayed:
            reasons.append(
                f"performance decay: champion {primary} {m.champion_metric:.3f} on the new batch, floor {floor:.3f}"
            )
    max_age = spec.retrain.max_age_days
    if max_age is not None and m.champion_age_days is not None and m.champion_age_days >= max_age:
        reasons.append(
            f"stale champion: its data ends {m.champion_age_days:.0f} days before the new "
            f"batch's ≥ {max_age}"
        )
    if reasons:
        return RetrainDecision(True, "; ".join(reasons))
    parts = [f"champion v{m.champion_version} holds"]
    if m.drift_share is not None:
        parts.append(f"drift {m.drift_share:.0%} < {threshold:.0%}")
    if m.champion_metric is not None:
        parts.append(f"{primary} {m.champion_metric:.3f} on {m.batch_rows} new rows")
    return RetrainDecision(False, "no retrain: " + ", ".join(parts))
