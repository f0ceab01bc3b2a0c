"""validate_frame: real Great Expectations runs on real DataFrames, no mocks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelkeeper.contracts.spec import ModelSpec, get_spec
from modelkeeper.quality.datadocs import OfflineDocsError, inline_assets, remote_loads
from modelkeeper.quality.validation import ValidationOutcome, validate_frame

CARRIERS = get_spec("flight_delay").data_schema.column("carrier").allowed
N_ROWS = 1000


def make_frame(n: int = N_ROWS, seed: int = 13) -> pd.DataFrame:
    """A frame that satisfies the flight_delay spec, with a few tolerated weather nulls."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "time_hour": pd.Timestamp("2013-01-01", tz="UTC")
            + pd.to_timedelta(np.arange(n), unit="h"),
            "carrier": rng.choice(CARRIERS, n),
            "flight": rng.integers(1, 10_000, n),
            "origin": rng.choice(["EWR", "JFK", "LGA"], n),
            "hour": rng.integers(0, 24, n),
            "day_of_week": rng.integers(0, 7, n),
            "distance": rng.uniform(80, 4_000, n),
            "temp": rng.uniform(10, 95, n),
            "humid": rng.uniform(10, 100, n),
            "wind_speed": rng.uniform(0, 30, n),
            "precip": np.where(rng.random(n) < 0.9, 0.0, rng.uniform(0, 1, n)),
            "visib": rng.uniform(0, 10, n),
            "delayed": rng.integers(0, 2, n),
        }
    )
    frame.loc[rng.random(n) < 0.05, "temp"] = np.nan
    frame.loc[rng.random(n) < 0.05, "wind_speed"] = np.nan
    return frame


class Unprintable:
    """A cell value that cannot be turned into a string or hashed."""

    def __str__(self) -> str:
        raise RuntimeError("cannot print me")

    __repr__ = __str__

    def __hash__(self) -> int:
        raise TypeError("cannot hash me")


def spec_variant(
    spec: ModelSpec, *, schema: dict[str, Any] | None = None, columns: dict[str, dict] | None = None
) -> ModelSpec:
    """A modified copy of a frozen, nested spec, validated like a spec file."""
    raw = spec.model_dump(by_alias=True)
    raw["schema"].update(schema or {})
    for column in raw["schema"]["columns"]:
        column.update((columns or {}).get(column["name"], {}))
    return ModelSpec.model_validate(raw)


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return get_spec("flight_delay")


@pytest.fixture(scope="module")
def valid_frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def frame(valid_frame: pd.DataFrame) -> pd.DataFrame:
    return valid_frame.copy()


def assert_fails(outcome: ValidationOutcome, *needles: str) -> None:
    assert outcome.success is False, outcome.summary
    assert outcome.summary.startswith("validation failed"), outcome.summary
    for needle in needles:
        assert needle in outcome.summary, f"{needle!r} not in {outcome.summary!r}"
    assert outcome.failures


def assert_json(outcome: ValidationOutcome) -> dict:
    as_dict = outcome.to_dict()
    json.dumps(as_dict, allow_nan=False)
    return as_dict


