"""The stages of modelkeeper's pipelines, one function each, typed in and typed out.

    collect -> validate -> monitor -> decide -> train -> evaluate -> promote   (retrain_<model>)
    collect -> validate -> score -> watch -> alarm                             (score_<model>)
    collect -> validate -> measure -> alarm                                    (monitor_<model>)

Each takes a Workspace (the spec and the stores) and a Run (which run's outputs it keys),
plus the typed results of the stages before it, and returns its own typed result
(modelkeeper.contracts.results). The Airflow operators read their context, call one of
these and push the result; the backtest replays a model's data by calling the same
functions, so what it measures is what the DAGs run.
"""
