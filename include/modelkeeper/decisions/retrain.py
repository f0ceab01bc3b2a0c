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
    """Retrain when it pays off: the shadow challenger beats the champion beyond noise, by
    the gain worth a retrain, on the new batch. An alarm (the champion's change detector;
    drift or a floor where the spec makes them triggers) retrains when the shadow confirms
    that a fresh model is better beyond noise, or when there is no shadow to ask; age is a
    schedule. Right after a refused candidate, floor and detector wait a batch."""
    early = _preconditions(m, force=force, force_reason=force_reason, alarm=alarm)
    if early is not None:
        return early
    shadow = m.shadow.comparison if m.shadow is not None else None
    pays = shadow is not None and shadow.significant(min_gain(spec, _scale(m)))
    triggers, reasons, held = [], [], []
    if pays:
        triggers.append("shadow")
        reasons.append(f"retraining pays off: shadow {shadow.describe()}")
    for kind, reason in _alarms(m, spec):
        if m.held_back and kind in ("detector", "floor"):
            held.append(f"{reason} (held back: {m.held_back})")
        elif shadow is None or shadow.significant():
            triggers.append(kind)
            reasons.append(reason)
        else:
            held.append(f"{reason} (not retraining: the shadow is not better beyond noise)")
    for kind, reason in _schedule(m, spec):
        triggers.append(kind)
        reasons.append(reason)
    evidence = _evidence(m, spec)
    if triggers:
        return RetrainDecision(True, "; ".join([*reasons, *evidence]), triggers=triggers)
    parts = [f"champion v{m.champion_version} holds", *held, *evidence]
    if m.champion_metric is not None:
        parts.append(f"{spec.metrics.primary} {m.champion_metric:.3f} on {m.batch_rows} new rows")
    return RetrainDecision(False, "no retrain: " + "; ".join(parts))


def _preconditions(
    m: Monitoring, *, force: bool, force_reason: str, alarm: str | None
) -> RetrainDecision | None:
    """What decides before any evidence is weighed."""
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
        return RetrainDecision(True, f"alarm: {alarm}", triggers=["alarm"])
    if m.batch_rows == 0:
        return RetrainDecision(
            False, f"no retrain: no new data; champion v{m.champion_version} holds"
        )
    return None


def _scale(m: Monitoring) -> float | None:
    """The champion's metric as it was trained (its holdout), else on this batch: the scale
    a gain is measured on (a collapsed metric would make any gain look large)."""
    if m.shadow is not None and m.shadow.baseline is not None:
        return m.shadow.baseline
    return m.shadow.comparison.a if m.shadow is not None else m.champion_metric


def min_gain(spec: ModelSpec, champion_value: float | None) -> float:
    """The gain that makes a retrain worth it: the spec's shadow.min_gain, else the gate's
    own bar (promotion.min_improvement, min_relative_improvement), else 0.5% of the
    champion's metric (the metric's own scale: rmse in its unit, AUC in AUC)."""
    if spec.retrain.shadow.min_gain is not None:
        return spec.retrain.shadow.min_gain
    scale = abs(champion_value or 0.0)
    gate = max(spec.promotion.min_improvement, spec.promotion.min_relative_improvement * scale)
    return gate if gate > 0 else 0.005 * scale


def _alarms(m: Monitoring, spec: ModelSpec) -> list[tuple[str, str]]:
    """(kind, reason) of the alarms this batch raises."""
    out = []
    if m.detector is not None and m.detector.alarm:
        out.append(("detector", f"performance decay detected: {m.detector.describe()}"))
    threshold = drift_trigger(spec, m.drift_threshold)
    if threshold is not None and m.drift_share is not None and m.drift_share >= threshold:
        out.append(
            ("drift", f"data drift: {m.drift_share:.0%} of columns drifted ≥ {threshold:.0%}")
        )
    floor, primary = spec.retrain.performance_floor, spec.metrics.primary
    if floor is not None and m.champion_metric is not None:
        up = higher_is_better(primary)
        if m.champion_metric < floor if up else m.champion_metric > floor:
            out.append(
                (
                    "floor",
                    f"performance decay: champion {primary} {m.champion_metric:.3f} on the new "
                    f"batch, floor {floor:.3f}",
                )
            )
    return out


def _schedule(m: Monitoring, spec: ModelSpec) -> list[tuple[str, str]]:
    max_age = spec.retrain.max_age_days
    if max_age is not None and m.champion_age_days is not None and m.champion_age_days >= max_age:
        return [
            (
                "age",
                f"stale champion: its data ends {m.champion_age_days:.0f} days before the new "
                f"batch's ≥ {max_age}",
            )
        ]
    return []


def drift_trigger(spec: ModelSpec, calibrated: float | None) -> float | None:
    """The drift share that retrains by itself, or None where drift is evidence only:
    `drift.trigger` "fixed" (or a share_threshold the spec sets) or "calibrated"."""
    mode = spec.drift.trigger
    if mode is None:
        mode = "fixed" if "share_threshold" in spec.drift.model_fields_set else "never"
    if mode == "fixed":
        return spec.drift.share_threshold
    if mode == "calibrated":
        return calibrated
    return None


def _evidence(m: Monitoring, spec: ModelSpec) -> list[str]:
    """The numbers behind the decision, whether they triggered it or not."""
    out = []
    if m.shadow is not None and m.shadow.comparison:
        c = m.shadow.comparison
        out.append(
            f"shadow {c.advantage:+.4f} [{c.lo:+.4f}, {c.hi:+.4f}] (needs {min_gain(spec, _scale(m)):+.4f})"
        )
    elif m.shadow_note:
        out.append(m.shadow_note)
    if m.detector is not None:
        out.append(m.detector.describe())
    if m.drift_share is not None:
        calibrated = "" if m.drift_threshold is None else f", {m.drift_threshold:.0%} by chance"
        trigger = drift_trigger(spec, m.drift_threshold)
        role = "evidence only" if trigger is None else f"retrains at {trigger:.0%}"
        out.append(f"drift {m.drift_share:.0%} ({role}{calibrated})")
    return out
