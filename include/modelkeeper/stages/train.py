"""train: fit the spec's pipeline on the accepted window, log it all, register a version.

The version carries its lineage tags (validation, data snapshot hash, spec hash, DAG run,
data end) but no alias: only promote moves `champion`. A retry finds the version this run
registered and reuses it; a run whose data and spec a version was already trained on
registers nothing ("nothing new"). A model fitted on exactly the same data and training
spec is fitted once per process (Workspace.memo): the backtest's policies share fits.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelkeeper.contracts import lineage as L
from modelkeeper.contracts.jsonio import dumps
from modelkeeper.contracts.results import Trained

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Accepted, RetrainDecision
    from modelkeeper.data.objstore import Location
    from modelkeeper.modeling.training import Split
    from modelkeeper.stages.workspace import Fitted, Run, Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Snapshot:
    """The frames a candidate is trained and held out on, as stored for this run."""

    split: Split
    train_path: Location
    holdout_path: Location
    data_hash: str


def train(ws: Workspace, run: Run, accepted: Accepted, decision: RetrainDecision) -> Trained:
    """A registered candidate, or (version None) why none was registered."""
    snap = _snapshot(ws, run, accepted)
    registry, name = ws.registry, ws.name

    def result(version: str | None, model_uri: str | None, **extra: Any) -> Trained:
        return Trained(
            mlflow_run_id=run.mlflow_run_id or "",
            version=version,
            model_uri=model_uri,
            holdout_path=str(snap.holdout_path),
            train_path=str(snap.train_path),
            data_snapshot_hash=snap.data_hash,
            **snap.split.describe(),
            **extra,
        )

    done = registry.version_for_run(name, run.mlflow_run_id)
    if done is not None:
        # A retry after the version was registered (or a cleared run): the model is
        # complete in MLflow already, so reuse it rather than add a second version.
        log.info("v%s already registered for this run; reusing it", done.version)
        return result(done.version, done.source)
    twin = _twin(ws, snap)
    if twin is not None:
        return result(None, None, **twin)
    fitted = _fit(ws, run, snap)
    _log_run(ws, run, snap, decision)
    version = registry.register(
        name, fitted.model_uri, run.mlflow_run_id, tags=_lineage(ws, run, snap, accepted)
    )
    log.info(
        "trained %s on %s rows (%s .. %s) in %.1fs; registered %s v%s (MLflow run %s)",
        ws.spec.estimator.class_path,
        len(snap.split.train),
        snap.split.train_start,
        snap.split.train_end,
        fitted.fit_seconds,
        name,
        version.version,
        run.mlflow_run_id,
    )
    return result(version.version, fitted.model_uri, fit_seconds=round(fitted.fit_seconds, 3))


def training_split(ws: Workspace, accepted: Accepted) -> Split:
    """The spec's window of accepted rows up to this batch's end, split in time.

    A rerun or a backfilled run trains on what it accepted, not on what came later."""
    from modelkeeper.modeling.training import load_accepted, time_split

    return time_split(load_accepted(ws.spec, ws.storage, until=accepted.end), ws.spec)


def _snapshot(ws: Workspace, run: Run, accepted: Accepted) -> _Snapshot:
    from modelkeeper.data import objstore

    split = training_split(ws, accepted)
    folder = ws.storage.snapshot_dir(ws.spec.name, run.run_id)
    train_path = ws.storage.write_parquet(split.train, folder / "train.parquet")
    holdout_path = ws.storage.write_parquet(split.holdout, folder / "holdout.parquet")
    digest = hashlib.sha256(objstore.read_bytes(train_path) + objstore.read_bytes(holdout_path))
    return _Snapshot(split, train_path, holdout_path, digest.hexdigest()[:16])


def _twin(ws: Workspace, snap: _Snapshot) -> dict[str, Any] | None:
    """A version already trained on exactly this data and spec: a forced retrain with
    nothing new would register the same model again."""
    from modelkeeper.records.outcome import nothing_new

    registry, name = ws.registry, ws.name
    same = registry.versions_tagged(
        name, {L.DATA_SNAPSHOT_HASH: snap.data_hash, L.SPEC_HASH: ws.spec.fingerprint()}
    )
    if not same:
        return None
    champion = registry.alias(name)
    twin = same[-1]
    who = "champion " if champion and champion.version == twin.version else ""
    verdict = twin.tags.get(L.DECISION_REASON)
    note = (
        f"nothing new: {who}v{twin.version} was trained on exactly this data and spec "
        f"(snapshot {snap.data_hash}); no second version registered"
        + (f" (its gate said: {verdict})" if verdict and not who else "")
    )
    log.info("%s", note)
    outcome = nothing_new(champion.version if champion else None, twin.version)
    return {"note": note, "twin_version": twin.version, "outcome": outcome}


def fit_key(ws: Workspace) -> str:
    """What a fitted model depends on besides its data: estimator, features, target, types."""
    spec = ws.spec
    parts = {
        k: spec.model_dump(mode="json", by_alias=True)[k]
        for k in ("estimator", "features", "target", "schema")
    }
    return hashlib.sha256(dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _fit(ws: Workspace, run: Run, snap: _Snapshot) -> Fitted:
    """Fit and log the pipeline, or reuse the one fitted on the same data and spec."""
    from modelkeeper.modeling.training import features_frame, fit
    from modelkeeper.stages.workspace import Fitted

    key = (snap.data_hash, fit_key(ws))
    if key in ws.memo.fits:
        return ws.memo.fits[key]
    spec, split = ws.spec, snap.split
    started = time.process_time()  # CPU seconds: compute, not the wait for a busy machine
    model = fit(spec, split.train)
    seconds = time.process_time() - started
    target = spec.target.column
    model_uri = ws.registry.log_model(
        run.mlflow_run_id,
        model,
        features_frame(split.train.head(5), spec),
        columns=spec.feature_rules,
        datasets=[
            (
                split.train[[*spec.features.all, target]],
                f"{spec.name}-train",
                str(snap.train_path),
                "training",
            ),
            (
                split.holdout[[*spec.features.all, target]],
                f"{spec.name}-holdout",
                str(snap.holdout_path),
                "evaluation",
            ),
        ],
    )
    fitted = Fitted(model, model_uri, run.mlflow_run_id or "", seconds)
    ws.memo.fits[key] = fitted
    ws.memo.models[model_uri] = model
    return fitted


def _log_run(ws: Workspace, run: Run, snap: _Snapshot, decision: RetrainDecision) -> None:
    """Params, the reference sample later runs measure drift against, validation reports."""
    spec, storage, registry, split = ws.spec, ws.storage, ws.registry, snap.split
    registry.log_params(
        run.mlflow_run_id,
        {
            "estimator": spec.estimator.class_path,
            **{f"estimator.{k}": v for k, v in spec.estimator.params.items()},
            "features.numeric": ",".join(spec.features.numeric),
            "features.categorical": ",".join(spec.features.categorical),
            "target": spec.target.column,
            "retrain_reason": decision.reason,
            **split.describe(),
        },
    )
    registry.set_run_tags(run.mlflow_run_id, {L.DATA_SNAPSHOT_HASH: snap.data_hash})
    reference = split.train.sample(n=min(spec.drift.sample_rows, len(split.train)), random_state=0)
    folder = storage.snapshot_dir(spec.name, run.run_id)
    reference_path = storage.write_parquet(reference, folder / L.REFERENCE_FILE)
    registry.log_artifacts(run.mlflow_run_id, reference_path, L.REFERENCE_DIR)
    if ws.reports:
        reports = storage.report_dir(spec.name, run.run_id)
        registry.log_artifacts(run.mlflow_run_id, reports / "validation.json", L.VALIDATION_REPORTS)
        registry.log_artifacts(run.mlflow_run_id, reports / "data_docs", L.DATA_DOCS)


def _lineage(ws: Workspace, run: Run, snap: _Snapshot, accepted: Accepted) -> dict[str, str]:
    split = snap.split
    tags = {
        L.VALIDATION: L.VALIDATION_PASSED if accepted.success else L.VALIDATION_FAILED,
        L.DATA_SNAPSHOT_HASH: snap.data_hash,
        L.SPEC_HASH: ws.spec.fingerprint(),
        L.DAG_TAG: run.dag_id,
        L.RUN_TAG: run.run_id,
        L.TRAIN_WINDOW: f"{split.train_start} .. {split.train_end}",
        # The newest row it saw: the gate never lets an older window replace a newer.
        L.DATA_END: split.holdout_end,
    }
    if accepted.report:  # none when the run brought no new rows
        tags[L.VALIDATION_REPORT] = accepted.report
    return tags
