from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelkeeper_airflow.links import MlflowRunLink, ModelCardLink
from modelkeeper_airflow.operators.base import ModelkeeperOperator

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Evaluated


class EvaluateOperator(ModelkeeperOperator):
    """Score challenger and champion on the same held-out frame and decide (BLESSED or not).

    Hands on the decision with the champion version it was made against; the promote
    step moves the alias only if the champion is still that version.

    :param trained: train's Trained; :param monitoring: monitor's Monitoring (for the
        model card's drift section). Both are upstream `.output`s.
    """

    template_fields: Sequence[str] = ("model", "trained", "monitoring")
    operator_extra_links = (MlflowRunLink(), ModelCardLink())

    def __init__(self, *, trained: Any, monitoring: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trained = trained
        self.monitoring = monitoring

    def stage(self, context: Any) -> Evaluated:

        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.results import Evaluated, Trained
        from modelkeeper.decisions.promotion import Candidate, decide
        from modelkeeper.modeling.evaluation import score_model

        spec, registry = self.spec, self.registry
        trained = Trained.from_dict(self.trained)
        self.link_mlflow_run(context, trained.mlflow_run_id)
        holdout = self.storage.read_parquet(trained.holdout_path)
        name = spec.registered_model_name
        version = registry.get_version(name, trained.version)
        cand_model = registry.load_model(version.uri)
        candidate = Candidate(
            version=version.version,
            score=score_model(cand_model, holdout, spec),
            input_columns=registry.input_columns(version.uri) or [],
            validated=version.tags.get(L.VALIDATION) == L.VALIDATION_PASSED,
            data_end=version.tags.get(L.DATA_END),
        )

        champion = None
        current = registry.alias(name)
        if (
            current is not None
            and current.version == version.version
            and version.tags.get(L.PROMOTED_IN) == context["run_id"]
        ):
            # A cleared run whose model this run already promoted: decide again against
            # the champion it replaced, so the rerun gives the same decision and metrics
            # and promote's compare-and-set finds the move done.
            current = registry.alias(name, L.PREVIOUS)
        if current is not None and current.version != version.version:
            champion = self._champion(current, candidate, holdout)

        decision = decide(candidate, champion, spec)
        mlflow_run = trained.mlflow_run_id
        if champion is None:
            judged = "none"
            against = "no champion (first model)" if current is None else f"v{current.version}"
        else:
            judged = champion.version
            against = f"champion v{champion.version}, scored on the same holdout"
            if champion.score is None:
                against = f"champion v{champion.version} (could not be scored: see the decision)"
        self._model_card(
            context, version.version, trained, candidate, cand_model, holdout, decision, against
        )
        self._scoring_reference(context["run_id"], trained, cand_model, holdout)
        registry.log_metrics(mlflow_run, candidate.score.metrics, prefix="candidate_")
        registry.log_metrics(mlflow_run, {"eval_rows": candidate.score.rows})
        if champion is not None and champion.score is not None:
            registry.log_metrics(mlflow_run, champion.score.metrics, prefix="champion_")
        self._record_evaluation(context, version.version, candidate.score, holdout)
        verdict = {L.DECISION: decision.verdict, L.DECISION_REASON: decision.reason}
        registry.set_run_tags(mlflow_run, verdict)
        registry.set_version_tags(name, version.version, {**verdict, L.JUDGED_AGAINST: judged})
        self.log.info(
            "v%s vs champion %s: %s",
            version.version,
            current.version if current else None,
            decision.reason,
        )
        return Evaluated(
            decision=decision,
            candidate=candidate.score,
            champion=None if champion is None else champion.score,
            candidate_version=version.version,
            champion_version=current.version if current else None,
            mlflow_run_id=mlflow_run,
        )

    def _record_evaluation(self, context, version, score, holdout) -> None:  # noqa: ANN001
        """The candidate's metrics on its holdout go to the history (kind "evaluation"),
        so the health page draws them beside what the version later measures in service."""
        from modelkeeper.monitoring.history import Measurement

        spec = self.spec
        ts = holdout[spec.data_schema.timestamp_column]
        base = {
            "version": version,
            "run_id": context["run_id"],
            "dag_id": context["dag"].dag_id,
            "window_start": ts.min().isoformat() if len(ts) else None,
            "window_end": ts.max().isoformat() if len(ts) else None,
            "rows": score.rows,
        }
        self.history.record(
            [Measurement(spec.name, "evaluation", k, v, **base) for k, v in score.metrics.items()]
        )

    def _scoring_reference(self, run_id, trained, model, holdout) -> None:  # noqa: ANN001
        """What scoring measures the model against once it serves: its holdout with its own
        out-of-sample probabilities (drift of features and predictions), and the
        calibration of those probabilities on the holdout's labels (CBPE estimates)."""
        from modelkeeper.contracts import lineage as L
        from modelkeeper.contracts.errors import DataError
        from modelkeeper.modeling.evaluation import predict
        from modelkeeper.modeling.training import features_frame
        from modelkeeper.monitoring.performance import fit_calibrator

        spec, storage, registry = self.spec, self.storage, self.registry
        folder = storage.snapshot_dir(spec.name, run_id) / L.REFERENCE_DIR
        y_pred, proba = predict(model, features_frame(holdout, spec), spec.target.task)
        scored = holdout[[*spec.features.all, spec.data_schema.timestamp_column]].assign(
            prediction=proba if proba is not None else y_pred
        )
        storage.write_parquet(scored, folder / L.HOLDOUT_SCORED_FILE)
        if proba is not None:
            try:
                calibrator = fit_calibrator(proba, holdout[spec.target.column].to_numpy())
                storage.write_json(calibrator.to_dict(), folder / L.CALIBRATION_FILE)
            except DataError as exc:  # too few rows or one class: estimates use raw scores
                self.log.warning("no calibration for CBPE: %s", exc)
        registry.log_artifacts(trained.mlflow_run_id, folder, L.REFERENCE_DIR)

    def _champion(self, current, candidate, holdout):  # noqa: ANN001, ANN202
        """Load and score the champion; a failure becomes a refusal reason, not a crash."""
        from modelkeeper.contracts import lineage as L
        from modelkeeper.decisions.promotion import Champion
        from modelkeeper.modeling.evaluation import score_model

        registry, spec = self.registry, self.spec
        try:
            model = registry.load_model(current.uri)
            columns = registry.input_columns(current.uri)
        except Exception as exc:
            self.log.warning("champion v%s could not be loaded: %r", current.version, exc)
            return Champion(current.version, None, load_error=f"{type(exc).__name__}: {exc}")
        data_end = current.tags.get(L.DATA_END)
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

    def _model_card(  # noqa: ANN001
        self, context, version, trained, candidate, model, holdout, decision, against
    ) -> None:
        from modelkeeper.contracts import lineage as L
        from modelkeeper.decisions.retrain import Monitoring
        from modelkeeper.modeling.evaluation import feature_importance
        from modelkeeper.modeling.modelcard import render_html, render_markdown

        spec, storage = self.spec, self.storage
        monitoring = Monitoring.from_dict(self.monitoring) if self.monitoring else None
        markdown = render_markdown(
            spec,
            version,
            training=trained,
            score=candidate.score,
            importance=feature_importance(model, holdout, spec),
            drift_summary=monitoring.drift_summary if monitoring else None,
            decision=decision,
            run_id=context["run_id"],
            judged_against=against,
        )
        folder = storage.report_dir(spec.name, context["run_id"]) / L.MODEL_CARD
        storage.write_text(markdown, folder / "model_card.md")
        storage.write_text(
            render_html(markdown, f"{spec.name} v{version}"), folder / "model_card.html"
        )
        self.registry.log_artifacts(trained.mlflow_run_id, folder, L.MODEL_CARD)
        # The logged card in the MLflow UI's artifact view, with the version's run (the
        # health page links the report folder's copy).
        self.push_link(
            context,
            L.LINK_MODEL_CARD,
            lambda: self.registry.run_url(spec.name, trained.mlflow_run_id, L.MODEL_CARD_HTML),
        )
