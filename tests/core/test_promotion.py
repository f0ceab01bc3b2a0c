from __future__ import annotations

import pytest

from modelkeeper.contracts.results import Decision, ModelScore
from modelkeeper.decisions.promotion import Candidate, Champion, decide

COLS = [
    "hour",
    "day_of_week",
    "distance",
    "temp",
    "humid",
    "wind_speed",
    "precip",
    "visib",
    "carrier",
    "origin",
]


def score(
    auc=0.70, log_loss=0.45, ap=0.40, rows=1000, classes=(0, 1), slices=None, latency=10.0
) -> ModelScore:
    return ModelScore(
        metrics={"roc_auc": auc, "log_loss": log_loss, "average_precision": ap},
        rows=rows,
        classes=list(classes),
        slices=slices or {},
        latency_ms_per_1k=latency,
    )


def cand(**kw) -> Candidate:
    validated = kw.pop("validated", True)
    cols = kw.pop("cols", COLS)
    data_end = kw.pop("data_end", None)
    return Candidate(
        version="2", score=score(**kw), input_columns=cols, validated=validated, data_end=data_end
    )


def champ(**kw) -> Champion:
    load_error = kw.pop("load_error", None)
    cols = kw.pop("cols", COLS)
    data_end = kw.pop("data_end", None)
    return Champion(
        version="1",
        score=None if load_error else score(**kw),
        input_columns=cols,
        load_error=load_error,
        data_end=data_end,
    )


class TestDecide:
    def test_first_model_above_floor(self, spec):
        d = decide(cand(auc=0.66), None, spec)
        assert d.promote and d.verdict == "BLESSED"
        assert d.reason.startswith("promoted: first model, roc_auc 0.660")

    def test_a_first_model_without_checks_has_no_stray_separator(self, spec):
        """Issue 23 item 16: the reason used to end with "; " when no check was listed."""
        bare = spec.model_copy(
            update={"promotion": spec.promotion.model_copy(update={"floor": None})}
        )
        d = decide(cand(auc=0.66), None, bare)
        assert d.promote and not d.reason.rstrip().endswith(";"), d.reason

    def test_improvement_reason_is_readable(self, spec):
        d = decide(cand(auc=0.731, log_loss=0.44), champ(auc=0.712), spec)
        assert d.promote
        assert d.reason.startswith("promoted: roc_auc 0.712 → 0.731 (+0.019 ≥ +0.005)")
        assert "guardrails ok: log_loss 0.450 → 0.440" in d.reason

    @pytest.mark.parametrize(
        ("candidate", "champion", "phrase"),
        [
            pytest.param(
                cand(rows=120),
                champ(),
                "evaluation frame too small: 120 rows < 500",
                id="small-frame",
            ),
            pytest.param(cand(classes=(0,)), champ(), "class missing", id="one-class"),
            pytest.param(
                cand(validated=False), champ(), "no passed-validation lineage tag", id="no-lineage"
            ),
            pytest.param(cand(auc=0.50), None, "roc_auc 0.500 below floor 0.550", id="below-floor"),
            pytest.param(
                cand(auc=0.90, data_end="2013-03-04T23:00:00"),
                champ(auc=0.70, data_end="2013-03-11T23:00:00"),
                "stale candidate: its data ends 2013-03-04T23:00:00, champion v1's ends "
                "2013-03-11T23:00:00",
                id="older-data-window",
            ),
            pytest.param(
                cand(auc=0.703),
                champ(auc=0.70),
                "roc_auc 0.700 → 0.703 (+0.003 < +0.005 required)",
                id="too-small-gain",
            ),
            pytest.param(cand(auc=0.69), champ(auc=0.70), "(-0.010 < +0.005 required)", id="worse"),
            pytest.param(
                cand(auc=0.72, log_loss=0.50),
                champ(auc=0.70),
                "guardrail log_loss 0.450 → 0.500",
                id="guardrail",
            ),
            pytest.param(
                cand(auc=0.72, latency=80.0), champ(auc=0.70), "latency 8.0x", id="latency"
            ),
        ],
    )
    def test_refusals(self, spec, candidate, champion, phrase):
        d = decide(candidate, champion, spec)
        assert not d.promote and d.verdict == "NOT_BLESSED"
        assert d.reason.startswith("refused: ")
        assert phrase in d.reason

    UNUSABLE = [
        pytest.param(
            champ(load_error="OSError: gone"),
            "champion v1 unloadable: OSError: gone",
            id="unloadable",
        ),
        pytest.param(champ(cols=COLS[:-1]), "input schema differs (new: ['origin']", id="schema"),
    ]

    @pytest.mark.parametrize(("champion", "phrase"), UNUSABLE)
    def test_an_unusable_champion_leaves_it_to_a_person(self, spec, champion, phrase):
        d = decide(cand(auc=0.60), champion, spec)
        assert d.promote and d.needs_approval and d.verdict == "BLESSED"
        assert d.reason.startswith("needs approval: ") and phrase in d.reason
        assert "roc_auc 0.600 clears floor 0.550" in d.reason

    @pytest.mark.parametrize(("champion", "phrase"), UNUSABLE)
    def test_an_unusable_champion_does_not_lower_the_floor(self, spec, champion, phrase):
        d = decide(cand(auc=0.50), champion, spec)
        assert not d.promote and "below floor" in d.reason

    @pytest.mark.parametrize(("champion", "phrase"), UNUSABLE)
    def test_the_refuse_rule(self, spec, champion, phrase):
        strict = spec.model_copy(
            update={"promotion": spec.promotion.model_copy(update={"unusable_champion": "refuse"})}
        )
        d = decide(cand(auc=0.60), champion, strict)
        assert not d.promote and d.reason.startswith("refused: ") and phrase in d.reason

    def test_slice_gap_refused(self, spec):
        slices = {
            "origin": {
                "EWR": {"roc_auc": 0.9, "rows": 400.0},
                "JFK": {"roc_auc": 0.5, "rows": 400.0},
            }
        }
        d = decide(cand(auc=0.72, slices=slices), champ(auc=0.70), spec)
        assert (
            not d.promote and "slice gap 0.400 > 0.350 (origin: JFK 0.500 vs EWR 0.900)" in d.reason
        )

    @pytest.mark.parametrize(
        ("cand_end", "champ_end"),
        [
            ("2013-03-11T23:00:00", "2013-03-11T23:00:00"),  # a forced retrain on the same data
            ("2013-03-18T23:00:00", "2013-03-11T23:00:00"),
            (None, "2013-03-11T23:00:00"),  # versions from before the tag existed
            ("2013-03-04T23:00:00", None),
        ],
    )
    def test_same_or_newer_data_is_compared_on_metrics(self, spec, cand_end, champ_end):
        d = decide(cand(auc=0.72, data_end=cand_end), champ(auc=0.70, data_end=champ_end), spec)
        assert d.promote, d.reason

    def test_small_slices_ignored(self, spec):
        slices = {
            "origin": {
                "EWR": {"roc_auc": 0.9, "rows": 50.0},
                "JFK": {"roc_auc": 0.5, "rows": 400.0},
            }
        }
        assert decide(cand(auc=0.72, slices=slices), champ(auc=0.70), spec).promote

    def test_round_trip(self, spec):
        d = decide(cand(), None, spec)
        assert Decision.from_dict(d.to_dict()) == d


