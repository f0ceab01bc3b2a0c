"""Stage results survive the trip through XCom (JSON) and name what is missing."""

from __future__ import annotations

import json
import math

import pytest

from modelkeeper.contracts.errors import HandoffError
from modelkeeper.contracts.results import (
    Accepted,
    Approval,
    Batch,
    BatchFile,
    ChampionChange,
    Decision,
    Evaluated,
    FileOutcome,
    Finished,
    ModelScore,
    Monitoring,
    RetrainDecision,
    Trained,
)

SCORE = ModelScore(
    metrics={"roc_auc": 0.7, "r2": math.nan},
    rows=900,
    classes=[0, 1],
    slices={"origin": {"EWR": {"roc_auc": 0.69, "rows": 300.0}}},
    latency_ms_per_1k=1.5,
)
RESULTS = [
    pytest.param(
        Batch("/s", [BatchFile("/l/a.parquet", "k", "/s/0.parquet", 3)], 3, None, None, None),
        id="batch",
    ),
    pytest.param(
        Accepted(
            True, "ok", 3, "/s/a.parquet", None, None, [FileOutcome("/l/a", "k", "accepted", 3)]
        ),
        id="accepted",
    ),
    pytest.param(Monitoring("1", 30, 0.2, "2 of 10 drifted", 0.66), id="monitoring"),
    pytest.param(RetrainDecision(True, "no champion yet"), id="retrain"),
    pytest.param(
        Trained("r1", "2", "models:/m-1", "/h.parquet", "ab" * 8, 10, 5, *["2013-01-01"] * 4),
        id="trained",
    ),
    pytest.param(
        Evaluated(Decision(True, "promoted: first model"), SCORE, "2", "r1", SCORE, "1"),
        id="evaluated",
    ),
    pytest.param(Approval(True, False, "bob", "rejected by bob"), id="approval"),
    pytest.param(ChampionChange("promoted", "ok", "1", "2", "2", "auto", "carol"), id="change"),
    pytest.param(Finished("promoted: ok", "r1"), id="finished"),
]


class TestRoundTrip:
    @pytest.mark.parametrize("result", RESULTS)
    def test_json_and_back(self, result):
        wire = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # strict JSON
        back = type(result).from_dict(wire)
        assert back.to_dict() == result.to_dict()
        assert type(back) is type(result)

    def test_nested_results_are_rebuilt_typed(self):
        evaluated = Evaluated.from_dict(RESULTS[5].values[0].to_dict())
        assert isinstance(evaluated.decision, Decision) and evaluated.decision.promote
        assert isinstance(evaluated.champion, ModelScore)
        assert math.isnan(evaluated.candidate.metrics["r2"])  # "NaN" on the wire, a float again
        assert evaluated.to_dict()["decision"]["verdict"] == "BLESSED"

    def test_lists_of_results_are_rebuilt_typed(self):
        batch = Batch.from_dict(json.loads(json.dumps(RESULTS[0].values[0].to_dict())))
        assert isinstance(batch.files[0], BatchFile) and batch.files[0].rows == 3

    def test_extra_keys_from_a_newer_producer_are_ignored(self):
        wire = {**RetrainDecision(False, "no retrain").to_dict(), "added_later": 1}
        assert RetrainDecision.from_dict(wire) == RetrainDecision(False, "no retrain")


class TestMissingInput:
    @pytest.mark.parametrize(
        ("value", "match"),
        [
            pytest.param(None, "did the upstream task run", id="none"),
            pytest.param(["train"], "got list", id="not-a-dict"),
            pytest.param({"retrain": True}, "no 'reason'", id="missing-key"),
        ],
    )
    def test_names_the_stage_and_what_is_missing(self, value, match):
        with pytest.raises(HandoffError, match=match) as err:
            RetrainDecision.from_dict(value)
        assert "RetrainDecision" in str(err.value)
