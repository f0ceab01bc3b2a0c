from __future__ import annotations

from typing import Any

from modelkeeper_airflow.operators.base import ModelkeeperOperator


class EvaluateOperator(ModelkeeperOperator):
    """Score challenger and champion on the same held-out frame and decide (BLESSED or not).

    Pushes the decision with the champion version it was made against; the promote
    step moves the alias only if the champion is still that version.
    """

    def execute(self, context: Any) -> dict:
        import pandas as pd

        from modelkeeper.evaluation import score_model
        from modelkeeper.promotion import Candidate, decide
        from modelkeeper.registry import PREVIOUS

        spec, registry = self.spec(), self.registry()
        trained = self.upstream(context, "train")
        holdout = pd.read_parquet(trained["holdout_path"])
        name = spec.registered_model_name
        version = registry.get_version(name, trained["version"])
        cand_model = registry.load_model(version.uri)
        candidate = Candidate(
            version=version.version,
            score=score_model(cand_model, holdout, spec),
            input_columns=registry.input_columns(version.uri) or [],
            validated=version.tags.get("validation") == "passed",
            data_end=version.tags.get("data_end"),
        )

        champion = None
        current = registry.alias(name)
        if (
            current is not None
            and current.version == version.version
            and version.tags.get("promoted_in") == context["run_id"]
        ):
            # A cleared run whose model this run already promoted: decide again against
            # the champion it replaced, so the rerun gives the same decision and metrics
            # and promote's compare-and-set finds the move done.
            current = registry.alias(name, PREVIOUS)
        if current is not None and current.version != version.version:
            champion = self._champion(registry, current, candidate, holdout, spec)

        decision = decide(candidate, champion, spec)
        mlflow_run = trained["mlflow_run_id"]
        self._model_card(
            context,
            spec,
            registry,
            version.version,
            trained,
            candidate,
            cand_model,
            holdout,
            decision,
        )
        registry.log_metrics(mlflow_run, candidate.score.metrics, prefix="candidate_")
        registry.log_metrics(mlflow_run, {"eval_rows": candidate.score.rows})
        if champion is not None and champion.score is not None:
            registry.log_metrics(mlflow_run, champion.score.metrics, prefix="champion_")
        registry.client.set_tag(mlflow_run, "decision", decision.verdict)
        registry.client.set_tag(mlflow_run, "decision_reason", decision.reason[:5000])
        registry.set_version_tags(
            name,
            version.version,
            {"decision": decision.verdict, "decision_reason": decision.reason[:5000]},
        )
        self.log.info(
            "v%s vs champion %s: %s",
            version.version,
            current.version if current else None,
            decision.reason,
        )
        return {
            "decision": decision.to_dict(),
            "candidate": candidate.score.to_dict(),
            "champion": None
            if champion is None or champion.score is None
            else champion.score.to_dict(),
            "candidate_version": version.version,
            # What the alias pointed at when we decided: the promote step's compare-and-set.
            "champion_version": current.version if current else None,
            "mlflow_run_id": mlflow_run,
        }

    def _champion(self, registry, current, candidate, holdout, spec):
        """Load and score the champion; a failure becomes a refusal reason, not a crash."""
        from modelkeeper.evaluation import score_model
        from modelkeeper.promotion import Champion

        try:
            model = registry.load_model(current.uri)
            columns = registry.input_columns(current.uri)
        except Exception as exc:
            self.log.warning("champion v%s could not be loaded: %r", current.version, exc)
            return Champion(current.version, None, load_error=f"{type(exc).__name__}: {exc}")
        data_end = current.tags.get("data_end")
        if columns is not None and sorted(columns) != sorted(candidate.input_columns):
            # refused before scoring
            return Champion(current.version, None, input_columns=columns, data_end=data_end)
        try:
            return Champion(
                current.version,
                score_model(model, holdout, spec),
                input_columns=columns,
                data_end=data_end,
            )
        except Exception as exc:
            self.log.warning("champion v%s could not be scored: %r", current.version, exc)
            return Champion(
                current.version,
                None,
                columns,
                load_error=f"scoring failed: {type(exc).__name__}: {exc}",
            )

    def _model_card(
        self, context, spec, registry, version, trained, candidate, model, holdout, decision
    ) -> None:
        from modelkeeper.evaluation import feature_importance
        from modelkeeper.modelcard import render_html, render_markdown

        monitoring = context["ti"].xcom_pull(task_ids="monitor") or {}
        markdown = render_markdown(
            spec,
            version,
            training=trained,
            score=candidate.score,
            importance=feature_importance(model, holdout, spec),
            drift_summary=monitoring.get("drift_summary"),
            decision=decision,
            run_id=context["run_id"],
        )
        storage = self.storage()
        folder = storage.report_dir(spec.name, context["run_id"]) / "model_card"
        storage.write_text(markdown, folder / "model_card.md")
        storage.write_text(
            render_html(markdown, f"{spec.name} v{version}"), folder / "model_card.html"
        )
        registry.log_artifacts(trained["mlflow_run_id"], folder, "model_card")
