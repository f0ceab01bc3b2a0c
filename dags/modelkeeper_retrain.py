"""One `retrain_<model>` DAG per spec file in include/models/.

Adding a model is adding a YAML file; a broken spec fails this file's import with an
error naming the field, shown in the Airflow UI's import errors.
"""

from modelkeeper.spec import load_all
from modelkeeper_airflow.factory import build_retrain_dag

for _spec in load_all():
    globals()[_spec.dag_id] = build_retrain_dag(_spec)
