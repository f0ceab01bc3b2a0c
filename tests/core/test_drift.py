"""compute_drift on synthetic flight_delay batches: real Evidently runs, no mocks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelkeeper.contracts.spec import ColumnDrift, get_spec
from modelkeeper.monitoring.drift import DriftError, DriftOutcome, compute_drift, drifted_share

ROWS = 3000
CARRIERS = get_spec("flight_delay").data_schema.column("carrier").allowed
CARRIER_P = np.array([5, 10, 1, 18, 15, 16, 1, 1, 1, 8, 1, 18, 6, 2, 4, 3], dtype=float)
SHIFTED = ["distance", "temp", "humid", "wind_speed"]


@pytest.fixture(scope="module")
def spec():
    return get_spec("flight_delay")


def flights(seed: int, n: int = ROWS, *, shift: bool = False) -> pd.DataFrame:
    """Rows shaped like the flight_delay features; `shift` moves 4 numerics and both categoricals."""
    rng = np.random.default_rng(seed)
    carrier_p = CARRIER_P[::-1] if shift else CARRIER_P
    origin_p = [0.1, 0.2, 0.7] if shift else [0.36, 0.33, 0.31]
    return pd.DataFrame(
        {
            "hour": rng.integers(5, 24, n),
            "day_of_week": rng.integers(0, 7, n),
            "distance": rng.gamma(2.0, 500.0, n) * (1.8 if shift else 1.0) + 80,
            "temp": rng.normal(75 if shift else 55, 17, n),
            "humid": rng.uniform(50 if shift else 20, 100, n),
            "wind_speed": rng.gamma(2.0, 12.0 if shift else 5.0, n),
            "precip": np.where(rng.random(n) < 0.9, 0.0, rng.exponential(0.1, n)),
            "visib": np.where(rng.random(n) < 0.8, 10.0, rng.uniform(0, 10, n)),
            "carrier": rng.choice(CARRIERS, n, p=carrier_p / carrier_p.sum()),
            "origin": rng.choice(["EWR", "JFK", "LGA"], n, p=origin_p),
            "delayed": rng.integers(0, 2, n),
        }
    )


def with_drift(spec, **changes):
    return spec.model_copy(update={"drift": spec.drift.model_copy(update=changes)})


def assert_consistent(outcome: DriftOutcome) -> None:
    assert outcome.drifted_columns == [c for c, r in outcome.columns.items() if r["drifted"]]
    assert outcome.drifted_share == pytest.approx(
        len(outcome.drifted_columns) / len(outcome.columns)
    )
    json.dumps(outcome.to_dict(), allow_nan=False)


class TestComputeDrift:
    def test_same_distribution_does_not_drift(self, spec):
        outcome = compute_drift(flights(1), flights(2), spec)

        assert set(outcome.columns) == set(spec.features.all)
        assert outcome.drifted_share == 0
        assert outcome.drifted_columns == []
        assert outcome.skipped == {}
        assert (outcome.reference_rows, outcome.current_rows) == (ROWS, ROWS)
        assert outcome.summary.startswith("0 of 10 columns drifted (0%)")
        assert_consistent(outcome)

    def test_strong_shift_flags_the_shifted_columns(self, spec):
        outcome = compute_drift(flights(1), flights(2, shift=True), spec)

        assert set(SHIFTED + ["carrier", "origin"]) <= set(outcome.drifted_columns)
        assert outcome.drifted_share >= 0.6  # the 4 shifted columns + carrier + origin of 10
        for col in SHIFTED:
            result = outcome.columns[col]
            # 3000 rows: Evidently's default for numerics is the normed Wasserstein distance.
            assert result["method"] == "wasserstein"
            assert result["score"] > result["threshold"]
        assert "temp (wasserstein" in outcome.summary
        assert_consistent(outcome)

    def test_prediction_drift_through_extra_numeric(self, spec):
        rng = np.random.default_rng(7)
        reference, current = flights(1), flights(2)
        reference["prediction"] = rng.beta(2, 5, ROWS)
        current["prediction"] = rng.beta(5, 2, ROWS)

        outcome = compute_drift(reference, current, spec, extra_numeric=["prediction"])

        assert outcome.drifted_columns == ["prediction"]
        assert outcome.columns["prediction"]["drifted"] is True
        assert outcome.summary.startswith("1 of 11 columns drifted (9%): prediction (wasserstein")
        assert_consistent(outcome)

    def test_spec_method_and_threshold_are_used(self, spec):
        outcome = compute_drift(flights(1), flights(2, shift=True), spec)

        for col, override in spec.drift.columns.items():
            assert outcome.columns[col]["method"] == override.method
            assert outcome.columns[col]["threshold"] == pytest.approx(override.threshold)
            assert outcome.columns[col]["drifted"] is True

    @pytest.mark.parametrize(
        ("shift", "drifted"),
        [pytest.param(False, False, id="same"), pytest.param(True, True, id="shifted")],
    )
    def test_p_value_method_drifts_on_small_p(self, spec, shift, drifted):
        ks_spec = with_drift(
            spec, columns={**spec.drift.columns, "temp": ColumnDrift(method="ks", threshold=0.01)}
        )

        outcome = compute_drift(flights(1), flights(2, shift=shift), ks_spec)

        temp = outcome.columns["temp"]
        assert (temp["method"], temp["threshold"]) == ("ks", 0.01)
        assert temp["drifted"] is drifted
        assert (temp["score"] < temp["threshold"]) is drifted
        if drifted:
            assert "temp (ks p=" in outcome.summary
        assert_consistent(outcome)

    def test_high_cardinality_string_stays_categorical(self, spec):
        plain = with_drift(spec, columns={})
        reference, current = flights(1), flights(2)
        rng = np.random.default_rng(3)
        reference["carrier"] = [f"C{i}" for i in rng.integers(0, 800, ROWS)]
        current["carrier"] = [f"C{i}" for i in rng.integers(0, 800, ROWS)]

        outcome = compute_drift(reference, current, plain)

        # Default categorical test at >1000 rows; a text column would get a text-content test.
        assert outcome.columns["carrier"]["method"] == "jensenshannon"

    def test_unusable_columns_are_skipped_not_fatal(self, spec):
        reference, current = flights(1), flights(2)
        current["visib"] = np.nan
        current["precip"] = np.inf
        reference["wind_speed"] = np.nan
        current = current.drop(columns=["humid"])

        outcome = compute_drift(reference, current, spec)

        assert outcome.skipped == {
            "humid": "missing from current",
            "visib": "all values missing or infinite in current",
            "precip": "all values missing or infinite in current",
            "wind_speed": "all values missing or infinite in reference",
        }
        assert set(outcome.columns) == set(spec.features.all) - set(outcome.skipped)
        assert "skipped: humid (missing from current)" in outcome.summary
        assert_consistent(outcome)

    @pytest.mark.parametrize(
        ("reference", "current", "match"),
        [
            pytest.param(
                flights(1), flights(2).iloc[:0], "current frame is empty", id="empty-current"
            ),
            pytest.param(
                flights(1).iloc[:0], flights(2), "reference frame is empty", id="empty-reference"
            ),
            pytest.param(
                pd.DataFrame({"x": [1.0, 2.0]}),
                flights(2),
                "no column to compute drift on .*hour: missing from reference",
                id="no-common-column",
            ),
        ],
    )
    def test_inputs_without_drift_raise(self, spec, reference, current, match):
        with pytest.raises(DriftError, match=match):
            compute_drift(reference, current, spec)

    def test_unknown_method_in_spec_raises(self, spec):
        bad = with_drift(spec, columns={"origin": ColumnDrift(method="ks")})

        with pytest.raises(DriftError, match=r"drift\.columns\.origin\.method 'ks'"):
            compute_drift(flights(1), flights(2), bad)

    def test_reports_are_written(self, spec, tmp_path):
        html = tmp_path / "reports" / "flight_delay" / "drift.html"
        summary = tmp_path / "reports" / "flight_delay" / "drift.json"

        outcome = compute_drift(
            flights(1), flights(2, shift=True), spec, html_path=html, json_path=summary
        )

        assert html.stat().st_size > 50_000
        assert "<html" in html.read_text(encoding="utf-8")[:2000].lower()
        assert json.loads(summary.read_text(encoding="utf-8")) == outcome.to_dict()
        assert sorted(p.name for p in html.parent.iterdir()) == ["drift.html", "drift.json"]

    def test_sampling_caps_rows_and_is_deterministic(self, spec):
        small = with_drift(spec, sample_rows=500)
        reference, current = flights(1), flights(2, n=400)

        first = compute_drift(reference, current, small, seed=5)
        again = compute_drift(reference, current, small, seed=5)

        assert (first.reference_rows, first.current_rows) == (500, 400)
        assert first == again
        assert_consistent(first)


def test_huge_integral_floats_are_category_labels_not_an_overflow():
    """Found by the fuzz test: 2**63 as a float is integral but overflows Int64."""
    import pandas as pd

    from modelkeeper.monitoring.drift import _as_category_labels

    labels = _as_category_labels(pd.Series([2.0**63, 1.0, None]))
    assert labels.tolist()[:2] == [str(2.0**63), str(1.0)]
    assert _as_category_labels(pd.Series([1.0, 2.0])).tolist() == ["1", "2"]


class TestDriftedShareAlone:
    """drifted_share (the drift threshold's calibration) is compute_drift's share without
    the plots: the same number on every kind of input compute_drift handles."""

    @pytest.mark.parametrize(
        ("case", "shift", "rows"),
        [
            pytest.param("spec overrides", False, ROWS, id="same"),
            pytest.param("spec overrides", True, ROWS, id="shifted"),
            pytest.param("ks override", True, 400, id="small-ks"),
            pytest.param("no overrides", True, 800, id="defaults-under-1000-rows"),
            pytest.param("skipped columns", False, ROWS, id="skipped"),
        ],
    )
    def test_the_same_share_as_the_full_report(self, spec, case, shift, rows):
        reference, current = flights(1, rows), flights(2, rows, shift=shift)
        used = spec
        if case == "ks override":
            used = with_drift(
                spec,
                columns={**spec.drift.columns, "temp": ColumnDrift(method="ks", threshold=0.01)},
            )
        elif case == "no overrides":
            used = with_drift(spec, columns={})
        elif case == "skipped columns":
            current["visib"] = np.nan
            current = current.drop(columns=["humid"])
        reference["prediction"] = reference["distance"] / 1000
        current["prediction"] = current["distance"] / 1000 * (1.5 if shift else 1.0)

        full = compute_drift(reference, current, used, extra_numeric=["prediction"])
        alone = drifted_share(reference, current, used, extra_numeric=["prediction"])

        assert alone == pytest.approx(full.drifted_share)
        if shift:  # not 0 == 0: the shifted columns drift in both
            assert full.drifted_share > 0.3, full.summary

    def test_bad_input_fails_the_same_way(self, spec):
        bad = with_drift(spec, columns={"origin": ColumnDrift(method="ks")})
        with pytest.raises(DriftError, match=r"drift\.columns\.origin\.method 'ks'"):
            drifted_share(flights(1), flights(2), bad)
        with pytest.raises(DriftError, match="current frame is empty"):
            drifted_share(flights(1), flights(2).iloc[:0], spec)
