"""Retraining-policy backtest: replay a model's data step by step and compare policies.

Each step runs the stage functions the DAGs run (modelkeeper.stages), on an isolated
storage root, MLflow store and audit trail (backtest.replay):

    collect -> validate (once per step)
    -> for each policy: monitor (the serving champion scored on the step's rows before
       any model trains on them: prequential; drift for the spec policy) -> decide (spec
       policy) or the schedule -> train -> evaluate (the spec's gate, or "promote every
       candidate" for the schedules) -> promote (compare-and-set of the policy's own
       registered model's `champion` alias, audited)

The backtest itself never predicts, computes drift or logs a model: what it measures is
what the stages do. A model trained at one step on one window is the same model whichever
policy asks for it (fixed seed, same data): the train stage fits it once (Workspace.memo)
and registers it for every policy that wants it, so comparing policies costs little more
than `always` alone.

Alarms (spec policy): a retrain the monitoring evidence called for (the shadow challenger,
the change detector, drift or a floor; not the age schedule). It paid off when the
retrained model beats the champion it was meant to replace on the following step's rows by
at least the gain a retrain must bring (decisions.retrain.min_gain: the spec's, on the
metric's own scale), promoted or not (so the gate's refusals can be judged).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelkeeper.backtest.policies import (
    AlarmRecord,
    Pending,
    PolicyRun,
    StepRecord,
    policy_names,
    promote_every_candidate,
    registered_name,
    scheduled,
)
from modelkeeper.backtest.replay import Replay
from modelkeeper.contracts.errors import ConfigError
from modelkeeper.contracts.metric_names import higher_is_better
from modelkeeper.stages.workspace import Run

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.contracts.results import Accepted, Monitoring, RetrainDecision
    from modelkeeper.contracts.spec import ModelSpec

log = logging.getLogger(__name__)

#: Retrain triggers that are alarms (monitoring evidence), unlike a schedule or a person.
ALARMS = ("shadow", "detector", "drift", "floor")
#: A training window as long as any replay: "all history".
ALL_HISTORY_DAYS = 100_000


@dataclass
class Result:
    model: str
    steps: int
    warmup: int
    step_days: int
    origin: str
    policies: dict[str, PolicyRun]
    windows: dict[str, dict[str, PolicyRun]]
    validation: dict[int, str]
    seconds: float
    primary: str
    higher_is_better: bool
    registry_uri: str = ""
    training_window: str = ""  # the spec's window, in words


def _window_words(spec: ModelSpec) -> str:
    days = spec.window.training_days
    span = "all history" if days >= ALL_HISTORY_DAYS else f"the last {days} days"
    return f"{span} of accepted rows, the newest {spec.window.holdout_days} days held out"


def window_label(days: int) -> str:
    return "all" if days >= ALL_HISTORY_DAYS else f"{days}d"


def run_backtest(
    spec: ModelSpec,
    data: pd.DataFrame,
    workdir: Path,
    *,
    k: int = 4,
    windows: Sequence[int] = (),
    drift: str = "spec",
    progress: Callable[[str], None] | None = print,
    variants: dict[str, ModelSpec] | None = None,
    policies: Sequence[str] | None = None,
) -> Result:
    """Replay `data` through the spec's stages under every policy; see the module doc.

    `windows`: extra training windows (days; ALL_HISTORY_DAYS for all history) replayed
    under the same policies but `never`. `drift`: "spec" computes drift for the spec
    policy only (the only one deciding on it), "all" for every policy. `variants`: more
    specs replayed as spec-like policies under their key (tuning; same caches).
    `policies`: replay only these (default: never, always, every_<k>, spec).
    """
    if k < 1:
        raise ConfigError(f"every_<k>: k must be >= 1, got {k}")
    if drift not in ("spec", "all", "none"):
        raise ConfigError(f"drift must be spec, all or none, got {drift!r}")
    started = time.perf_counter()
    replay = Replay(spec, data, workdir)
    names = list(policies) if policies else policy_names(k)
    runs = _policy_runs(replay, spec, names, windows, variants or {})
    main = window_label(spec.window.training_days)
    for step in range(replay.n_steps):
        accepted = replay.ingest(step)
        head = f"step {step + 1:>3}/{replay.n_steps} {_day(replay, step)} rows {accepted.rows:>6}  "
        if step < replay.warmup - 1:
            _say(progress, head + "warm-up (ingest only)")
            continue
        first = step == replay.warmup - 1  # the first models: not a step of the comparison
        parts, fits = [], []
        for label, policies in runs.items():
            for run in policies.values():
                evidence = drift == "all" or (drift == "spec" and run.name == "spec")
                r = step_policy(run, replay, step, accepted, evidence=evidence, keep=not first)
                fits.append(r.train_seconds)
                if label == main:
                    parts.append(_short(run, r))
        if first:
            parts = [f"first models trained ({max(fits):.1f}s)"]
        _say(progress, head + " | ".join(parts))
    return Result(
        model=spec.name,
        steps=replay.n_steps,
        warmup=replay.warmup,
        step_days=replay.step_days,
        origin=replay.origin.isoformat(),
        policies=runs[main],
        windows={label: p for label, p in runs.items() if label != main},
        validation=replay.validation,
        seconds=time.perf_counter() - started,
        primary=spec.metrics.primary,
        higher_is_better=higher_is_better(spec.metrics.primary),
        registry_uri=replay.registry.tracking_uri,
        training_window=_window_words(spec),
    )


def _policy_runs(
    replay: Replay, spec: ModelSpec, names: list[str], windows: Sequence[int], variants: dict
) -> dict[str, dict[str, PolicyRun]]:
    """{window label: {policy label: PolicyRun}}; the spec's own window first."""
    from modelkeeper.contracts.spec import Window

    def run(name: str, pspec: ModelSpec, window: str, label: str = "") -> PolicyRun:
        if name != "spec":  # a schedule weighs no evidence: it fits no shadow, keeps no detector
            pspec = _schedule_spec(pspec)
        ws = replay.workspace(pspec, name=registered_name(spec, window, label or name))
        return PolicyRun(name, ws, window, label=label)

    main = window_label(spec.window.training_days)
    runs = {main: {p: run(p, spec, main) for p in names}}
    for name, variant in variants.items():
        runs[main][name] = run("spec", variant, main, label=name)
    for days in windows:
        label = window_label(days)
        if label == main:
            continue
        window = Window(training_days=days, holdout_days=spec.window.holdout_days)
        wspec = spec.model_copy(update={"window": window})
        runs[label] = {p: run(p, wspec, label) for p in names if p != "never"}
    return runs


