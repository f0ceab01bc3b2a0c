"""Retraining-policy backtest: replay a model's data step by step and compare policies.

The replay goes through the functions the DAGs run, on an isolated storage root and a
real MLflow store (SQLite) in a folder of its own, never the live ones:

    land the step's rows -> ingest.collect -> ingest.accept (Great Expectations)
    -> for each policy: score the serving champion on the step's rows (prequential: no
       model has trained on them yet) -> drift (Evidently) -> retrain.should_retrain
       (spec policy) -> training.load_window/time_split/fit -> registry.log_model/register
       -> evaluation.score_model on the candidate's holdout -> promotion.decide
       -> registry.move_champion (compare-and-set of the policy's own `champion` alias)

Policies: `never` (the first model serves all year), `always` (retrain and promote every
step), `every_<k>` (retrain every k steps, promote), `spec` (the spec's own decision and
gate). A model trained at one step on one window is the same model whichever policy asks
for it (fixed seed, same data): it is trained and logged once and registered for every
policy that wants it, so comparing policies costs little more than `always` alone.

Alarms (spec policy): a retrain for drift or decay. It paid off when the retrained model
beats the champion it was meant to replace on the following step's rows by at least
ALARM_GAIN of the primary metric, promoted or not (so the gate's refusals can be judged).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from modelkeeper.contracts.errors import ConfigError, DataError
from modelkeeper.modeling.evaluation import higher_is_better
from modelkeeper.contracts.handoff import Handoff

if TYPE_CHECKING:
    from modelkeeper.modeling.evaluation import ModelScore
    from modelkeeper.records.registry import Registry
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.storage import Storage

log = logging.getLogger(__name__)

#: How much the retrained model must beat the one it replaced for an alarm to pay off.
ALARM_GAIN = 0.01
#: A training window as long as any replay: "all history".
ALL_HISTORY_DAYS = 100_000
LANDING = "landing/backtest"
BACKTEST_TAG = "backtest_step"


@dataclass(frozen=True)
class StepRecord(Handoff):
    """One policy at one step: what served, how it scored, what it decided and why."""

    policy: str
    step: int
    start: str
    rows: int
    champion_version: str | None
    champion_trained_step: int | None
    metric: float | None  # primary metric of the serving champion on this step's rows
    guardrails: dict[str, float] = field(default_factory=dict)
    drift_share: float | None = None
    retrain: bool = False
    retrain_reason: str = ""
    promoted: bool | None = None  # None: nothing was trained
    gate_reason: str = ""
    train_seconds: float = 0.0
    compute_seconds: float = 0.0
    alarm: str | None = None  # "drift", "decay" or "drift+decay" (spec policy)


@dataclass(frozen=True)
class AlarmRecord(Handoff):
    step: int
    kind: str
    reason: str
    candidate_step: int | None
    replaced_metric: float | None  # the champion it was to replace, on the next step
    retrained_metric: float | None  # the retrained model, on the next step
    paid_off: bool
    promoted: bool | None


@dataclass
class _Model:
    step: int  # the step whose data it was trained up to
    model: Any
    holdout: pd.DataFrame
    reference: pd.DataFrame  # training sample + its own predictions: drift's reference
    model_uri: str
    run_id: str
    data_end: str
    seconds: float


@dataclass
class _Serving:
    version: str | None = None
    model: _Model | None = None
    last_train: int | None = None


@dataclass
class PolicyRun:
    """One policy's state and records through the replay."""

    name: str
    spec: ModelSpec
    window: str
    records: list[StepRecord] = field(default_factory=list)
    alarms: list[AlarmRecord] = field(default_factory=list)
    serving: _Serving = field(default_factory=_Serving)
    pending: list[tuple[int, str, str, _Model | None, _Model | None, bool | None]] = field(
        default_factory=list
    )
    label: str = ""  # a tuning variant's name (a spec-like policy); default: the policy's

    def __post_init__(self) -> None:
        self.label = self.label or self.name

    @property
    def registered_name(self) -> str:
        return f"{self.spec.name}__{self.window}__{self.label}".replace("-", "_").replace(".", "_")


