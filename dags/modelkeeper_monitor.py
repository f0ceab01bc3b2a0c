"""One `monitor_<model>` DAG per spec with `labels` and `monitoring` sections: late labels
joined to predictions, realized and estimated performance, alarms that retrain.

A task process builds only its own DAG (Airflow's parsing context names it).
"""

from modelkeeper_airflow.factory import build_monitor_dag, specs_to_build

for _spec in specs_to_build("monitor_"):
    if _spec.labels is not None and _spec.monitoring is not None:
        globals()[f"monitor_{_spec.name}"] = build_monitor_dag(_spec)
