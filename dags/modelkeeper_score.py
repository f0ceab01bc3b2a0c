"""One `score_<model>` DAG per spec with a `scoring` section: the champion at work.

A task process builds only its own DAG (Airflow's parsing context names it).
"""

from modelkeeper_airflow.factory import build_score_dag, specs_to_build

for _spec in specs_to_build("score_"):
    if _spec.scoring is not None:
        globals()[f"score_{_spec.name}"] = build_score_dag(_spec)
