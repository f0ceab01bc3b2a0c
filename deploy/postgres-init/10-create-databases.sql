-- Runs once, when the postgres volume is first initialised (as POSTGRES_USER, which owns it).
-- POSTGRES_DB creates `airflow` (metadata + Celery results); MLflow gets its own database.
CREATE DATABASE mlflow;
CREATE DATABASE modelkeeper_audit;
