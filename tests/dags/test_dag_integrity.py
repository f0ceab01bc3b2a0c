"""DagBag integrity and parse-time hygiene for every file in dags/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "sklearn", "mlflow", "great_expectations", "evidently")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


class TestDagBag:
    def test_no_import_errors(self, dagbag):
        assert dagbag.import_errors == {}

    def test_one_retrain_dag_per_spec(self, dagbag):
        from modelkeeper.contracts.spec import load_specs

        specs, errors = load_specs()
        assert specs and errors == []
        for spec in specs:
            assert spec.dag_id in dagbag.dags

    def test_expected_dags(self, dagbag):
        expected = {
            "retrain_flight_delay",
            "modelkeeper_demo_feed",
            "modelkeeper_rollback",
            "modelkeeper_reconcile",
        }
        assert expected <= set(dagbag.dags)

    @pytest.mark.parametrize("model", ["us_births", "mpls_stops"])
    def test_a_model_without_a_feed_waits_for_a_person(self, dagbag, model):
        """The backtest-only demos: no schedule, no landing Asset, no scoring or
        monitoring; under `make run` the retrain DAG sits idle (only its own alarm Asset,
        which nothing updates without a monitor DAG, could start it) instead of failing
        on no data."""
        timetable = dagbag.dags[f"retrain_{model}"].timetable
        # Assets alone (a cron as well would make it an AssetOrTimeSchedule).
        assert type(timetable).__name__ == "AssetTriggeredTimetable"
        names = [a.name for a in timetable.asset_condition.objects]
        assert names == [f"modelkeeper/{model}/alarm"]
        assert not {f"score_{model}", f"monitor_{model}"} & set(dagbag.dags)

    @pytest.mark.parametrize("attr", ["tags", "doc_md"])
    def test_every_dag_documented_and_tagged(self, dagbag, attr):
        for dag_id, dag in dagbag.dags.items():
            assert getattr(dag, attr), f"{dag_id} has no {attr}"

    def test_every_task_retries_except_approval(self, dagbag):
        # Transient errors retry everywhere; permanent ones fail at once whatever the task's
        # retries (modelkeeper_airflow.errors). A person's answer is never re-asked.
        for dag_id, dag in dagbag.dags.items():
            for task in dag.tasks:
                if task.task_id == "approve":
                    assert task.retries == 0, f"{dag_id}.approve would ask again"
                else:
                    assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


class TestRetrainDag:
    @pytest.fixture
    def dag(self, dagbag):
        return dagbag.dags["retrain_flight_delay"]

    def test_flow(self, dag):
        order = [
            "collect",
            "validate",
            "monitor",
            "decide",
            "train",
            "evaluate",
            "approve",
            "promote",
            "finish",
        ]
        for up, down in zip(order, order[1:], strict=False):
            assert down in dag.get_task(up).downstream_task_ids
        assert "finish" in dag.get_task("decide").downstream_task_ids

    def test_transient_failures_retry_with_backoff(self, dag, monkeypatch):
        from datetime import timedelta

        from modelkeeper_airflow.factory import _retry_delay

        train = dag.get_task("train")
        assert train.retries == 2 and train.retry_exponential_backoff
        assert train.retry_delay == timedelta(seconds=20)
        monkeypatch.setenv("MODELKEEPER_RETRY_DELAY_SECONDS", "5")
        assert _retry_delay() == timedelta(seconds=5)
        for bad in ("0", "soon"):
            monkeypatch.setenv("MODELKEEPER_RETRY_DELAY_SECONDS", bad)
            with pytest.raises(ValueError, match="MODELKEEPER_RETRY_DELAY_SECONDS must be"):
                _retry_delay()

    def test_docs_owner_and_schedule(self, dag):
        assert "ml-platform@example.com" in dag.doc_md
        assert dag.owner == "ml-platform@example.com"
        assert "nycflights_landing" in repr(dag.timetable)
        assert dag.catchup is False and dag.max_active_runs == 1

    def test_trigger_form_params(self, dag):
        params = dag.params
        assert (
            params["force_retrain"] is False
            and params["dry_run"] is False
            and params["reason"] is None
        )
        assert params.get_param("force_retrain").schema["type"] == "boolean"
        assert set(params.get_param("promotion_mode").schema["enum"]) == {
            "spec",
            "auto",
            "dry_run",
            "approval",
        }

    def test_failed_runs_close_their_mlflow_run(self, dag):
        assert dag.on_failure_callback, "a failed run would leave its MLflow run RUNNING"

    def test_promotion_serialised(self, dag):
        assert dag.get_task("promote").pool == "modelkeeper_promotion"

    def test_promote_runs_with_or_without_approval(self, dag):
        promote = dag.get_task("promote")
        assert promote.upstream_task_ids == {"evaluate", "approve"}
        assert promote.trigger_rule == "none_failed_min_one_success"

    def test_a_skipped_promote_still_finishes_the_run(self, dag):
        # promote ends SKIPPED when it moves nothing: finish must not be skipped with it
        # (all_success would), and a skip counts as success for the DAG run.
        assert dag.get_task("finish").trigger_rule == "none_failed_min_one_success"
        assert "finish" in dag.get_task("promote").downstream_task_ids

    @pytest.mark.parametrize(
        ("task_id", "names"),
        [
            pytest.param("collect", {"MLflow run"}, id="collect"),
            pytest.param("validate", {"MLflow run", "Data Docs"}, id="validate"),
            pytest.param("monitor", {"MLflow run", "Drift report"}, id="monitor"),
            pytest.param("train", {"MLflow run", "Model version", "Data Docs"}, id="train"),
            pytest.param("evaluate", {"MLflow run", "Model card"}, id="evaluate"),
            pytest.param("promote", {"MLflow run", "Model version"}, id="promote"),
            pytest.param("finish", {"MLflow run"}, id="finish"),
        ],
    )
    def test_extra_links_survive_serialisation(self, dag, task_id, names):
        """The API server knows a task's links only from the serialized DAG, as
        {name: xcom key}; no plugin registration is involved."""
        from airflow.serialization.serialized_objects import DagSerialization

        serialized = DagSerialization.to_dict(dag)
        [task] = [
            t["__var"] for t in serialized["dag"]["tasks"] if t["__var"]["task_id"] == task_id
        ]
        links = task.get("_operator_extra_links") or {}
        assert set(links) == names, links
        assert all(key.startswith("_link_") for key in links.values())

    def test_no_template_uses_logical_date(self, dag):
        for task in dag.tasks:
            for field in task.template_fields:
                value = str(getattr(task, field, ""))
                assert (
                    "ds" not in value.replace("params", "").split() and "logical_date" not in value
                )


class TestRollbackDag:
    @pytest.fixture
    def params(self, dagbag):
        return dagbag.dags["modelkeeper_rollback"].params

    def test_rollback_shares_the_promotion_pool(self, dagbag):
        assert (
            dagbag.dags["modelkeeper_rollback"].get_task("rollback").pool == "modelkeeper_promotion"
        )

    @pytest.mark.parametrize(
        ("conf", "ok"),
        [
            pytest.param(
                {"model": "flight_delay", "target_version": "previous", "reason": "bad canary"},
                True,
                id="previous",
            ),
            pytest.param(
                {"model": "flight_delay", "target_version": "7", "reason": "pin v7"},
                True,
                id="number",
            ),
            pytest.param(
                {"model": "flight_delay", "target_version": "latest", "reason": "x y z"},
                False,
                id="bad-target",
            ),
            pytest.param(
                {"model": "nope", "target_version": "previous", "reason": "x y z"},
                False,
                id="unknown-model",
            ),
            pytest.param(
                {"model": "flight_delay", "target_version": "previous", "reason": None},
                True,
                id="no-reason",
            ),
            pytest.param(
                {"model": "flight_delay", "target_version": "previous", "reason": "x"},
                False,
                id="too-short-reason",
            ),
            # issue 23 item 14: no model is pre-selected; a run must name one
            pytest.param({"target_version": "previous", "reason": "x y z"}, False, id="no-model"),
        ],
    )
    def test_params_schema(self, params, conf, ok):
        import copy

        from airflow.sdk.exceptions import ParamValidationError

        def apply():
            resolved = copy.deepcopy(params)
            for key, value in conf.items():
                resolved[key] = value  # validated as the trigger form / REST API would
            resolved.validate()

        if ok:
            apply()
        else:
            with pytest.raises(ParamValidationError, match="Invalid input for param"):
                apply()


class TestTriggerForms:
    """The UI's trigger form opens with Trigger enabled only if every Param's default is
    one it accepts: it treats "" (and null, unless the type allows it) as a missing value
    (tests/browser/test_trigger_form.py checks the rendered form itself)."""

    def test_every_default_is_valid_and_present(self, dagbag):
        import copy

        from tests.helpers import CHOSEN_ON_PURPOSE

        for dag_id, dag in dagbag.dags.items():
            params = copy.deepcopy(dag.params)
            chosen = CHOSEN_ON_PURPOSE.get(dag_id)
            if chosen:  # no default on purpose: required, and nothing pre-selected
                param = params.get_param(chosen)
                assert param.value is None and "null" not in str(param.schema.get("type"))
                params[chosen] = param.schema["enum"][0]  # as a person would pick one
            params.validate()  # raises on a default its own schema rejects
            for name in params:
                param = params.get_param(name)
                kinds = param.schema.get("type")
                kinds = kinds if isinstance(kinds, list) else [kinds]
                if param.value in ("", None):
                    assert "null" in kinds, f"{dag_id}.{name}: empty default, type {kinds}"


def test_importing_dags_loads_no_heavy_library():
    code = (
        "import runpy, sys, glob\n"
        "sys.path[:0] = ['dags', 'plugins']\n"
        "for p in sorted(glob.glob('dags/*.py')): runpy.run_path(p)\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "HEAVY=\n" in out.stdout + "\n", f"dags/ imported heavy modules: {out.stdout[-500:]}"


class TestSpecIsolation:
    """One broken spec is shown in the UI's import errors; every other model keeps its DAGs."""

    @pytest.fixture
    def bag(self, tmp_path, monkeypatch):
        import yaml
        from airflow.dag_processing.dagbag import DagBag

        from modelkeeper.contracts.settings import DEFAULT_SPEC_DIR

        specs = tmp_path / "specs"
        specs.mkdir()
        raw = yaml.safe_load((DEFAULT_SPEC_DIR / "flight_delay.yaml").read_text())
        (specs / "flight_delay.yaml").write_text(yaml.safe_dump(raw))
        (specs / "second.yaml").write_text(yaml.safe_dump({**raw, "name": "second"}))
        broken = {**raw, "name": "broken", "metrics": {"primary": "roc_aux"}}
        (specs / "broken.yaml").write_text(yaml.safe_dump(broken))
        monkeypatch.setenv("MODELKEEPER_SPEC_DIR", str(specs))
        return DagBag(dag_folder=str(ROOT / "dags"))

    def test_the_broken_spec_is_an_import_error_naming_file_and_field(self, bag):
        assert [Path(p).name for p in bag.import_errors] == ["modelkeeper_spec_errors.py"]
        [message] = bag.import_errors.values()
        assert "broken.yaml" in message and "metrics.primary" in message and "roc_aux" in message

    def test_the_other_models_rollback_and_reconcile_still_load(self, bag):
        assert {"retrain_flight_delay", "retrain_second", "modelkeeper_rollback"} <= set(bag.dags)
        assert "retrain_broken" not in bag.dags
        reconcile = bag.dags["modelkeeper_reconcile"]
        assert {t.task_id for t in reconcile.tasks} == {
            "reconcile_flight_delay",
            "reconcile_second",
        }
        rollback = bag.dags["modelkeeper_rollback"].params.get_param("model")
        assert rollback.schema["enum"] == ["flight_delay", "second"]


def test_a_task_process_builds_only_its_own_dag(tmp_path, monkeypatch):
    """Airflow's parsing context names the DAG a task process needs: the factory file
    builds that one, not one per spec."""
    import runpy

    import yaml

    from modelkeeper.contracts.settings import DEFAULT_SPEC_DIR

    raw = yaml.safe_load((DEFAULT_SPEC_DIR / "flight_delay.yaml").read_text())
    for i in range(5):
        (tmp_path / f"m{i}.yaml").write_text(yaml.safe_dump({**raw, "name": f"m{i}"}))
    monkeypatch.setenv("MODELKEEPER_SPEC_DIR", str(tmp_path))
    built = runpy.run_path(str(ROOT / "dags" / "modelkeeper_retrain.py"))
    assert {k for k in built if k.startswith("retrain_")} == {f"retrain_m{i}" for i in range(5)}
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "retrain_m3")
    built = runpy.run_path(str(ROOT / "dags" / "modelkeeper_retrain.py"))
    assert {k for k in built if k.startswith("retrain_")} == {"retrain_m3"}
