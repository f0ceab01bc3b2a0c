"""Model spec loading and validation: real YAML files written to tmp_path, no mocks.

Bad specs start from the demo spec's own YAML, change one thing, and must fail with a
SpecError whose message names the field (so the owner can fix the file).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelkeeper.contracts.settings import DEFAULT_SPEC_DIR
from modelkeeper.contracts.spec import (
    Estimator,
    ModelSpec,
    SpecError,
    get_spec,
    load_spec,
    load_specs,
    spec_dir,
    valid_specs,
)

DEMO_YAML = DEFAULT_SPEC_DIR / "flight_delay.yaml"


@pytest.fixture
def raw() -> dict[str, Any]:
    """The demo spec as a plain dict, safe to mutate."""
    return copy.deepcopy(yaml.safe_load(DEMO_YAML.read_text(encoding="utf-8")))


def write(directory: Path, data: Any, name: str = "flight_delay") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def column_index(raw: dict, name: str) -> int:
    return next(i for i, c in enumerate(raw["schema"]["columns"]) if c["name"] == name)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation that sets raw[a][b]... = value for path 'a.b...'."""

    def mutate(raw: dict) -> None:
        *parents, leaf = path.split(".")
        node = raw
        for key in parents:
            node = node[key]
        node[leaf] = value

    return mutate


def _rename_features(raw: dict) -> None:
    raw["featurs"] = raw.pop("features")


def _promotion_typo(raw: dict) -> None:
    raw["promotion"]["min_eval_row"] = raw["promotion"].pop("min_eval_rows")


def _undeclared_feature(raw: dict) -> None:
    raw["features"]["categorical"].append("dest")


def _target_is_feature(raw: dict) -> None:
    raw["features"]["numeric"].append("delayed")


def _min_above_max(raw: dict) -> None:
    raw["schema"]["columns"][column_index(raw, "flight")]["min"] = 10_000


def _allowed_on_float(raw: dict) -> None:
    raw["schema"]["columns"][column_index(raw, "distance")]["allowed"] = ["short", "long"]


def _duplicate_column(raw: dict) -> None:
    raw["schema"]["columns"].append({"name": "carrier", "dtype": "category"})


def _numeric_and_categorical(raw: dict) -> None:
    raw["features"]["categorical"].append("hour")


def _no_features(raw: dict) -> None:
    raw["features"] = {"numeric": [], "categorical": []}


def _sql_without_query(raw: dict) -> None:
    raw["source"] = {"kind": "sql", "conn_id": "warehouse"}


BAD_SPECS = [
    pytest.param(
        _set("promotion.min_eval_rows", 0),
        r"promotion\.min_eval_rows: Input should be greater than or equal to 1",
        id="min-eval-rows-zero",
    ),
    # A discriminated union reports at the union's location, naming the tag key.
    pytest.param(
        _set("source.kind", "s3"),
        r"source: Input tag 's3' found using 'kind' does not match any of the expected tags: 'files', 'sql'",
        id="source-kind-unknown",
    ),
    pytest.param(
        _sql_without_query, r"source\.sql\.query: Field required", id="sql-source-without-query"
    ),
    pytest.param(
        _set("estimator.class_path", "HistGradientBoostingClassifier"),
        r"estimator\.class_path: Value error, 'HistGradientBoostingClassifier' is not a dotted import path",
        id="class-path-not-dotted",
    ),
    pytest.param(
        _rename_features, r"featurs: Extra inputs are not permitted", id="typo-top-level-key"
    ),
    pytest.param(
        _promotion_typo,
        r"promotion\.min_eval_row: Extra inputs are not permitted",
        id="typo-nested-key",
    ),
    pytest.param(
        _undeclared_feature,
        r"not declared in schema\.columns: \['dest'\]",
        id="feature-not-declared",
    ),
    pytest.param(
        _set("promotion.slices", ["origin", "dest"]),
        r"not declared in schema\.columns: \['dest'\]",
        id="slice-not-declared",
    ),
    pytest.param(
        _set("target.column", "arr_delay"),
        r"not declared in schema\.columns: \['arr_delay'\]",
        id="target-not-declared",
    ),
    pytest.param(_target_is_feature, r"target 'delayed' is also a feature", id="target-is-feature"),
    pytest.param(
        _numeric_and_categorical,
        r"features both numeric and categorical: \['hour'\]",
        id="feature-in-both-lists",
    ),
    pytest.param(
        _no_features, r"at least one numeric or categorical feature is required", id="no-features"
    ),
    pytest.param(
        _min_above_max,
        r"schema\.columns\.2: Value error, column 'flight': min 10000\.0 > max 9999\.0",
        id="min-above-max",
    ),
    pytest.param(
        _allowed_on_float,
        r"schema\.columns\.6: Value error, column 'distance': `allowed` only applies to dtype category",
        id="allowed-on-float",
    ),
    pytest.param(
        _duplicate_column,
        r"schema\.columns: Value error, duplicate column names: \['carrier'\]",
        id="duplicate-column",
    ),
    pytest.param(
        _set("target.task", "ranking"),
        r"target\.task: Input should be 'classification' or 'regression'",
        id="unknown-task",
    ),
    pytest.param(
        _set("promotion.mode", "yolo"),
        r"promotion\.mode: Input should be 'auto', 'dry_run' or 'approval'",
        id="unknown-promotion-mode",
    ),
    pytest.param(
        _set("drift.share_threshold", 0),
        r"drift\.share_threshold: Input should be greater than 0",
        id="drift-threshold-zero",
    ),
    pytest.param(
        _set("name", "Flight-Delay"), r"name: String should match pattern", id="name-pattern"
    ),
]


