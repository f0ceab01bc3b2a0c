"""Property-based fuzzing of the data gates: any frame gets a verdict with its reason, never a
crash.

Frames are generated with random dtypes, NaN/inf, 0-3 rows, duplicate or unicode
column names and many columns, mixed with the spec's real column names so the gate's
deeper checks are reached too.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelkeeper.demo import COLUMNS as SPEC_COLUMNS  # the demo spec's columns

names = st.one_of(st.sampled_from(SPEC_COLUMNS), st.text(min_size=0, max_size=12))
floats = st.floats(allow_nan=True, allow_infinity=True)
cells = st.one_of(
    floats, st.integers(-(10**12), 10**12), st.text(max_size=20), st.none(), st.booleans()
)


@st.composite
def frames(draw):
    n_rows = draw(st.integers(0, 3))
    n_cols = draw(st.integers(0, 30))
    columns = draw(st.lists(names, min_size=n_cols, max_size=n_cols))
    kinds = draw(
        st.lists(
            st.sampled_from(["float", "int", "str", "mixed", "datetime", "const"]),
            min_size=n_cols,
            max_size=n_cols,
        )
    )
    data = []
    for kind in kinds:
        if kind == "float":
            data.append(draw(st.lists(floats, min_size=n_rows, max_size=n_rows)))
        elif kind == "int":
            data.append(draw(st.lists(st.integers(-5, 10_000), min_size=n_rows, max_size=n_rows)))
        elif kind == "str":
            data.append(draw(st.lists(st.text(max_size=8), min_size=n_rows, max_size=n_rows)))
        elif kind == "datetime":
            data.append(list(pd.date_range("2013-01-01", periods=n_rows, freq="h")))
        elif kind == "const":
            data.append([float("nan")] * n_rows)
        else:
            data.append(draw(st.lists(cells, min_size=n_rows, max_size=n_rows)))
    frame = pd.DataFrame(dict(enumerate(data))) if data else pd.DataFrame(index=range(n_rows))
    frame.columns = columns
    return frame


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class TestValidationVerdicts:
    @FUZZ
    @given(df=frames())
    def test_any_frame_fails_with_its_reason(self, spec, df):
        from modelkeeper.quality.validation import validate_frame

        outcome = validate_frame(df, spec)
        # A frame this small can never pass: min_rows is 500.
        assert outcome.success is False
        assert outcome.summary.startswith("validation failed: "), outcome.summary
        assert outcome.failures, outcome.summary
        for f in outcome.failures:
            assert f["expectation"] and f["detail"], f
        # The reason names what failed: an expectation, or the rejection's detail.
        assert any(
            f["expectation"] in outcome.summary or f["detail"] in outcome.summary
            for f in outcome.failures
        ), outcome.summary

    @pytest.fixture(scope="class")
    def valid(self):
        from modelkeeper.demo import load_flights, week_frame

        return week_frame(load_flights(), 2)

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(extra=st.dictionaries(st.text(min_size=1, max_size=12), cells, max_size=4))
    def test_a_valid_frame_passes_whatever_extra_columns_it_carries(self, spec, valid, extra):
        from modelkeeper.quality.validation import validate_frame

        extra = {k: v for k, v in extra.items() if k not in SPEC_COLUMNS}
        frame = valid.assign(**{name: [value] * len(valid) for name, value in extra.items()})
        outcome = validate_frame(frame, spec)
        assert outcome.success is True, outcome.summary
        assert outcome.summary.startswith("validation passed: "), outcome.summary
        # The spec's extra_columns policy is "warn": named, neither failed nor warned about.
        assert outcome.extra_columns == list(extra)
        assert outcome.warnings == []


class TestDriftVerdicts:
    @pytest.fixture(scope="class")
    def reference(self):
        rng = np.random.default_rng(0)
        n = 300
        return pd.DataFrame(
            {
                "hour": rng.integers(0, 24, n),
                "day_of_week": rng.integers(0, 7, n),
                "distance": rng.uniform(100, 3000, n),
                "temp": rng.normal(55, 15, n),
                "humid": rng.uniform(20, 100, n),
                "wind_speed": rng.uniform(0, 30, n),
                "precip": rng.exponential(0.01, n),
                "visib": rng.uniform(0, 10, n),
                "carrier": rng.choice(["UA", "DL", "B6"], n),
                "origin": rng.choice(["EWR", "JFK", "LGA"], n),
            }
        )

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(df=frames())
    def test_any_current_frame_gets_a_verdict_or_a_drift_error(self, spec, reference, df):
        from modelkeeper.monitoring.drift import DriftError, compute_drift

        try:
            outcome = compute_drift(reference, df, spec)
        except DriftError as exc:
            assert re.match(DRIFT_ERRORS, str(exc)), str(exc)
            return
        # Every feature is either judged or skipped with its reason.
        assert set(outcome.columns) | set(outcome.skipped) == set(spec.features.all)
        assert not set(outcome.columns) & set(outcome.skipped)
        drifted = [c for c, r in outcome.columns.items() if r["drifted"]]
        assert outcome.drifted_columns == drifted
        assert math.isclose(outcome.drifted_share, len(drifted) / len(outcome.columns))
        assert outcome.summary.startswith(f"{len(drifted)} of {len(outcome.columns)} columns")
        assert all(c in outcome.summary for c in [*drifted, *outcome.skipped]), outcome.summary
        assert outcome.current_rows == len(df) and outcome.reference_rows == len(reference)


DRIFT_ERRORS = (
    r"(current frame is empty|current frame has duplicate column names"
    r"|no column to compute drift on \(.+\)|Evidently could not compute drift)"
)
