from modelkeeper_airflow.hooks.mlflow import MlflowHook

__all__ = ["MlflowHook"]