def _drift_typo(raw: dict) -> None:
    raw["drift"]["columns"]["carier"] = raw["drift"]["columns"].pop("carrier")


# Fields that name columns or metrics: checked at load time, not when a run trips on them.
UNCHECKED_SPECS = [
    pytest.param(
        _set("schema.unique_key", ["carrier", "flight", "origin", "time_hr"]),
        r"(?s)unique_key.*time_hr",
        id="unique-key-not-declared",
    ),
    pytest.param(
        _drift_typo,
        r"(?s)drift.*carier",
        id="drift-column-not-declared",
    ),
    pytest.param(
        _set("metrics.primary", "auc"),
        r"metrics\.primary",
        id="unknown-primary-metric",
    ),
    pytest.param(
        _set("metrics.guardrails", [{"name": "logloss", "tolerance": 0.02}]),
        r"metrics\.guardrails",
        id="unknown-guardrail-metric",
    ),
]


class TestDemoSpec:
    def test_loads_with_its_values(self, spec):
        assert spec.name == "flight_delay"
        assert spec.dag_id == "retrain_flight_delay"
        assert spec.registered_model_name == "flight_delay"
        assert spec.source.kind == "files"
        assert spec.source.path == "landing/flights/*.parquet"
        assert spec.data_schema.timestamp_column == "time_hour"
        assert spec.data_schema.unique_key == ["carrier", "flight", "origin", "time_hour"]
        assert spec.features.all == [
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
        assert spec.target.column == "delayed"
        assert spec.metrics.primary == "roc_auc"
        assert [g.name for g in spec.metrics.guardrails] == ["log_loss", "average_precision"]
        assert spec.promotion.slices == ["origin", "carrier"]
        assert spec.window.holdout_days == 7

    def test_column_lookup(self, spec):
        assert spec.data_schema.column("origin").allowed == ["EWR", "JFK", "LGA"]
        with pytest.raises(KeyError, match="dest"):
            spec.data_schema.column("dest")

    def test_is_immutable(self, spec):
        with pytest.raises(ValueError, match="frozen"):
            spec.owner = "someone-else@example.com"

    def test_valid_specs_finds_it(self):
        assert "flight_delay" in [s.name for s in valid_specs()]

    def test_get_spec_unknown_model(self):
        with pytest.raises(SpecError, match=r"no spec for model 'nope' in "):
            get_spec("nope")


class TestBadSpecs:
    @pytest.mark.parametrize(("mutate", "message"), BAD_SPECS)
    def test_names_the_field(self, tmp_path, raw, mutate, message):
        mutate(raw)
        path = write(tmp_path, raw)
        with pytest.raises(SpecError, match=message) as info:
            load_spec(path)
        assert str(info.value).startswith(f"{path}: invalid model spec:")

    @pytest.mark.parametrize(("mutate", "message"), UNCHECKED_SPECS)
    def test_unchecked_references(self, tmp_path, raw, mutate, message):
        mutate(raw)
        with pytest.raises(SpecError, match=message):
            load_spec(write(tmp_path, raw))

    def test_starting_point_is_valid(self, tmp_path, raw):
        # Guards the parametrized cases above: they fail because of their mutation only.
        assert load_spec(write(tmp_path, raw)).name == "flight_delay"

    def test_file_name_must_match_name(self, tmp_path, raw):
        path = write(tmp_path, raw, name="delays")
        with pytest.raises(
            SpecError, match=r"delays\.yaml: file name must match name 'flight_delay'"
        ):
            load_spec(path)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            pytest.param(
                "- name: flight_delay\n- owner: me\n",
                "a spec must be a YAML mapping, got list",
                id="list",
            ),
            pytest.param("just a string\n", "a spec must be a YAML mapping, got str", id="scalar"),
            pytest.param("", "a spec must be a YAML mapping, got NoneType", id="empty-file"),
        ],
    )
    def test_not_a_mapping(self, tmp_path, text, message):
        path = tmp_path / "flight_delay.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(SpecError, match=re.escape(message)):
            load_spec(path)

    def test_invalid_yaml(self, tmp_path):
        path = tmp_path / "flight_delay.yaml"
        path.write_text("name: flight_delay\nfeatures: {numeric: [hour\n", encoding="utf-8")
        with pytest.raises(SpecError, match=r"flight_delay\.yaml: cannot read spec: "):
            load_spec(path)

    def test_missing_file(self, tmp_path):
        with pytest.raises(SpecError, match=r"ghost\.yaml: cannot read spec: "):
            load_spec(tmp_path / "ghost.yaml")

    def test_one_bad_file_is_an_error_beside_the_good_specs(self, tmp_path, raw):
        write(tmp_path, raw)
        other = copy.deepcopy(raw)
        other["name"] = "other_model"
        other["promotion"]["min_eval_rows"] = 0
        write(tmp_path, other, name="other_model")
        good, [bad] = load_specs(tmp_path)
        assert [s.name for s in good] == ["flight_delay"]
        assert re.search(
            r"other_model\.yaml: invalid model spec:\n  promotion\.min_eval_rows", str(bad)
        ), bad