def policy_names(k: int) -> list[str]:
    return ["never", "always", f"every_{k}", "spec"]


def _wants_retrain(policy: str, step: int, serving: _Serving) -> tuple[bool, str] | None:
    """Schedule policies' decision; None for the spec policy (should_retrain decides)."""
    if policy == "never":
        return False, "never retrains"
    if policy == "always":
        return True, "retrains every step"
    if policy.startswith("every_"):
        k = int(policy.removeprefix("every_"))
        age = step - (serving.last_train if serving.last_train is not None else step)
        if age >= k:
            return True, f"schedule: champion trained {age} steps ago ≥ {k}"
        return False, f"schedule: champion trained {age} steps ago < {k}"
    return None


class Replay:
    """The data, cut into steps, ingested into an isolated store, and the shared caches."""

    def __init__(
        self,
        spec: ModelSpec,
        data: pd.DataFrame,
        workdir: Path,
        *,
        registry: Registry | None = None,
    ) -> None:
        from modelkeeper.records.registry import Registry
        from modelkeeper.contracts.spec import FileSource
        from modelkeeper.data.storage import Storage

        ts = spec.data_schema.timestamp_column
        if ts not in data.columns:
            raise DataError(f"backtest data has no timestamp column {ts!r}")
        if data.empty:
            raise DataError("backtest data is empty")
        self.workdir = Path(workdir)
        self.spec = spec.model_copy(
            update={"source": FileSource(kind="files", path=f"{LANDING}/*.parquet")}
        )
        self.storage: Storage = Storage(self.workdir / "storage")
        self.registry = registry or Registry(
            f"sqlite:///{self.workdir / 'mlflow.db'}",
            artifact_location=str(self.workdir / "artifacts"),
        )
        data = data.assign(**{ts: pd.to_datetime(data[ts])}).sort_values(ts, kind="stable")
        step_days = spec.backtest.step_days
        self.origin = data[ts].min().normalize()
        codes = ((data[ts] - self.origin) // pd.Timedelta(days=step_days)).to_numpy()
        self.n_steps = int(codes.max()) + 1
        self.data, self.codes = data.reset_index(drop=True), codes
        # Default warm-up: one training window, but at most a quarter of the replay (an
        # all-history window would otherwise leave nothing to replay).
        window_steps = min(math.ceil(spec.window.training_days / step_days), self.n_steps // 4)
        self.warmup = spec.backtest.warmup_steps or max(
            window_steps, math.ceil(spec.window.holdout_days / step_days) + 1
        )
        if self.warmup >= self.n_steps:
            raise DataError(
                f"{self.n_steps} steps of {step_days} days: nothing left to replay after "
                f"{self.warmup} warm-up steps (set backtest.warmup_steps lower)"
            )
        self.step_days = step_days
        self.batches: dict[int, pd.DataFrame] = {}
        self.ends: dict[int, str | None] = {}
        self.validation: dict[int, str] = {}
        self.models: dict[tuple[str, int], _Model | None] = {}
        self.scores: dict[tuple[str, int, int, str], ModelScore | None] = {}
        self.drift: dict[tuple[str, int, int], tuple[float | None, float]] = {}
        self.last_end: str | None = None

    # -- steps ------------------------------------------------------------------------
    def step_start(self, step: int) -> pd.Timestamp:
        return self.origin + pd.Timedelta(days=self.step_days * step)

    def ingest(self, step: int) -> pd.DataFrame:
        """Land the step's rows as a file and take it through collect and accept."""
        from modelkeeper.data.accept import accept
        from modelkeeper.data.collect import collect
        from modelkeeper.quality.validation import validate_frame

        rows = self.data[self.codes == step].reset_index(drop=True)
        run_id = f"backtest_step_{step:03d}"
        if rows.empty:
            self.batches[step], self.validation[step] = rows, "no rows in this step"
            self.ends[step] = self.last_end
            return rows

        def validate(df: pd.DataFrame, spec: ModelSpec, *, docs_dir: Any = None, **kw: Any):
            return validate_frame(df, spec, **kw)  # no Data Docs: nobody reads 50 of them

        path = self.storage.root / LANDING / f"step_{step:03d}.parquet"
        self.storage.write_parquet(rows, path)
        batch = collect(self.spec, self.storage, run_id)
        accepted = accept(batch, self.spec, self.storage, run_id, validate=validate)
        self.validation[step] = accepted.summary
        if accepted.path:
            frame = pd.read_parquet(accepted.path)
            self.last_end = max(filter(None, [self.last_end, accepted.end]))
        else:
            frame = rows.iloc[0:0]
        self.batches[step], self.ends[step] = frame, self.last_end
        return frame

    # -- models -----------------------------------------------------------------------
    def trained(self, spec: ModelSpec, window: str, step: int) -> _Model | None:
        """The model trained on the window's accepted rows up to the end of `step`."""
        key = (window, step)
        if key in self.models:
            return self.models[key]
        from modelkeeper.modeling.evaluation import predict
        from modelkeeper.modeling.training import (
            TrainingDataError,
            features_frame,
            fit,
            load_accepted,
            time_split,
        )

        started = time.perf_counter()
        try:
            frame = load_accepted(spec, self.storage, until=self.ends.get(step))
            split = time_split(frame, spec)
        except TrainingDataError as exc:
            log.warning("step %s: cannot train (%s)", step, exc)
            self.models[key] = None
            return None
        model = fit(spec, split.train)
        reference = split.train.sample(
            n=min(spec.drift.sample_rows, len(split.train)), random_state=0
        )
        y_pred, proba = predict(model, features_frame(reference, spec), spec.target.task)
        reference = reference.assign(prediction=proba if proba is not None else y_pred)
        registry = self.registry
        experiment = f"{spec.name}-backtest"
        run_id = registry.ensure_run(
            experiment, f"backtest {window} step {step}", {BACKTEST_TAG: str(step)}
        )
        registry.log_params(run_id, {"window": window, "step": step, **split.describe()})
        model_uri = registry.log_model(run_id, model, features_frame(split.train.head(5), spec))
        registry.close_run(run_id)
        self.models[key] = _Model(
            step=step,
            model=model,
            holdout=split.holdout,
            reference=reference,
            model_uri=model_uri,
            run_id=run_id,
            data_end=split.holdout_end,
            seconds=time.perf_counter() - started,
        )
        return self.models[key]

    def score(self, m: _Model, window: str, step: int, on: str) -> ModelScore | None:
        """`m` scored on the step's accepted rows (on="batch") or on the holdout of the
        model trained at that step (on="holdout"); None when there is nothing to score."""
        from modelkeeper.modeling.evaluation import score_model

        key = (window, m.step, step, on)
        if key not in self.scores:
            if on == "batch":
                frame = self.batches.get(step)
            else:
                cand = self.models.get((window, step))
                frame = None if cand is None else cand.holdout
            ok = frame is not None and len(frame) >= max(1, self.spec.retrain.min_new_rows)
            # Only the gate reads slices (holdout scores); the prequential score needs none.
            scored = score_model(m.model, frame, self.spec, slices=on == "holdout") if ok else None
            self.scores[key] = scored
        return self.scores[key]

    def drift_share(self, spec: ModelSpec, m: _Model, window: str, step: int) -> tuple:
        """(share of drifted columns, seconds) of the step's rows against m's reference."""
        from modelkeeper.monitoring.drift import DriftError, compute_drift
        from modelkeeper.modeling.evaluation import predict
        from modelkeeper.modeling.training import features_frame

        key = (window, m.step, step)
        if key not in self.drift:
            batch = self.batches.get(step)
            started = time.perf_counter()
            share = None
            if batch is not None and len(batch):
                y_pred, proba = predict(m.model, features_frame(batch, spec), spec.target.task)
                current = batch.assign(prediction=proba if proba is not None else y_pred)
                try:
                    share = compute_drift(
                        m.reference, current, spec, extra_numeric=["prediction"]
                    ).drifted_share
                except DriftError as exc:
                    log.warning("step %s: drift not computed: %s", step, exc)
            self.drift[key] = (share, time.perf_counter() - started)
        return self.drift[key]


def _primary(score: ModelScore | None, spec: ModelSpec) -> float | None:
    if score is None:
        return None
    value = score.metrics.get(spec.metrics.primary)
    return None if value is None or not math.isfinite(value) else float(value)


def _promote(run: PolicyRun, replay: Replay, version: str, m: _Model) -> None:
    moved, _ = replay.registry.move_champion(run.registered_name, version, run.serving.version)
    if not moved:  # only this replay writes the alias: a mismatch is a bug here
        raise RuntimeError(f"{run.registered_name}: champion moved under the backtest")
    run.serving.version, run.serving.model = version, m


def _register(run: PolicyRun, replay: Replay, m: _Model, step: int) -> str:
    from modelkeeper.contracts import lineage as L

    tags = {
        L.VALIDATION: L.VALIDATION_PASSED,
        L.DATA_END: m.data_end,
        L.SPEC_HASH: run.spec.fingerprint(),
        BACKTEST_TAG: str(step),
    }
    # One version per (policy, step): the same logged model registered under each policy.
    return replay.registry.register(
        run.registered_name, m.model_uri, f"{m.run_id}", tags=tags
    ).version


def step_policy(run: PolicyRun, replay: Replay, step: int, *, with_drift: bool) -> StepRecord:
    """One policy through one step: prequential score, monitor, decide, train, gate."""
    from modelkeeper.decisions.promotion import Candidate, Champion, decide
    from modelkeeper.decisions.retrain import Monitoring, age_days, should_retrain

    spec, window = run.spec, run.window
    batch = replay.batches[step]
    serving = run.serving
    champ, version_before = serving.model, serving.version
    started = time.perf_counter()
    score = None if champ is None else replay.score(champ, window, step, "batch")
    metric = _primary(score, spec)
    guards = {
        g.name: float(score.metrics[g.name])
        for g in spec.metrics.guardrails
        if score is not None and g.name in score.metrics
    }
    drift, drift_seconds = (None, 0.0)
    if champ is not None and with_drift:
        drift, drift_seconds = replay.drift_share(spec, champ, window, step)
    # Alarms of the step before: did the model it retrained beat the one it replaced here?
    for pending in run.pending:
        a_step, kind, reason, old, new, promoted = pending
        old_m = _primary(replay.score(old, window, step, "batch"), spec) if old else None
        new_m = _primary(replay.score(new, window, step, "batch"), spec) if new else None
        gain = None
        if old_m is not None and new_m is not None:
            gain = (new_m - old_m) if higher_is_better(spec.metrics.primary) else (old_m - new_m)
        run.alarms.append(
            AlarmRecord(
                step=a_step,
                kind=kind,
                reason=reason,
                candidate_step=None if new is None else new.step,
                replaced_metric=old_m,
                retrained_metric=new_m,
                paid_off=gain is not None and gain >= ALARM_GAIN - 1e-12,
                promoted=promoted,
            )
        )
    run.pending = []

    scheduled = _wants_retrain(run.name, step, serving)
    alarm = None
    if scheduled is not None:
        retrain, reason = scheduled
        if champ is None:
            retrain, reason = True, "no champion yet"
    else:
        enough = metric is not None and len(batch) >= spec.retrain.min_new_rows
        ts = spec.data_schema.timestamp_column
        monitoring = Monitoring(
            champion_version=serving.version,
            batch_rows=len(batch),
            drift_share=drift,
            champion_metric=metric if enough else None,
            champion_age_days=age_days(
                champ.data_end if champ else None,
                pd.Timestamp(batch[ts].max()).isoformat() if len(batch) else None,
            ),
        )
        decision = should_retrain(monitoring, spec)
        retrain, reason = decision.retrain, decision.reason
        kinds = [k for k, word in (("drift", "data drift"), ("decay", "decay")) if word in reason]
        alarm = "+".join(kinds) or None

    promoted, why, train_seconds = None, "", 0.0
    if retrain and len(batch):
        cand = replay.trained(spec, window, step)
        if cand is None:
            why = "refused: no training set (see the log)"
        else:
            train_seconds = cand.seconds
            version = _register(run, replay, cand, step)
            if run.name == "spec":
                cand_score = replay.score(cand, window, step, "holdout")
                champion = None
                if champ is not None:
                    champion = Champion(
                        serving.version or "",
                        replay.score(champ, window, step, "holdout"),
                        input_columns=list(spec.features.all),
                        data_end=champ.data_end,
                    )
                decision = decide(
                    Candidate(version, cand_score, list(spec.features.all), True, cand.data_end),
                    champion,
                    spec,
                )
                promoted, why = decision.promote, decision.reason
            else:
                promoted, why = True, "promoted: this policy promotes every candidate"
            if promoted:
                _promote(run, replay, version, cand)
            serving.last_train = step
        if alarm and champ is not None:
            run.pending.append((step, alarm, reason, champ, cand, promoted))
    elif retrain:
        why = "nothing to train on: the step brought no accepted rows"
    record = StepRecord(
        policy=run.name,
        step=step,
        start=replay.step_start(step).isoformat(),
        rows=len(batch),
        champion_version=version_before,
        champion_trained_step=None if champ is None else champ.step,
        metric=metric,
        guardrails=guards,
        drift_share=drift,
        retrain=retrain,
        retrain_reason=reason,
        promoted=promoted,
        gate_reason=why,
        train_seconds=round(train_seconds, 3),
        compute_seconds=round(time.perf_counter() - started + drift_seconds + train_seconds, 3),
        alarm=alarm,
    )
    run.records.append(record)
    return record


# -- the whole replay -----------------------------------------------------------------------


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
) -> Result:
    """Replay `data` through the spec's stages under every policy; see the module doc.

    `windows`: extra training windows (days; ALL_HISTORY_DAYS for all history) replayed
    under the same policies but `never`. `drift`: "spec" computes drift for the spec
    policy only (the only one deciding on it), "all" for every policy. `variants`: more
    specs replayed as spec-like policies under their key (tuning; same caches).
    """
    from modelkeeper.contracts.spec import Window

    if k < 1:
        raise ConfigError(f"every_<k>: k must be >= 1, got {k}")
    if drift not in ("spec", "all", "none"):
        raise ConfigError(f"drift must be spec, all or none, got {drift!r}")
    started = time.perf_counter()
    replay = Replay(spec, data, workdir)
    main = window_label(spec.window.training_days)
    runs: dict[str, dict[str, PolicyRun]] = {
        main: {p: PolicyRun(p, replay.spec, main) for p in policy_names(k)}
    }
    for name, variant in (variants or {}).items():
        v = variant.model_copy(update={"source": replay.spec.source})
        runs[main][name] = PolicyRun("spec", v, main, label=name)
    for days in windows:
        label = window_label(days)
        if label == main:
            continue
        wspec = replay.spec.model_copy(
            update={"window": Window(training_days=days, holdout_days=spec.window.holdout_days)}
        )
        runs[label] = {p: PolicyRun(p, wspec, label) for p in policy_names(k) if p != "never"}

    for step in range(replay.n_steps):
        batch = replay.ingest(step)
        if step < replay.warmup - 1:
            _say(
                progress,
                f"step {step + 1:>3}/{replay.n_steps} {_day(replay, step)} "
                f"rows {len(batch):>6}  warm-up (ingest only)",
            )
            continue
        if step == replay.warmup - 1:
            for policies in runs.values():
                for run in policies.values():
                    _first_model(run, replay, step)
            first = runs[main]["never"].serving
            _say(
                progress,
                f"step {step + 1:>3}/{replay.n_steps} {_day(replay, step)} "
                f"rows {len(batch):>6}  first model v{first.version} trained "
                f"({first.model.seconds if first.model else 0:.1f}s)",
            )
            continue
        parts = []
        for label, policies in runs.items():
            for run in policies.values():
                with_drift = drift == "all" or (drift == "spec" and run.name == "spec")
                r = step_policy(run, replay, step, with_drift=with_drift)
                if label == main:
                    parts.append(_short(run, r))
        _say(
            progress,
            f"step {step + 1:>3}/{replay.n_steps} {_day(replay, step)} "
            f"rows {len(batch):>6}  " + " | ".join(parts),
        )
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
    )


