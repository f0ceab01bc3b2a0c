"""A candidate better than the champion only by noise is refused, with the interval.

Through the stage functions the DAGs call (collect, validate, train, evaluate, promote) on
a real MLflow store, audit trail and history in tmp_path: a first model is promoted, a
person forces a retrain on more of the same stationary stream, and the gate compares the
candidate with the champion on the candidate's holdout, paired row by row.
"""

from __future__ import annotations

import pandas as pd
import pytest

from modelkeeper.contracts.results import RetrainDecision
from modelkeeper.stages.ingest import collect, validate
from modelkeeper.stages.workspace import Run, Workspace, open_run
from tests.core.test_backtest import _data, _spec


def _workspace(task: str, tmp_path) -> Workspace:  # noqa: ANN001
    from modelkeeper.data.storage import Storage
    from modelkeeper.monitoring.history import History
    from modelkeeper.records.audit import AuditLog
    from modelkeeper.records.registry import Registry

    return Workspace(
        spec=_spec(task),
        storage=Storage(tmp_path / "storage"),
        registry=Registry(
            f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=str(tmp_path / "artifacts")
        ),
        history=History.from_url(f"sqlite:///{tmp_path / 'history.db'}"),
        audit=AuditLog.from_url(f"sqlite:///{tmp_path / 'audit.db'}"),
        reports=False,
    )


def _retrain(ws: Workspace, week: pd.DataFrame, run_id: str, reason: str):  # noqa: ANN202
    from modelkeeper.stages.evaluate import evaluate
    from modelkeeper.stages.promote import promote
    from modelkeeper.stages.train import train

    ws.storage.write_parquet(week, ws.storage.root / "landing" / "x" / f"{run_id}.parquet")
    run = open_run(ws, Run(run_id=run_id, dag_id="test"))
    accepted = validate(ws, run, collect(ws, run))
    trained = train(ws, run, accepted, RetrainDecision(True, reason))
    evaluated = evaluate(ws, run, trained)
    return evaluated, promote(ws, run, evaluated)


@pytest.mark.parametrize(
    ("task", "seed"),
    [
        pytest.param("classification", 3, id="classification"),
        pytest.param("regression", 0, id="regression"),
    ],
)
def test_a_candidate_better_only_by_noise_is_refused_with_its_interval(task, seed, tmp_path):
    ws = _workspace(task, tmp_path)
    data = _data(task, 4, "stationary", seed=seed)
    weeks = [
        data[
            (data.ts >= data.ts.min() + pd.Timedelta(days=7 * i))
            & (data.ts < data.ts.min() + pd.Timedelta(days=7 * (i + 1)))
        ]
        for i in range(4)
    ]
    first, change = _retrain(ws, pd.concat(weeks[:2]), "first", "no champion yet")
    assert change.action == "promoted", first.decision.reason
    evaluated, change = _retrain(ws, pd.concat(weeks[2:]), "forced", "forced by a person")
    c = evaluated.comparison
    assert c is not None and c.advantage > 0 and c.lo <= 0, c  # better, but only by noise
    assert change.action != "promoted" and ws.registry.alias(ws.name).version == "1"
    reason = evaluated.decision.reason
    assert reason.startswith("refused:") and "not better beyond noise" in reason
    assert f"CI [{c.lo:+.4f}, {c.hi:+.4f}]" in reason


def test_an_mlflow_outage_while_loading_the_champion_is_retried_never_a_verdict(tmp_path):
    """evaluate lets an unreachable MLflow through as a transient error (the task retries,
    then fails), instead of judging the champion unusable. The outage is staged by one
    call of the real registry raising what it raises when MLflow does not answer: an
    outage at exactly that moment cannot be arranged with a real server."""
    from modelkeeper.contracts.errors import TransientError
    from modelkeeper.records.mlflow_errors import RegistryUnavailable
    from modelkeeper.stages.evaluate import evaluate
    from modelkeeper.stages.train import train

    ws = _workspace("classification", tmp_path)
    data = _data("classification", 4, "stationary")
    cut = data.ts.min() + pd.Timedelta(days=14)
    first, change = _retrain(ws, data[data.ts < cut], "first", "no champion yet")
    champion = ws.registry.alias(ws.name)
    ws.storage.write_parquet(data[data.ts >= cut], ws.storage.root / "landing/x/later.parquet")
    run = open_run(ws, Run(run_id="forced", dag_id="test"))
    accepted = validate(ws, run, collect(ws, run))
    trained = train(ws, run, accepted, RetrainDecision(True, "forced by a person"))
    real = ws.registry.load_model

    def load(uri: str):  # noqa: ANN202
        if uri == champion.source:
            raise RegistryUnavailable("MLflow at http://127.0.0.1:9 is unavailable")
        return real(uri)

    ws.memo.models.clear()
    ws.registry.load_model = load
    with pytest.raises(TransientError, match="unavailable"):
        evaluate(ws, run, trained)
    version = ws.registry.get_version(ws.name, trained.version)
    assert "decision" not in version.tags  # no verdict recorded on the candidate
    assert [e["event"] for e in ws.audit.events(ws.name)] == ["promotion"]  # v1's only