class TestSpecDir:
    def test_default_is_include_models(self):
        assert spec_dir() == DEFAULT_SPEC_DIR
        assert (spec_dir() / "flight_delay.yaml").is_file()

    def test_env_var_respected(self, tmp_path, monkeypatch, raw):
        raw["owner"] = "data-team@example.com"
        write(tmp_path, raw)
        raw["name"] = "second_model"
        write(tmp_path, raw, name="second_model")
        (tmp_path / "notes.txt").write_text("not a spec", encoding="utf-8")
        monkeypatch.setenv("MODELKEEPER_SPEC_DIR", str(tmp_path))

        assert spec_dir() == tmp_path
        assert [s.name for s in valid_specs()] == ["flight_delay", "second_model"]
        assert get_spec("flight_delay").owner == "data-team@example.com"

    def test_empty_directory(self, tmp_path, monkeypatch):
        monkeypatch.setenv("MODELKEEPER_SPEC_DIR", str(tmp_path))
        assert load_specs() == ([], [])
        with pytest.raises(SpecError, match="no spec for model 'flight_delay'"):
            get_spec("flight_delay")


class TestFingerprint:
    def test_stable_across_loads(self, spec, tmp_path, raw):
        again = load_spec(write(tmp_path, raw))
        assert again.fingerprint() == spec.fingerprint()
        assert re.fullmatch(r"[0-9a-f]{16}", spec.fingerprint())

    def test_explicit_default_is_same_content(self, spec, raw):
        raw["promotion"]["min_relative_improvement"] = 0.0  # the default, now spelled out
        assert ModelSpec.model_validate(raw).fingerprint() == spec.fingerprint()

    @pytest.mark.parametrize(
        "mutate",
        [
            pytest.param(_set("promotion.min_improvement", 0.01), id="promotion"),
            pytest.param(_set("estimator.params", {"max_iter": 151}), id="estimator-params"),
            pytest.param(_set("window.training_days", 28), id="window"),
            pytest.param(_set("description", "changed"), id="description"),
            pytest.param(_set("features.numeric", ["hour"]), id="features"),
        ],
    )
    def test_changes_with_a_field(self, spec, raw, mutate):
        mutate(raw)
        assert ModelSpec.model_validate(raw).fingerprint() != spec.fingerprint()

    def test_key_order_of_a_mapping_does_not_matter(self, spec, raw):
        raw["estimator"]["params"] = dict(reversed(raw["estimator"]["params"].items()))
        reordered = ModelSpec.model_validate(raw)
        assert reordered == spec  # pydantic (and Python dicts) call these equal...
        assert reordered.fingerprint() == spec.fingerprint()  # ...the fingerprint should agree


class TestEstimator:
    def test_load_class(self, spec):
        from sklearn.ensemble import HistGradientBoostingClassifier

        assert spec.estimator.load_class() is HistGradientBoostingClassifier

    @pytest.mark.parametrize(
        ("class_path", "cause"),
        [
            pytest.param(
                "sklearn.ensemble.NoSuchClassifier",
                "has no attribute 'NoSuchClassifier'",
                id="missing-class",
            ),
            pytest.param(
                "no_such_package.Model", "No module named 'no_such_package'", id="missing-module"
            ),
        ],
    )
    def test_load_class_bad_path(self, class_path, cause):
        estimator = Estimator(class_path=class_path)  # passes validation: it is dotted
        with pytest.raises(
            SpecError,
            match=rf"estimator\.class_path '{re.escape(class_path)}' cannot be imported: .*{cause}",
        ):
            estimator.load_class()