class TestNoStraySeparators:
    """Issue 23 item 16: no gate reason ends with a stray "; " (or holds an empty part),
    whichever way the gate decides: first model with and without a floor, better, worse,
    within noise, an unusable champion, an unvalidated candidate."""

    @staticmethod
    def _specs(spec):
        bare = spec.model_copy(
            update={"promotion": spec.promotion.model_copy(update={"floor": None})}
        )
        return [spec, bare]

    @pytest.mark.parametrize(
        ("candidate", "champion"),
        [
            pytest.param(cand(auc=0.66), None, id="first"),
            pytest.param(cand(auc=0.40), None, id="first-below-floor"),
            pytest.param(cand(auc=0.731, log_loss=0.44), champ(auc=0.712), id="better"),
            pytest.param(cand(auc=0.70), champ(auc=0.72), id="worse"),
            pytest.param(cand(auc=0.7201), champ(auc=0.72), id="within-noise"),
            pytest.param(cand(auc=0.72), champ(load_error="gone"), id="champion-unusable"),
            pytest.param(cand(auc=0.72, validated=False), champ(auc=0.70), id="unvalidated"),
            pytest.param(cand(auc=0.72, classes=(0,)), champ(auc=0.70), id="one-class"),
        ],
    )
    def test_reasons_read_clean(self, spec, candidate, champion):
        for s in self._specs(spec):
            reason = decide(candidate, champion, s).reason
            stripped = reason.rstrip()
            assert not stripped.endswith((";", ":", ",")), reason
            assert "; ;" not in reason and ";;" not in reason and ": ;" not in reason, reason
            assert "()" not in reason and reason == " ".join(reason.split()), reason
