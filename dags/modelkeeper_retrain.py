"""One `retrain_<model>` DAG per spec file in include/models/.

Adding a model is adding a YAML file. A broken spec is left out here and reported by
modelkeeper_spec_errors.py (shown in the Airflow UI's import errors), so the other
models' DAGs keep loading. A task process builds only its own DAG (Airflow's parsing
context names it), so a task costs the same with one spec or a hundred.
"""

from modelkeeper_airflow.factory import build_retrain_dag, specs_to_build

for _spec in specs_to_build("retrain_"):
    globals()[_spec.dag_id] = build_retrain_dag(_spec)
