"""One validation contract per column, whichever path reads a file (issue 23 item 3).

The same landed file goes through the real ingestion of each path (collect, then validate
with Great Expectations: training data, and the labels stream) and must get the same
verdict. The spec is test_measure's: a model whose rows are identified by the scoring and
labels key (`id`, `ts`) and which declares no `schema.unique_key`.
"""

from __future__ import annotations

import pandas as pd
import pytest

from modelkeeper.contracts.spec import ModelSpec
from modelkeeper.data.storage import Storage
from modelkeeper.stages.ingest import collect, validate
from modelkeeper.stages.workspace import Run, Workspace
from tests.core.test_measure import _spec as measured_spec
from tests.core.test_measure import _week

PATHS = {None: "landing/x", "labels": "landing/labels"}


def _spec(duplicates: str = "refuse") -> ModelSpec:
    raw = measured_spec("classification").model_dump(by_alias=True, exclude_unset=True)
    raw["schema"]["duplicates"] = duplicates
    return ModelSpec.model_validate(raw)


def _ingest(spec: ModelSpec, tmp_path, frame: pd.DataFrame, stream: str | None):  # noqa: ANN001
    """The file landed where `stream` reads it, collected and validated by that path."""
    ws = Workspace(spec=spec, storage=Storage(tmp_path / str(stream)), registry=None, reports=False)
    ws.storage.write_parquet(frame, ws.storage.root / PATHS[stream] / "week_03.parquet")
    run = Run(run_id="manual__1", dag_id="test")
    return validate(ws, run, collect(ws, run, stream=stream), stream=stream)


def _with_a_repeated_key(spec: ModelSpec) -> pd.DataFrame:
    """A week whose last row repeats the first row's (id, ts) with the other label."""
    week = _week(spec.target.task, 3)
    again = week.iloc[[0]].assign(y=1 - week["y"].iloc[0])
    return pd.concat([week, again], ignore_index=True)


class TestOneContract:
    @pytest.mark.parametrize(
        ("duplicates", "accepted"),
        [
            pytest.param("refuse", False, id="refuse"),
            pytest.param("keep_last", True, id="keep_last"),
        ],
    )
    def test_a_repeated_key_gets_one_verdict_as_training_data_and_as_labels(
        self, tmp_path, duplicates, accepted
    ):
        spec = _spec(duplicates)
        frame = _with_a_repeated_key(spec)
        training = _ingest(spec, tmp_path, frame, None)
        labels = _ingest(spec, tmp_path, frame, "labels")
        assert (training.success, labels.success) == (accepted, accepted), (
            training.summary,
            labels.summary,
        )
        if accepted:  # the last row of the key stays, on both paths
            assert training.rows == labels.rows == len(frame) - 1
            for result in (training, labels):
                kept = pd.read_parquet(result.path)
                assert kept.loc[kept["id"] == frame["id"].iloc[0], "y"].tolist() == [
                    frame["y"].iloc[-1]
                ]
        else:  # refused on both, naming the key and the count
            for result in (training, labels):
                assert "compound_columns_to_be_unique(column=id,ts" in result.summary
                assert "2 rows share their unique_key value with another row" in result.summary

    def test_every_path_checks_a_column_by_the_spec_s_one_rule(self):
        """dtype, nullability, range and allowed values of a column are the spec's rule on
        every path that reads the column (training, scoring rows, labels)."""
        from modelkeeper.data.streams import stream_spec

        spec = _spec()
        rules = {r.name: r for r in spec.data_schema.columns}
        for stream in ("scoring", "labels"):
            for rule in stream_spec(spec, stream).data_schema.columns:
                assert rule == rules[rule.name], (stream, rule.name)