def _first_model(run: PolicyRun, replay: Replay, step: int) -> None:
    from modelkeeper.decisions.promotion import Candidate, decide

    m = replay.trained(run.spec, run.window, step)
    if m is None:
        return
    version = _register(run, replay, m, step)
    if run.name == "spec":
        score = replay.score(m, run.window, step, "holdout")
        ok = decide(Candidate(version, score, list(run.spec.features.all), True), None, run.spec)
        if not ok.promote:
            log.warning("%s: first model refused: %s", run.registered_name, ok.reason)
            return
    _promote(run, replay, version, m)
    run.serving.last_train = step


def _day(replay: Replay, step: int) -> str:
    return replay.step_start(step).strftime("%Y-%m-%d")


def _short(run: PolicyRun, r: StepRecord) -> str:
    name = run.label
    value = "  -  " if r.metric is None else f"{r.metric:.3f}"
    mark = ""
    if r.retrain:
        mark = " R+" if r.promoted else " R-"
    drift = "" if r.drift_share is None else f" d{r.drift_share:.0%}"
    return f"{name} {value}{mark}{drift}"


def _say(progress: Callable[[str], None] | None, line: str) -> None:
    if progress is not None:
        progress(line)


# -- summary --------------------------------------------------------------------------------


def _mean(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return float(np.mean(got)) if got else None


def summarise(result: Result, run: PolicyRun) -> dict:
    """mean, per quarter of the replay, second half, retrains, promotions, compute, alarms."""
    span = result.steps
    origin = pd.Timestamp(result.origin)
    records = run.records

    def part(r: StepRecord, n: int) -> int:
        offset = (pd.Timestamp(r.start) - origin) / pd.Timedelta(days=result.step_days)
        return min(int(offset * n // span), n - 1)

    quarters = [_mean([r.metric for r in records if part(r, 4) == q]) for q in range(4)]
    second = [r for r in records if part(r, 2) == 1]
    alarms = run.alarms
    return {
        "mean": _mean([r.metric for r in records]),
        "retrains": sum(1 for r in records if r.retrain and r.promoted is not None),
        "promotions": sum(1 for r in records if r.promoted),
        "by_quarter": quarters,
        "second_half_mean": _mean([r.metric for r in second]),
        "second_half_retrains": sum(1 for r in second if r.retrain and r.promoted is not None),
        "alarms": len(alarms),
        "alarms_paid_off": sum(1 for a in alarms if a.paid_off),
        "compute_seconds": round(sum(r.compute_seconds for r in records), 1),
        "train_seconds": round(sum(r.train_seconds for r in records), 1),
    }


def targets(summary: dict[str, dict], k: int, up: bool) -> list[dict]:
    """The issue's bar for the spec policy, each with the numbers behind it."""
    s, a, e, n = summary["spec"], summary["always"], summary[f"every_{k}"], summary["never"]

    def ge(x: float | None, y: float | None) -> bool:
        return x is not None and y is not None and (x >= y if up else x <= y)

    out = []
    if a["second_half_mean"] is not None:
        need = a["second_half_mean"] * (0.995 if up else 1.005)
        out.append(
            {
                "target": f"second-half mean ≥ 99.5% of always ({need:.4f})",
                "value": s["second_half_mean"],
                "met": ge(s["second_half_mean"], need),
            }
        )
    out.append(
        {
            "target": f"second-half mean ≥ every_{k}'s ({_fmt(e['second_half_mean'])})",
            "value": s["second_half_mean"],
            "met": ge(s["second_half_mean"], e["second_half_mean"]),
        }
    )
    cap = a["second_half_retrains"] / 3
    out.append(
        {
            "target": f"second-half retrains ≤ a third of always's ({cap:.1f})",
            "value": s["second_half_retrains"],
            "met": s["second_half_retrains"] <= cap,
        }
    )
    worse = [
        q + 1
        for q, (x, y) in enumerate(zip(s["by_quarter"], n["by_quarter"], strict=True))
        if x is not None and y is not None and not ge(x, y)
    ]
    out.append(
        {
            "target": "≥ never's mean in every quarter",
            "value": f"below in quarter(s) {worse}" if worse else "every quarter",
            "met": not worse,
        }
    )
    share = s["alarms_paid_off"] / s["alarms"] if s["alarms"] else None
    out.append(
        {
            "target": "≥ half of the alarms paid off",
            "value": f"{s['alarms_paid_off']} of {s['alarms']}",
            "met": share is not None and share >= 0.5,
        }
    )
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def report(result: Result, k: int) -> dict:
    """report.json: the issue's shape, plus windows, targets, steps and alarms."""
    policies = {name: summarise(result, run) for name, run in result.policies.items()}
    base = policies["always"]["mean"]
    for s in policies.values():
        s["gap_to_always"] = None if base is None or s["mean"] is None else s["mean"] - base
    windows = {
        label: {name: summarise(result, run) for name, run in runs.items()}
        for label, runs in result.windows.items()
    }
    return {
        "model": result.model,
        "steps": result.steps,
        "policies": policies,
        "primary": result.primary,
        "step_days": result.step_days,
        "warmup_steps": result.warmup,
        "origin": result.origin,
        "seconds": round(result.seconds, 1),
        "windows": windows,
        "targets": targets(policies, k, result.higher_is_better)
        if {"spec", "always", "never", f"every_{k}"} <= set(policies)
        else [],
        "records": {
            name: [r.to_dict() for r in run.records] for name, run in result.policies.items()
        },
        "alarms": [a.to_dict() for a in result.policies["spec"].alarms]
        if "spec" in result.policies
        else [],
    }


def write_reports(result: Result, out_dir: Path, k: int) -> tuple[Path, Path]:
    import json

    from modelkeeper.backtest.report import render_html
    from modelkeeper.data.storage import atomic_write

    data = report(result, k)
    out_dir = Path(out_dir)
    text = json.dumps(data, indent=2, default=str)
    json_path = atomic_write(out_dir / "report.json", lambda t: t.write_text(text))
    html = render_html(data)
    html_path = atomic_write(out_dir / "report.html", lambda t: t.write_text(html))
    return json_path, html_path


__all__ = [
    "ALARM_GAIN",
    "ALL_HISTORY_DAYS",
    "AlarmRecord",
    "PolicyRun",
    "Replay",
    "Result",
    "StepRecord",
    "policy_names",
    "report",
    "run_backtest",
    "summarise",
    "write_reports",
]
