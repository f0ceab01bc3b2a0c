from __future__ import annotations

import pytest

from modelkeeper.retrain import Monitoring, should_retrain


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
    def test_reasons(self, spec, monitoring, force, retrain, phrase):
        decision = should_retrain(monitoring, spec, force=force, force_reason="why")
        assert decision.retrain is retrain
        assert phrase in decision.reason

    def test_both_reasons_listed(self, spec):
        decision = should_retrain(Monitoring("3", 900, 0.9, "x", 0.5), spec)
        assert "data drift" in decision.reason and "performance decay" in decision.reason