def _schedule_spec(spec: ModelSpec) -> ModelSpec:
    off = {"enabled": False}
    retrain = spec.retrain.model_copy(
        update={
            "shadow": spec.retrain.shadow.model_copy(update=off),
            "detector": spec.retrain.detector.model_copy(update=off),
        }
    )
    return spec.model_copy(update={"retrain": retrain})


def step_policy(
    run: PolicyRun,
    replay: Replay,
    step: int,
    accepted: Accepted,
    *,
    evidence: bool,
    keep: bool = True,
) -> StepRecord:
    """One policy through one step: monitor, decide, and (if it retrains) train,
    evaluate and promote, all through the stages. `keep`: add the record to the run's."""
    from modelkeeper.stages.monitor import monitor

    spec, ws = run.spec, run.ws
    started = time.perf_counter()
    stage_run = Run(run_id=f"{ws.name}__step_{step:03d}", dag_id="backtest")
    before = ws.registry.alias(ws.name)
    fitted_before = _fits(ws)
    m = monitor(ws, stage_run, accepted, evidence=evidence and before is not None)
    shadow_seconds = _shadow_charge(run, m)
    _settle_alarms(run, accepted, m)
    retrain, reason, alarm = _decide(run, step, m)
    out = _Retrained()
    if retrain and accepted.rows:
        out = _retrain(run, stage_run, step, accepted, m, reason)
        if alarm and before is not None:
            run.pending.append(
                Pending(step, alarm, reason, before.version, out.version, out.promoted)
            )
    elif retrain:
        out = _Retrained(why="nothing to train on: the step brought no accepted rows")
    record = StepRecord(
        policy=run.name,
        step=step,
        start=replay.step_start(step).isoformat(),
        rows=accepted.rows,
        champion_version=m.champion_version,
        champion_trained_step=run.trained_at.get(m.champion_version or ""),
        metric=_finite(m.champion_metric),
        guardrails={
            g.name: m.champion_metrics[g.name]
            for g in spec.metrics.guardrails
            if g.name in m.champion_metrics
        },
        drift_share=m.drift_share,
        evidence=_evidence(m),
        retrain=retrain,
        retrain_reason=reason,
        promoted=out.promoted,
        gate_reason=out.why,
        train_seconds=round(out.fit_seconds, 3),
        shadow_seconds=round(shadow_seconds, 3),
        # Wall time of this policy's stages with its fits charged as if it ran alone: a fit
        # another policy made (the memo) is added, one made here is not counted twice.
        compute_seconds=round(
            time.perf_counter()
            - started
            - (_fits(ws) - fitted_before)
            + shadow_seconds
            + out.fit_seconds,
            3,
        ),
        alarm=alarm,
        note=_why_unmeasured(spec, accepted, m),
    )
    if keep:
        run.records.append(record)
    return record


@dataclass(frozen=True)
class _Retrained:
    promoted: bool | None = None  # None: nothing was trained
    why: str = ""
    version: str | None = None
    fit_seconds: float = 0.0


def _decide(run: PolicyRun, step: int, m: Monitoring) -> tuple[bool, str, str | None]:
    """(retrain, reason, alarm kind): the schedule's, or the decide stage's for `spec`."""
    from modelkeeper.stages.decide import decide

    schedule = scheduled(run.name, step, run.last_train)
    if schedule is not None:
        retrain, reason = schedule
        if m.champion_version is None:
            retrain, reason = True, "no champion yet"
        return retrain, reason, None
    stage_run = Run(run_id=f"{run.ws.name}__step_{step:03d}", dag_id="backtest")
    decision: RetrainDecision = decide(run.ws, stage_run, m)
    kinds = [t for t in decision.triggers if t in ALARMS]
    return decision.retrain, decision.reason, ("+".join(kinds) if decision.retrain else "") or None