class TestValidFrames:
    def test_valid_frame_passes(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        outcome = validate_frame(frame, spec)

        assert outcome.success is True, outcome.summary
        assert outcome.failures == []
        assert outcome.warnings == []
        assert outcome.summary.startswith("validation passed")
        stats = outcome.statistics
        assert stats["evaluated"] == stats["successful"] > 40
        assert stats["unsuccessful"] == 0
        assert outcome.result["success"] is True
        as_dict = assert_json(outcome)
        assert as_dict["statistics"] == stats

    @pytest.mark.parametrize(
        "convert",
        [
            pytest.param(
                lambda f: f.assign(time_hour=f.time_hour.dt.tz_convert(None)), id="naive-datetime"
            ),
            pytest.param(
                lambda f: f.assign(
                    time_hour=f.time_hour.dt.tz_convert(None).astype("datetime64[us]")
                ),
                id="datetime-us",
            ),
            pytest.param(
                lambda f: f.astype({"carrier": "category", "origin": "category"}), id="categorical"
            ),
            pytest.param(
                lambda f: f.astype({"carrier": "string", "origin": "string"}), id="string-dtype"
            ),
            pytest.param(lambda f: f.astype({"carrier": "string[pyarrow]"}), id="pyarrow-string"),
            pytest.param(
                lambda f: f.astype({"flight": "Int64", "hour": "int32"}), id="nullable-int"
            ),
            pytest.param(
                lambda f: f.astype({"distance": "float32", "temp": "Float64"}), id="float32"
            ),
            pytest.param(lambda f: f.astype({"distance": "int64"}), id="int-in-float-column"),
            pytest.param(
                lambda f: f.assign(temp=f.temp.where(f.index % 3 > 0)), id="nulls-within-tolerance"
            ),
            pytest.param(
                lambda f: f.sample(frac=1, random_state=3)[f.columns[::-1]], id="reordered"
            ),
        ],
    )
    def test_dtype_variants_pass(
        self, spec: ModelSpec, frame: pd.DataFrame, convert: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> None:
        outcome = validate_frame(convert(frame), spec)
        assert outcome.success is True, outcome.summary

    def test_nullable_int_column_may_be_float(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        # An int column with NaN comes back from parquet/CSV as float64.
        lenient = spec_variant(spec, columns={"hour": {"nullable": True}})
        frame["hour"] = frame["hour"].astype(float).where(frame.index % 10 > 0)

        assert validate_frame(frame, lenient).success is True
        assert_fails(
            validate_frame(frame, spec),
            "expect_column_values_to_be_in_type_list(column=hour, dtype float64",
            "expect_column_values_to_not_be_null(column=hour",
        )

    def test_input_frame_is_not_modified(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame["carrier"] = frame["carrier"].astype("category")
        before = frame.copy()
        validate_frame(frame, spec)
        pd.testing.assert_frame_equal(frame, before)

    @pytest.mark.parametrize(
        "mangle",
        [
            pytest.param(lambda f: f, id="passing"),
            pytest.param(lambda f: f.assign(hour=99), id="failing"),
            pytest.param(lambda f: f.assign(carrier=[Unprintable()] * len(f)), id="gx-crash"),
        ],
    )
    def test_pandas_mode_is_left_as_it_was(
        self, spec: ModelSpec, frame: pd.DataFrame, mangle: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> None:
        # GX runs under copy-on-write; the process's own pandas mode comes back afterwards.
        before = pd.get_option("mode.copy_on_write")
        validate_frame(mangle(frame), spec)
        assert pd.get_option("mode.copy_on_write") == before


class TestSchemaFailures:
    def test_missing_column(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        outcome = validate_frame(frame.drop(columns=["temp"]), spec)

        assert_fails(outcome, "expect_column_to_exist(column=temp)")
        exists = [f for f in outcome.failures if f["expectation"] == "expect_column_to_exist"]
        assert exists == [
            {
                "expectation": "expect_column_to_exist",
                "column": "temp",
                "detail": "column not in the frame",
            }
        ]
        # The other checks on temp error out; the summary folds them into a count.
        assert "more on missing columns" in outcome.summary

    def test_extra_column_is_listed_not_warned(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        """`extra_columns: warn` allows them: named in the outcome, not a warning."""
        frame["foo"] = 1.0
        frame["température"] = "x"

        outcome = validate_frame(frame, spec)

        assert outcome.success is True, outcome.summary
        assert outcome.extra_columns == ["foo", "température"]
        assert outcome.warnings == []
        assert "foo" not in outcome.summary

    def test_extra_column_fails_when_spec_says_so(
        self, spec: ModelSpec, frame: pd.DataFrame
    ) -> None:
        strict = spec_variant(spec, schema={"extra_columns": "fail"})
        frame["foo"] = 1.0

        outcome = validate_frame(frame, strict)

        assert_fails(outcome, "expect_table_columns_to_match_set", "foo")
        assert outcome.warnings == [] and outcome.extra_columns == []
        assert validate_frame(frame.drop(columns=["foo"]), strict).success is True

    def test_strings_in_numeric_column(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame["distance"] = frame["distance"].astype(object)
        frame.loc[[3, 50], "distance"] = ["far", "1200"]

        outcome = validate_frame(frame, spec)

        assert_fails(
            outcome, "expect_column_values_to_be_in_type_list(column=distance, dtype object"
        )
        assert "expect_column_values_to_be_between(column=distance" in outcome.summary

    def test_numeric_column_of_strings(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame["hour"] = frame["hour"].astype(str)

        assert_fails(
            validate_frame(frame, spec), "expect_column_values_to_be_in_type_list(column=hour"
        )

    def test_mixed_type_categorical(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame["origin"] = frame["origin"].astype(object)
        frame.loc[frame.index % 7 == 0, "origin"] = 42

        outcome = validate_frame(frame, spec)

        assert_fails(outcome, "expect_column_values_to_be_in_type_list(column=origin, dtype object")
        assert "expect_column_values_to_be_in_set(column=origin" in outcome.summary

    @pytest.mark.parametrize(
        "empty",
        [
            pytest.param(lambda f: f.iloc[0:0], id="typed-header"),
            pytest.param(lambda f: pd.DataFrame(columns=list(f.columns)), id="object-header"),
        ],
    )
    def test_empty_frame(
        self, spec: ModelSpec, frame: pd.DataFrame, empty: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> None:
        outcome = validate_frame(empty(frame), spec)

        assert_fails(outcome, "expect_table_row_count_to_be_between", "observed 0")

    def test_too_few_rows(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        assert_fails(validate_frame(frame.head(499), spec), "expect_table_row_count_to_be_between")

    @pytest.mark.parametrize(
        "column",
        [pytest.param("temp", id="nullable"), pytest.param("distance", id="non-nullable")],
    )
    def test_all_nan_column(self, spec: ModelSpec, frame: pd.DataFrame, column: str) -> None:
        frame[column] = np.nan

        assert_fails(
            validate_frame(frame, spec), f"expect_column_values_to_not_be_null(column={column}"
        )

    def test_nulls_above_tolerance(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame["humid"] = frame["humid"].where(frame.index % 10 < 3)  # 70% null > 50%
        tolerant = spec_variant(spec, columns={"humid": {"max_null_share": 0.8}})

        assert_fails(
            validate_frame(frame, spec), "expect_column_values_to_not_be_null(column=humid"
        )
        assert validate_frame(frame, tolerant).success is True

    def test_null_in_non_nullable_column(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame["time_hour"] = frame["time_hour"].where(frame.index != 5)

        assert_fails(
            validate_frame(frame, spec),
            "expect_column_values_to_not_be_null(column=time_hour, 1 unexpected",
        )

    @pytest.mark.parametrize(
        ("column", "value", "open_bounds"),
        [
            pytest.param("distance", np.inf, False, id="inf-bounded"),
            pytest.param("temp", -np.inf, False, id="minus-inf-nullable"),
            pytest.param("humid", np.inf, True, id="inf-unbounded"),
            pytest.param("humid", -np.inf, True, id="minus-inf-unbounded"),
        ],
    )
    def test_inf_values(
        self, spec: ModelSpec, frame: pd.DataFrame, column: str, value: float, open_bounds: bool
    ) -> None:
        if open_bounds:
            spec = spec_variant(spec, columns={column: {"min": None, "max": None}})
            assert validate_frame(frame.assign(**{column: frame[column] * 1e6}), spec).success
        frame.loc[[1, 2, 3], column] = value

        outcome = validate_frame(frame, spec)

        # issue 23 item 16: named in words, not as a count of "unexpected" values
        assert_fails(
            outcome,
            f"expect_column_values_to_be_between(column={column}, 3 infinite values in {column})",
        )
        as_dict = assert_json(outcome)  # the infs in the result are strict JSON too
        assert "Infinity" in json.dumps(as_dict)

    @pytest.mark.parametrize(
        ("values", "words"),
        [
            pytest.param(["inf", "-inf", "inf"], "3 infinite values in distance", id="inf-text"),
            pytest.param(
                ["n/a", "n/a", "?"],
                "3 values in distance are not a number (e.g. ['n/a', 'n/a', '?'])",
                id="not-numbers",
            ),
        ],
    )
    def test_text_in_a_numeric_column_is_named_in_words(
        self, spec: ModelSpec, frame: pd.DataFrame, values: list[str], words: str
    ) -> None:
        """Issue 23 item 16: GX's own message here was a raw type error ("Column values,
        min_value, and max_value must either be None or of the same type")."""
        frame["distance"] = frame["distance"].astype(object)
        frame.loc[[1, 2, 3], "distance"] = values

        outcome = validate_frame(frame, spec)

        (between,) = [
            f for f in outcome.failures if f["expectation"] == "expect_column_values_to_be_between"
        ]
        assert between["detail"] == f"{words}; expected between 10 and 5000"
        assert words in outcome.summary
        assert "same type" not in outcome.summary and "error:" not in between["detail"]

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            pytest.param("hour", 24, id="int-above-max"),
            pytest.param("flight", 0, id="int-below-min"),
            pytest.param("distance", 5_000.5, id="float-above-max"),
            pytest.param("precip", -0.1, id="float-below-min"),
        ],
    )
    def test_out_of_range(
        self, spec: ModelSpec, frame: pd.DataFrame, column: str, value: float
    ) -> None:
        frame.loc[frame.index[:12], column] = value

        outcome = validate_frame(frame, spec)

        assert_fails(outcome, f"expect_column_values_to_be_between(column={column}, 12 unexpected")
        (failure,) = outcome.failures
        assert str(value) in failure["detail"]

    def test_unseen_categories_above_tolerance(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame.loc[frame.index[:20], "carrier"] = "ZZ"  # 2% > max_unseen_share 1%

        outcome = validate_frame(frame, spec)

        assert_fails(outcome, "expect_column_values_to_be_in_set(column=carrier, 20 unexpected")
        assert "ZZ" in outcome.failures[0]["detail"]

    def test_unseen_categories_below_tolerance_pass(
        self, spec: ModelSpec, frame: pd.DataFrame
    ) -> None:
        frame.loc[frame.index[:5], "carrier"] = "ZZ"  # 0.5% <= 1%

        outcome = validate_frame(frame, spec)

        assert outcome.success is True, outcome.summary

    def test_unseen_category_without_tolerance(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame.loc[frame.index[0], "origin"] = "BOS"  # origin tolerates none

        assert_fails(
            validate_frame(frame, spec),
            "expect_column_values_to_be_in_set(column=origin, 1 unexpected",
        )

    def test_duplicated_keys(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        duplicated = pd.concat([frame, frame.head(3)], ignore_index=True)

        outcome = validate_frame(duplicated, spec)

        assert_fails(
            outcome,
            "expect_compound_columns_to_be_unique(column=carrier,flight,origin,time_hour, 6 rows share "
            "their unique_key value with another row",
        )

    def test_a_one_column_key(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        """An id column alone is a key too (GX's compound expectation refuses one column)."""
        schema = spec.data_schema.model_copy(update={"unique_key": ["flight"]})
        one = spec.model_copy(update={"data_schema": schema})
        unique = frame.drop_duplicates("flight")
        assert validate_frame(unique, one).success
        duplicated = pd.concat([unique, unique.head(2)], ignore_index=True)
        assert_fails(
            validate_frame(duplicated, one),
            "expect_column_values_to_be_unique(column=flight, 4 rows share their unique_key value",
        )

    def test_single_class_label(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame["delayed"] = 0

        outcome = validate_frame(frame, spec)

        assert_fails(
            outcome, "expect_column_unique_value_count_to_be_between(column=delayed, observed 1"
        )

    def test_regression_target_may_be_constant(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        raw = spec.model_dump(by_alias=True)
        raw["target"]["task"] = "regression"
        raw["metrics"] = {"primary": "rmse", "guardrails": []}
        frame["delayed"] = 0

        assert validate_frame(frame, ModelSpec.model_validate(raw)).success is True

    def test_several_failures_in_spec_order(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        frame["delayed"] = 1
        frame.loc[frame.index[:4], "distance"] = 1.0
        broken = frame.drop(columns=["origin"])

        outcome = validate_frame(broken, spec)

        assert_fails(outcome, "column=origin", "column=distance", "column=delayed")
        columns = [f["column"] for f in outcome.failures]
        assert columns.index("origin") < columns.index("distance") < columns.index("delayed")
        assert (
            f"{len(outcome.failures)} of {outcome.statistics['evaluated']} expectations failed"
            in outcome.summary
        )


class TestPerFileChecks:
    """checks="rows": the suite without the table-level expectations, for one file of a batch."""

    TABLE_LEVEL = {
        "expect_table_row_count_to_be_between",
        "expect_column_unique_value_count_to_be_between",
    }

    def test_rows_leaves_out_only_the_table_level_expectations(
        self, spec: ModelSpec, frame: pd.DataFrame
    ) -> None:
        every = validate_frame(frame, spec)
        rows = validate_frame(frame, spec, checks="rows")

        assert rows.success is True, rows.summary
        assert rows.statistics["evaluated"] == every.statistics["evaluated"] - 2
        kinds = {r["expectation_config"]["type"] for r in every.result["results"]}
        kept = {r["expectation_config"]["type"] for r in rows.result["results"]}
        assert kinds - kept == self.TABLE_LEVEL
        assert rows.result["suite_name"] == "flight_delay.schema.rows"
        assert every.result["suite_name"] == "flight_delay.schema"

    @pytest.mark.parametrize(
        ("mangle", "needle"),
        [
            pytest.param(
                lambda f: f.head(499), "expect_table_row_count_to_be_between", id="too-few-rows"
            ),
            pytest.param(
                lambda f: f.assign(delayed=0),
                "expect_column_unique_value_count_to_be_between(column=delayed, observed 1",
                id="single-class",
            ),
            pytest.param(lambda f: f.iloc[0:0], "expect_table_row_count_to_be_between", id="empty"),
        ],
    )
    def test_table_level_problems_pass_per_file(
        self,
        spec: ModelSpec,
        frame: pd.DataFrame,
        mangle: Callable[[pd.DataFrame], pd.DataFrame],
        needle: str,
    ) -> None:
        part = mangle(frame)

        assert_fails(validate_frame(part, spec, checks="all"), needle)
        outcome = validate_frame(part, spec, checks="rows")
        assert outcome.success is True, outcome.summary
        assert outcome.summary.startswith("validation passed: 52 of 52")

    def test_row_level_problems_still_fail_per_file(
        self, spec: ModelSpec, frame: pd.DataFrame
    ) -> None:
        broken = pd.concat([frame, frame.head(3)], ignore_index=True)
        broken.loc[broken.index[:12], "hour"] = 24
        broken["delayed"] = 1

        outcome = validate_frame(broken, spec, checks="rows")

        assert_fails(
            outcome,
            "expect_column_values_to_be_between(column=hour, 12 unexpected",
            "expect_compound_columns_to_be_unique(column=carrier,flight,origin,time_hour",
        )
        assert [f["expectation"] for f in outcome.failures] == [
            "expect_column_values_to_be_between",
            "expect_compound_columns_to_be_unique",
        ]

    def test_rejected_frame_names_the_suite(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        doubled = pd.concat([frame, frame[["temp"]]], axis=1)

        outcome = validate_frame(doubled, spec, checks="rows")

        assert_fails(outcome, "before Great Expectations ran")
        assert outcome.result["suite_name"] == "flight_delay.schema.rows"

    def test_unknown_checks_raise(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        with pytest.raises(ValueError, match="checks must be one of"):
            validate_frame(frame, spec, checks="table")  # type: ignore[arg-type]


class TestFramesGXCannotTake:
    def test_duplicate_column_names(self, spec: ModelSpec, frame: pd.DataFrame) -> None:
        doubled = pd.concat([frame, frame[["temp"]]], axis=1)

        outcome = validate_frame(doubled, spec)

        assert_fails(outcome, "column 'temp' appears 2 times", "before Great Expectations ran")
        assert outcome.failures == [
            {
                "expectation": "column_names_are_unique",
                "column": "temp",
                "detail": "column 'temp' appears 2 times",
            }
        ]
        assert outcome.result["synthetic"] is True
        assert_json(outcome)

    @pytest.mark.parametrize(
        "rename",
        [
            pytest.param(lambda f: f.assign(**{"0": 1}).rename(columns={"0": 0}), id="int-name"),
            pytest.param(lambda f: f.rename(columns={"temp": ("temp", "c")}), id="tuple-name"),
            pytest.param(
                lambda f: f.set_axis(pd.MultiIndex.from_product([["a"], list(f.columns)]), axis=1),
                id="multiindex",
            ),
        ],
    )
    def test_non_string_column_names(
        self, spec: ModelSpec, frame: pd.DataFrame, rename: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> None:
        outcome = validate_frame(rename(frame), spec)

        assert_fails(outcome, "before Great Expectations ran")
        assert any(word in outcome.summary for word in ("non-string column names", "multi-level"))
        assert_json(outcome)

    @pytest.mark.parametrize(
        "mangle",
        [
            pytest.param(lambda f: f.assign(notes="x" * 5_000_000), id="huge-strings-extra"),
            pytest.param(
                lambda f: f.assign(carrier=f.carrier.where(f.index > 50, "Q" * 2_000_000)),
                id="huge-strings-unseen",
            ),
            pytest.param(lambda f: f.assign(origin=[["JFK"]] * len(f)), id="unhashable-values"),
            pytest.param(lambda f: f.assign(carrier=None), id="all-none-object"),
            pytest.param(
                lambda f: f.assign(distance=[1.0, "a", None, b"x", {"k": 1}] * (len(f) // 5)),
                id="mixed-objects-in-numeric",
            ),
            pytest.param(lambda f: f.assign(time_hour="2013-01-01"), id="datetime-as-string"),
            pytest.param(lambda f: f.assign(delayed=np.nan), id="all-nan-target"),
            pytest.param(lambda f: f.iloc[:, :0], id="no-columns"),
            pytest.param(
                lambda f: f.assign(**{"": 1, " ": 2, "a.b": 3, "$x": 4}), id="odd-extra-names"
            ),
        ],
    )
    def test_weird_frames_fail_without_raising(
        self, spec: ModelSpec, frame: pd.DataFrame, mangle: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> None:
        outcome = validate_frame(mangle(frame), spec)

        as_dict = assert_json(outcome)
        assert len(json.dumps(as_dict)) < 1_000_000  # megabyte cells are clipped
        assert len(outcome.summary) < 5_000
        if outcome.success:  # only the odd-but-legal extra columns may pass, listed
            assert outcome.extra_columns
        else:
            assert outcome.failures

    @pytest.mark.parametrize(
        "mangle",
        [
            pytest.param(lambda f: f.assign(carrier="\ud800"), id="lone-surrogate"),
            pytest.param(
                lambda f: f.assign(carrier=[Unprintable()] * len(f)), id="unprintable-objects"
            ),
        ],
    )
    def test_frame_gx_cannot_run_on(
        self, spec: ModelSpec, frame: pd.DataFrame, mangle: Callable[[pd.DataFrame], pd.DataFrame]
    ) -> None:
        # GX fingerprints the whole batch (hashing every cell) before any expectation runs.
        outcome = validate_frame(mangle(frame), spec)

        assert_fails(outcome, "Great Expectations could not run on the frame")
        assert outcome.failures[0]["expectation"] == "great_expectations_run"
        assert outcome.result["synthetic"] is True
        assert_json(outcome)

    def test_not_a_dataframe_raises(self, spec: ModelSpec) -> None:
        with pytest.raises(TypeError, match="expects a pandas DataFrame"):
            validate_frame({"carrier": ["AA"]}, spec)  # type: ignore[arg-type]


class TestDataDocs:
    def test_data_docs_written(self, spec: ModelSpec, frame: pd.DataFrame, tmp_path) -> None:
        docs = tmp_path / "docs" / "flight_delay"
        frame.loc[frame.index[:20], "carrier"] = "ZZ"

        outcome = validate_frame(frame, spec, docs_dir=docs)

        assert outcome.success is False
        assert outcome.warnings == []
        assert (docs / "index.html").is_file()
        pages = [p.name for p in (docs / "validations").rglob("*.html")]
        assert pages, "no validation page rendered"
        assert list((docs / "expectations").rglob("*.html")), "no expectation suite page rendered"
        for page in docs.rglob("*.html"):  # everything a page loads is inside it (no CDN)
            html = page.read_text(encoding="utf-8")
            assert remote_loads(html) == [], page
            assert "bootstrapTable" in html and "jQuery" in html, page

    def test_unknown_cdn_asset_is_named(self) -> None:
        page = '<script src="https://cdn.example.com/new-lib@2.js"></script>'
        with pytest.raises(OfflineDocsError, match="new-lib@2"):
            inline_assets(page)

    def test_data_docs_show_the_latest_run(
        self, spec: ModelSpec, frame: pd.DataFrame, tmp_path
    ) -> None:
        # Each call has its own ephemeral context, and GX's site builder removes pages of
        # validations its stores do not know: a docs folder shows one run (use one per run).
        validate_frame(frame, spec, docs_dir=tmp_path)
        validate_frame(frame.head(10), spec, docs_dir=tmp_path)

        (page,) = (tmp_path / "validations").rglob("*.html")
        assert (tmp_path / "index.html").is_file()
        assert page.stat().st_size > 0

    def test_docs_failure_is_a_warning(
        self, spec: ModelSpec, frame: pd.DataFrame, tmp_path
    ) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")

        outcome = validate_frame(frame, spec, docs_dir=blocker / "docs")

        assert outcome.success is True
        assert len(outcome.warnings) == 1
        assert outcome.warnings[0].startswith("data docs not built")
