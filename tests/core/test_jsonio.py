"""The strict JSON writer: every reader can parse what it writes, and an unknown type is an
error naming where it sits, never a silent str()."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelkeeper.contracts.jsonio import as_float, dumps, jsonable


class Color(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclass(frozen=True)
class Reported:
    value: float

    def to_dict(self) -> dict:
        return {"value": self.value, "kind": "reported"}


def _strict_loads(text: str):
    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


class TestDumps:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(math.nan, "NaN", id="nan"),
            pytest.param(math.inf, "Infinity", id="inf"),
            pytest.param(-math.inf, "-Infinity", id="-inf"),
            pytest.param(np.float64("nan"), "NaN", id="numpy-nan"),
            pytest.param(np.float32(0.5), 0.5, id="numpy-float"),
            pytest.param(np.int64(7), 7, id="numpy-int"),
            pytest.param(np.bool_(True), True, id="numpy-bool"),
            pytest.param(np.array([1.0, np.nan]), [1.0, "NaN"], id="numpy-array"),
            pytest.param(pd.Timestamp("2013-01-01 05:00"), "2013-01-01T05:00:00", id="timestamp"),
            pytest.param(pd.NaT, None, id="nat"),
            pytest.param(pd.NA, None, id="pd-na"),
            pytest.param(np.datetime64("2013-01-02"), "2013-01-02T00:00:00", id="datetime64"),
            pytest.param(
                dt.datetime(2013, 1, 1, tzinfo=dt.UTC), "2013-01-01T00:00:00+00:00", id="dt"
            ),
            pytest.param(dt.date(2013, 1, 1), "2013-01-01", id="date"),
            pytest.param(Path("/data/x.parquet"), "/data/x.parquet", id="path"),
            pytest.param(Color.RED, "red", id="enum"),
            pytest.param(Point(1.0, math.inf), {"x": 1.0, "y": "Infinity"}, id="dataclass"),
            pytest.param(Reported(2.0), {"value": 2.0, "kind": "reported"}, id="to_dict"),
            pytest.param((1, {2}), [1, [2]], id="tuple-set"),
            pytest.param({1: "a", np.int64(2): "b"}, {"1": "a", "2": "b"}, id="keys"),
        ],
    )
    def test_converts_what_results_hold(self, value, expected):
        text = dumps({"v": value})
        assert _strict_loads(text) == {"v": expected}

    def test_non_finite_floats_read_back(self):
        data = _strict_loads(dumps({"a": math.nan, "b": -math.inf, "c": 1.5}))
        assert math.isnan(as_float(data["a"])) and as_float(data["b"]) == -math.inf
        assert as_float(data["c"]) == 1.5

    def test_keyword_arguments_reach_json(self):
        assert dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a": 2, "b": 1}'

    def test_long_strings_are_clipped_on_request(self):
        out = jsonable({"k": "x" * 50}, max_str=10)
        assert out == {"k": "x" * 10 + "...[40 more chars]"}


class TestRefusals:
    @pytest.mark.parametrize(
        ("value", "where"),
        [
            pytest.param(
                {"a": {"b": [1, object()]}}, r"\$\.a\.b\[1\]: builtins\.object", id="object"
            ),
            pytest.param({"f": pd.DataFrame()}, r"\$\.f: pandas\..*DataFrame", id="frame"),
            pytest.param({"d": dt.timedelta(1)}, r"\$\.d: datetime\.timedelta", id="timedelta"),
            pytest.param({"m": {(1, 2): 3}}, r"\$\.m: a tuple key", id="tuple-key"),
        ],
    )
    def test_an_unknown_type_names_its_place(self, value, where):
        with pytest.raises(TypeError, match=where):
            dumps(value)
