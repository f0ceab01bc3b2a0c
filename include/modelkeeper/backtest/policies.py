"""The retraining policies a backtest compares, and what each one records per step.

`never` (the first model serves the whole replay), `always` (retrain and promote every
step), `every_<k>` (retrain every k steps and promote) and `spec` (the spec's own
decision and promotion gate, exactly as the DAGs run them). The schedules stand for what
a team gets from a cron line without modelkeeper's decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelkeeper.contracts.handoff import Handoff
from modelkeeper.contracts.results import Decision

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.decisions.promotion import Candidate, Champion
    from modelkeeper.stages.workspace import Workspace


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
    evidence: dict = field(default_factory=dict)  # detector, shadow, drift threshold
    retrain: bool = False
    retrain_reason: str = ""
    promoted: bool | None = None  # None: nothing was trained
    gate_reason: str = ""
    train_seconds: float = 0.0  # the registered candidate's fit
    shadow_seconds: float = 0.0  # shadow-recipe fits (the shadow, the candidate's handicap)
    compute_seconds: float = 0.0
    alarm: str | None = None  # the alarms that retrained: "shadow", "detector+drift"...
    note: str = ""  # why the step has no metric, when it has none


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


@dataclass(frozen=True)
class Pending:
    """An alarm whose retrain is judged on the next step's rows."""

    step: int
    kind: str
    reason: str
    replaced: str  # the champion version it was to replace
    retrained: str | None  # the version the retrain registered
    promoted: bool | None


@dataclass
class PolicyRun:
    """One policy's workspace, state and records through the replay."""

    name: str
    ws: Workspace
    window: str
    label: str = ""  # a tuning variant's name (a spec-like policy); default: the policy's
    records: list[StepRecord] = field(default_factory=list)
    alarms: list[AlarmRecord] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    last_train: int | None = None  # the step of the last registered retrain
    trained_at: dict[str, int] = field(default_factory=dict)  # version -> step it trained at
    twins: set[str] = field(default_factory=set)  # champions whose shadow twin it paid for

    def __post_init__(self) -> None:
        self.label = self.label or self.name

    @property
    def spec(self) -> ModelSpec:
        return self.ws.spec


def registered_name(spec: ModelSpec, window: str, label: str) -> str:
    return f"{spec.name}__{window}__{label}".replace("-", "_").replace(".", "_")


def policy_names(k: int) -> list[str]:
    return ["never", "always", f"every_{k}", "spec"]


def scheduled(policy: str, step: int, last_train: int | None) -> tuple[bool, str] | None:
    """A schedule's decision; None for the spec policy (its decide stage decides)."""
    if policy == "never":
        return False, "never retrains"
    if policy == "always":
        return True, "retrains every step"
    if policy.startswith("every_"):
        k = int(policy.removeprefix("every_"))
        age = step - (last_train if last_train is not None else step)
        if age >= k:
            return True, f"schedule: champion trained {age} steps ago ≥ {k}"
        return False, f"schedule: champion trained {age} steps ago < {k}"
    return None


def promote_every_candidate(
    candidate: Candidate, champion: Champion | None, spec: ModelSpec, comparison: object = None
) -> Decision:
    """The schedules' gate: whatever was trained goes live."""
    return Decision(
        True,
        "promoted: this policy promotes every candidate",
        candidate_version=candidate.version,
        champion_version=None if champion is None else champion.version,
    )
