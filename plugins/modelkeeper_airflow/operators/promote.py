from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelkeeper_airflow.operators.base import ModelkeeperOperator

MODES = ("auto", "dry_run", "approval")


class PromoteOperator(ModelkeeperOperator):
    """Move `champion` to the blessed candidate by compare-and-set; run it in a one-slot pool.

    Refuses (run stays green, reason recorded) when the decision was NOT_BLESSED, in
    dry-run mode, when the version lacks the passed-validation lineage tag, or when the
    champion moved since evaluation.
    """

    template_fields: Sequence[str] = ("model", "mode")

    def __init__(self, *, mode: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode  # "" -> the spec's promotion.mode

    def execute(self, context: Any) -> dict:
        spec, registry = self.spec(), self.registry()
        evaluated = self.upstream(context, "evaluate")
        decision = evaluated["decision"]
        name, version = spec.registered_model_name, evaluated["candidate_version"]
        mode = self.mode or spec.promotion.mode
        if mode not in MODES:
            raise ValueError(f"promotion mode {mode!r} is not one of {MODES}")

        who = self.who(context)
        if mode == "approval" and decision["promote"]:
            from modelkeeper_airflow.operators.approve import answer

            approval = answer(context)
            if approval.get("chosen_options") != ["Approve"]:
                raise RuntimeError("approval mode, but the approve task recorded no approval")
            who = (approval.get("responded_by_user") or {}).get("name") or who
            decision = {**decision, "reason": f"approved by {who}; {decision['reason']}"}

        outcome = self._act(registry, name, version, decision, evaluated["champion_version"], mode)
        outcome.update(mode=mode, candidate_version=version, who=who)
        mlflow_run = evaluated["mlflow_run_id"]
        registry.client.set_tag(mlflow_run, "promotion", outcome["action"])
        registry.client.set_tag(mlflow_run, "promotion_reason", outcome["reason"][:5000])
        if outcome["action"] == "promoted":
            registry.set_version_tags(
                name, version, {"promoted_by": who, "promoted_in": context["run_id"]}
            )
            registry.describe_version(
                name, version, f"champion since {context['run_id']} ({who}): {outcome['reason']}"
            )
        self._record(context, spec, evaluated, outcome)
        self.log.info("%s", outcome["reason"])
        return outcome

    def _record(self, context: Any, spec: Any, evaluated: dict, outcome: dict) -> None:
        from modelkeeper.audit import AuditEvent

        primary = spec.metrics.primary
        metrics = {"candidate_" + primary: evaluated["candidate"]["metrics"].get(primary)}
        if evaluated["champion"]:
            metrics["champion_" + primary] = evaluated["champion"]["metrics"].get(primary)
        kind = {"promoted": "promotion", "dry_run": "dry_run"}.get(outcome["action"], "refusal")
        self.audit().record(
            AuditEvent(
                model=spec.name,
                event=kind,
                who=outcome["who"],
                reason=outcome["reason"],
                version_before=outcome["champion_before"],
                version_after=outcome["champion_after"],
                candidate_version=outcome["candidate_version"],
                mode=outcome["mode"],
                metrics=metrics,
                dag_id=context["dag"].dag_id,
                run_id=context["run_id"],
            )
        )

    def _act(
        self,
        registry: Any,
        name: str,
        version: str,
        decision: dict,
        expected: str | None,
        mode: str,
    ) -> dict:
        before = {"champion_before": expected}
        if not decision["promote"]:
            return {
                "action": "kept",
                "reason": decision["reason"],
                "champion_after": expected,
                **before,
            }
        if mode == "dry_run":
            return {
                "action": "dry_run",
                "reason": f"dry run, nothing moved; would have {decision['reason']}",
                "champion_after": expected,
                **before,
            }
        if registry.get_version(name, version).tags.get("validation") != "passed":
            return {
                "action": "refused",
                "reason": f"refused: v{version} lacks the validation=passed lineage tag",
                "champion_after": expected,
                **before,
            }
        moved, current = registry.move_champion(name, version, expected)
        if not moved:
            return {
                "action": "refused",
                "reason": f"refused: champion changed since evaluation (v{expected} then, v{current} now)",
                "champion_after": current,
                **before,
            }
        return {
            "action": "promoted",
            "reason": decision["reason"],
            "champion_after": version,
            **before,
        }
