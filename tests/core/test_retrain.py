from __future__ import annotations

import pytest

from modelkeeper.contracts.results import Monitoring
from modelkeeper.decisions.retrain import age_days, should_retrain


@pytest.fixture
def policy(spec):
    """The demo spec with these tests' thresholds (the demo's own are tuned by backtest)."""
    return spec.model_copy(
        update={
            "drift": spec.drift.model_copy(update={"share_threshold": 0.3}),
            "retrain": spec.retrain.model_copy(
                update={"performance_floor": 0.6, "max_age_days": None}
            ),
        }
    )


class TestShouldRetrain:
    @pytest.mark.parametrize(
        ("monitoring", "force", "retrain", "phrase"),
        [
            pytest.param(Monitoring(None, 900), False, True, "no champion yet", id="no-champion"),
            pytest.param(
                Monitoring("3", 900, 0.5, "x", 0.7), False, True, "data drift: 50%", id="drift"
            ),
            pytest.param(
                Monitoring("3", 900, 0.1, "x", 0.52), False, True, "performance decay", id="decay"
            ),
            pytest.param(
                Monitoring("3", 900, 0.1, "x", 0.7),
                True,
                True,
                "forced by a person: why",
                id="forced",
            ),
            pytest.param(
                Monitoring("3", 900, 0.1, "x", 0.7),
                False,
                False,
                "no retrain: champion v3 holds",
                id="holds",
            ),
            pytest.param(
                Monitoring("3", 900, 0.29, "x", 0.6), False, False, "no retrain", id="just-under"
            ),
            pytest.param(
                Monitoring("3", 900, 0.1, "x", 0.7, trained_version="3"),
                False,
                True,
                "rerun: this run already trained v3; finishing it",
                id="rerun-finishes",
            ),
            pytest.param(
                Monitoring("3", 0, trained_version="3"),
                False,
                True,
                "rerun: this run already trained v3",
                id="rerun-no-new-rows",
            ),
        ],
    )
    def test_reasons(self, policy, monitoring, force, retrain, phrase):
        decision = should_retrain(monitoring, policy, force=force, force_reason="why")
        assert decision.retrain is retrain
        assert phrase in decision.reason

    def test_both_reasons_listed(self, policy):
        decision = should_retrain(Monitoring("3", 900, 0.9, "x", 0.5), policy)
        assert "data drift" in decision.reason and "performance decay" in decision.reason


class TestStaleChampion:
    @pytest.fixture
    def aged(self, policy):
        return policy.model_copy(
            update={"retrain": policy.retrain.model_copy(update={"max_age_days": 28})}
        )

    def test_a_champion_older_than_max_age_retrains(self, aged):
        m = Monitoring("3", 900, 0.1, "x", 0.7, champion_age_days=30.2)
        decision = should_retrain(m, aged)
        assert decision.retrain
        assert (
            "stale champion: its data ends 30 days before the new batch's ≥ 28" in decision.reason
        )

    def test_younger_holds_and_unknown_age_is_no_reason(self, aged, policy):
        assert not should_retrain(
            Monitoring("3", 900, 0.1, "x", 0.7, champion_age_days=27.9), aged
        ).retrain
        assert not should_retrain(Monitoring("3", 900, 0.1, "x", 0.7), aged).retrain
        # without max_age_days, age never retrains
        assert not should_retrain(
            Monitoring("3", 900, 0.1, "x", 0.7, champion_age_days=999), policy
        ).retrain

    def test_age_days(self):
        assert age_days("2013-03-01T00:00:00+00:00", "2013-03-08T12:00:00+00:00") == 7.5
        assert age_days("2013-03-01T00:00:00", "2013-03-08T00:00:00+00:00") == 7  # naive: UTC
        assert age_days(None, "2013-03-08") is None and age_days("2013-03-01", None) is None