def _retrain(
    run: PolicyRun, stage_run: Run, step: int, accepted: Accepted, m: Monitoring, reason: str
) -> _Retrained:
    """train -> evaluate -> promote."""
    from modelkeeper.contracts.errors import TrainingDataError
    from modelkeeper.contracts.results import RetrainDecision
    from modelkeeper.stages.evaluate import evaluate
    from modelkeeper.stages.promote import promote
    from modelkeeper.stages.train import train
    from modelkeeper.stages.workspace import finish, open_run

    ws = run.ws
    stage_run = open_run(ws, stage_run, run_name=f"backtest {run.window} step {step}")
    try:
        trained = train(ws, stage_run, accepted, RetrainDecision(True, reason))
    except TrainingDataError as exc:
        log.warning("%s step %s: cannot train (%s)", ws.name, step, exc)
        finish(ws, stage_run, f"no training set: {exc}")
        return _Retrained(why="refused: no training set (see the log)")
    gate = None if run.name == "spec" else promote_every_candidate
    evaluated = evaluate(ws, stage_run, trained, m, gate=gate)
    change = promote(ws, stage_run, evaluated, mode="auto")
    finish(ws, stage_run, change.summary)
    run.last_train = step
    run.trained_at[trained.version] = step
    return _Retrained(
        promoted=change.action == "promoted",
        why=evaluated.decision.reason,
        version=trained.version,
        fit_seconds=trained.fit_seconds,
    )


def _fits(ws) -> float:  # noqa: ANN001
    """Seconds of every fit the process made so far (registered candidates and shadows)."""
    memo = ws.memo
    fits = sum(f.fit_seconds for f in memo.fits.values())
    return fits + sum(s[2] for s in memo.shadows.values() if s is not None)


def _shadow_charge(run: PolicyRun, m: Monitoring) -> float:
    """What the shadow costs this policy: its fit every batch, the champion's twin once
    per champion (a policy on its own refits neither more nor less)."""
    if m.shadow is None:
        return 0.0
    charge = m.shadow.fit_seconds
    if m.champion_version not in run.twins:
        run.twins.add(m.champion_version)
        charge += m.shadow.twin_seconds
    return charge


def _settle_alarms(run: PolicyRun, accepted: Accepted, m: Monitoring) -> None:
    """Alarms of the step before: did the model it retrained beat the one it replaced on
    this step's rows?"""
    from modelkeeper.decisions.retrain import min_gain
    from modelkeeper.stages.monitor import versions_on_batch

    primary = run.spec.metrics.primary
    up = higher_is_better(primary)
    for p in run.pending:
        scores = versions_on_batch(run.ws, accepted, [p.replaced, p.retrained])
        old, new = (_finite(scores.get(v)) for v in (p.replaced, p.retrained))
        gain = None if old is None or new is None else ((new - old) if up else (old - new))
        run.alarms.append(
            AlarmRecord(
                step=p.step,
                kind=p.kind,
                reason=p.reason,
                candidate_step=run.trained_at.get(p.retrained or ""),
                replaced_metric=old,
                retrained_metric=new,
                paid_off=gain is not None and gain >= min_gain(run.spec, old) - 1e-12,
                promoted=p.promoted,
            )
        )
    run.pending = []


def _why_unmeasured(spec: ModelSpec, accepted: Accepted, m: Monitoring) -> str:
    if m.champion_metric is not None:
        return ""
    if m.champion_version is None:
        return "no champion yet"
    if accepted.rows < max(1, spec.retrain.min_new_rows):
        return f"left out: {accepted.rows} rows < retrain.min_new_rows {spec.retrain.min_new_rows}"
    return m.champion_problem or "the primary metric is undefined on these rows"


def _evidence(m: Monitoring) -> dict:
    """The numbers decide weighed, for the report."""
    out: dict = {}
    if m.shadow is not None:
        c = m.shadow.comparison
        out["shadow"] = {"advantage": c.advantage, "lo": c.lo, "hi": c.hi}
    if m.detector is not None:
        d = m.detector
        out["detector"] = {"statistic": d.statistic, "threshold": d.threshold, "alarm": d.alarm}
    if m.drift_threshold is not None:
        out["drift_threshold"] = m.drift_threshold
    return out


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _day(replay: Replay, step: int) -> str:
    return replay.step_start(step).strftime("%Y-%m-%d")


def _short(run: PolicyRun, r: StepRecord) -> str:
    value = "  -  " if r.metric is None else f"{r.metric:.3f}"
    mark = (" R+" if r.promoted else " R-") if r.retrain else ""
    drift = "" if r.drift_share is None else f" d{r.drift_share:.0%}"
    return f"{run.label} {value}{mark}{drift}"


def _say(progress: Callable[[str], None] | None, line: str) -> None:
    if progress is not None:
        progress(line)
