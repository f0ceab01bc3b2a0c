"""One `retrain_<model>` DAG per spec file in include/models/.

Adding a model is adding a YAML file. A broken spec is left out here and reported by
modelkeeper_spec_errors.py (shown in the Airflow UI's import errors), so the other
models' DAGs keep loading. A task process builds only its own DAG (Airflow's parsing
context names it), so a task costs the same with one spec or a hundred.
"""

from airflow.sdk import get_parsing_context

from modelkeeper.spec import SpecError, get_spec, valid_specs
from modelkeeper_airflow.factory import build_retrain_dag

_wanted = get_parsing_context().dag_id
_specs = None
if _wanted and _wanted.startswith("retrain_"):
    try:
        _specs = [get_spec(_wanted.removeprefix("retrain_"))]
    except SpecError:
        _specs = []
for _spec in valid_specs() if _specs is None else _specs:
    globals()[_spec.dag_id] = build_retrain_dag(_spec)
