"""The bad-input catalogue (RELIABILITY.md): every malformed batch stops at validation,
or at collection when the file cannot be read, with an error naming the problem.

Each case lands a real file, runs the real collect and validate operators and checks:
the exception (AirflowFailException: Airflow does not retry it), the batch and its
report in quarantine, nothing added to the training pool, no new model version, and
the champion unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException

from modelkeeper.contracts import lineage as L
from modelkeeper_airflow.operators import CollectOperator
from tests.helpers import accepted_rows, retrain_tasks, run_operator

MODEL = "flight_delay"


@pytest.fixture(scope="module")
def week():
    from modelkeeper.demo import load_flights, week_frame

    return week_frame(load_flights(), 3).reset_index(drop=True)


@pytest.fixture
def champion(mlflow_store):
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"hour": np.arange(40) % 24, "distance": np.arange(40) * 10.0})
    run = mlflow_store.ensure_run(MODEL, "manual__champ", {})
    uri = mlflow_store.log_model(run, LogisticRegression().fit(X, np.arange(40) % 2), X.head(2))
    version = mlflow_store.register(MODEL, uri, run, {"validation": "passed"}).version
    mlflow_store.move_champion(MODEL, version, expected=None)
    return version


def missing_column(df):
    return df.drop(columns=["temp"])


def strings_in_numeric(df):
    # Parquet keeps one type per column: the producer wrote distances as text.
    df = df.astype({"distance": str})
    df.loc[df.index[:50], "distance"] = "far"
    return df


def mixed_type_categorical(df):
    # Written as CSV (below): numbers and codes mixed in one column, as spreadsheets do.
    df = df.astype({"carrier": object})
    df.loc[df.index[::3], "carrier"] = 7
    return df


def all_nan(df):
    return df.assign(temp=np.nan)


def all_inf(df):
    return df.assign(wind_speed=np.inf)


def out_of_range(df):
    df = df.copy()
    df.loc[df.index[:100], "hour"] = 30
    return df


def unseen_categories(df):
    df = df.copy()
    df.loc[df.index[: len(df) // 5], "carrier"] = "ZZ"
    return df


def duplicated_rows(df):
    return pd.concat([df, df.head(200)], ignore_index=True)


def high_cardinality_strings(df):
    return df.assign(origin=[f"airport-{i}" for i in range(len(df))])


def single_class_labels(df):
    return df.assign(delayed=0)


def header_only(df):
    return df.head(0)


CASES = [
    pytest.param(missing_column, "expect_column_to_exist(column=temp)", id="missing-column"),
    pytest.param(strings_in_numeric, "column=distance", id="strings-in-numeric"),
    pytest.param(
        mixed_type_categorical,
        "expect_column_values_to_be_in_set(column=carrier",
        id="mixed-type-categorical",
    ),
    pytest.param(all_nan, "expect_column_values_to_not_be_null(column=temp", id="all-nan"),
    pytest.param(all_inf, "column=wind_speed", id="all-inf"),
    pytest.param(out_of_range, "expect_column_values_to_be_between(column=hour", id="out-of-range"),
    pytest.param(
        unseen_categories,
        "expect_column_values_to_be_in_set(column=carrier",
        id="unseen-categories",
    ),
    pytest.param(duplicated_rows, "expect_compound_columns_to_be_unique", id="duplicates"),
    pytest.param(
        high_cardinality_strings,
        "expect_column_values_to_be_in_set(column=origin",
        id="high-cardinality",
    ),
    pytest.param(single_class_labels, "column=delayed", id="single-class-label"),
    pytest.param(header_only, "has no rows", id="empty-header-only"),
]


def _assert_nothing_learned(mlflow_store, storage, champion, run_id):
    assert mlflow_store.alias(MODEL).version == champion
    assert len(mlflow_store.client.search_model_versions(f"name = '{MODEL}'")) == 1
    assert accepted_rows(storage, MODEL, run_id) == 0


class TestMalformedBatches:
    @pytest.mark.parametrize(("mutate", "named"), CASES)
    def test_stops_at_validation_and_quarantines(
        self, mutate, named, week, storage, mlflow_store, champion, monkeypatch, tmp_path
    ):
        run_id = f"manual__{mutate.__name__}"
        bad = mutate(week.copy())
        _mk(storage)
        if mutate is mixed_type_categorical:
            _csv_spec(monkeypatch, tmp_path)
            bad.to_csv(storage.landing_dir() / "flights" / "bad.csv", index=False)
        else:
            bad.to_parquet(storage.landing_dir() / "flights" / "bad.parquet", index=False)
        xcoms: dict = {}
        run_operator(CollectOperator(task_id="collect", model=MODEL), run_id, xcoms)
        # An empty batch is an alert for a scheduled run (a person's manual run goes on).
        run_type = "scheduled" if mutate is header_only else "manual"
        with pytest.raises(AirflowFailException, match="validation failed") as failed:
            run_operator(retrain_tasks(MODEL)["validate"], run_id, xcoms, run_type=run_type)
        assert named in str(failed.value)
        name = "bad.csv" if mutate is mixed_type_categorical else "bad.parquet"
        quarantine = storage.quarantine_dir(MODEL, run_id) / name
        assert len(pd.read_parquet(quarantine / "batch.parquet")) == len(bad)
        assert named in (quarantine / "REASON.txt").read_text()
        assert (quarantine / "validation.json").stat().st_size > 50
        # A rejected batch links its Data Docs too (where GX got far enough to build them).
        docs = storage.report_dir(MODEL, run_id) / L.REPORT_DATA_DOCS
        assert (("validate", L.LINK_DATA_DOCS) in xcoms) == docs.is_file()
        _assert_nothing_learned(mlflow_store, storage, champion, run_id)

    def test_extra_column_is_allowed_and_named_by_default(
        self, week, storage, mlflow_store, champion
    ):
        _mk(storage)
        week.assign(gate="B12").to_parquet(
            storage.landing_dir() / "flights" / "extra.parquet", index=False
        )
        xcoms: dict = {}
        run_operator(CollectOperator(task_id="collect", model=MODEL), "manual__extra", xcoms)
        evidence = run_operator(retrain_tasks(MODEL)["validate"], "manual__extra", xcoms)
        # Allowed by `schema.extra_columns: warn`: named in the result (and once at info in
        # the log), not a warning (issue 23 item 15: a green run reads green).
        assert evidence["success"] and evidence["extra_columns"] == ["gate"]
        assert not any("gate" in w for w in evidence["warnings"])
        # The Data Docs extra link: the UI plugin's page of the file validate just built.
        assert xcoms[("validate", L.LINK_DATA_DOCS)] == (
            f"/modelkeeper/reports/{MODEL}/manual__extra/{L.REPORT_DATA_DOCS}"
        )
        assert (storage.report_dir(MODEL, "manual__extra") / L.REPORT_DATA_DOCS).is_file()


class TestUnreadableFiles:
    @pytest.mark.parametrize(
        ("name", "payload", "named"),
        [
            pytest.param(
                "cut.parquet", "truncated", "cannot read parquet file", id="truncated-parquet"
            ),
            pytest.param(
                "junk.parquet", "garbage", "cannot read parquet file", id="corrupted-parquet"
            ),
        ],
    )
    def test_quarantined_once_and_the_run_fails(
        self, name, payload, named, week, storage, mlflow_store, champion, tmp_path
    ):
        _mk(storage)
        good = tmp_path / "good.parquet"
        week.to_parquet(good, index=False)
        data = good.read_bytes()
        target = storage.landing_dir() / "flights" / name
        target.write_bytes(
            data[: len(data) // 2] if payload == "truncated" else b"PAR1 not really parquet"
        )
        _collect_and_validate("manual__unreadable", match=f"{named} .*{name}")
        quarantine = storage.quarantine_dir(MODEL, "manual__unreadable") / name
        assert (quarantine / name).read_bytes() == target.read_bytes()
        assert name in (quarantine / "REASON.txt").read_text()
        _assert_nothing_learned(mlflow_store, storage, champion, "manual__unreadable")
        # Recorded: the next run skips it with a warning and quarantines nothing again.
        batch = run_operator(CollectOperator(task_id="collect", model=MODEL), "manual__next", {})
        assert batch["files"] == [] and name in batch["skipped"][0]

    def test_invalid_utf8_csv(self, week, storage, mlflow_store, champion, tmp_path, monkeypatch):
        _csv_spec(monkeypatch, tmp_path)
        _mk(storage)
        target = storage.landing_dir() / "flights" / "latin1.csv"
        target.write_bytes(
            week.head(600).to_csv(index=False).replace("EWR", "EWR\xe9").encode("latin-1")
        )
        _collect_and_validate(
            "manual__latin1", match="cannot read csv file .*latin1.csv: UnicodeDecodeError"
        )
        folder = storage.quarantine_dir(MODEL, "manual__latin1") / "latin1.csv"
        assert (folder / "latin1.csv").exists()
        _assert_nothing_learned(mlflow_store, storage, champion, "manual__latin1")


class TestBypass:
    def test_unknown_trigger_conf_key_rejected_before_reading(self, storage, champion):
        params = {"force_retrain": False, "reason": "", "dry_run": False, "promotion_mode": "spec"}
        with pytest.raises(
            AirflowFailException, match=r"unknown trigger conf keys \['skip_validation'\]"
        ):
            run_operator(
                CollectOperator(task_id="collect", model=MODEL),
                "manual__bypass",
                {},
                params=params,
                conf={"skip_validation": True},
            )
        assert not storage.snapshot_dir(MODEL, "manual__bypass").exists()


def _collect_and_validate(run_id: str, match: str) -> None:
    xcoms: dict = {}
    run_operator(CollectOperator(task_id="collect", model=MODEL), run_id, xcoms)
    with pytest.raises(AirflowFailException, match=match):
        run_operator(retrain_tasks(MODEL)["validate"], run_id, xcoms)


def _mk(storage) -> None:
    (storage.landing_dir() / "flights").mkdir(parents=True, exist_ok=True)


def _csv_spec(monkeypatch, tmp_path) -> None:
    """The demo spec, reading CSV files instead of Parquet."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((root / "include/models/flight_delay.yaml").read_text())
    raw["source"] = {"kind": "files", "path": "landing/flights/*.csv", "format": "csv"}
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "flight_delay.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("MODELKEEPER_SPEC_DIR", str(tmp_path / "specs"))
