"""Model health pages in the Airflow UI: data shaping (health), HTML (render), routes (app).

health and render are plain Python (no Airflow, no MLflow), so unit tests call them
directly; only app.py touches FastAPI and the Airflow auth manager.
"""

URL_PREFIX = "/modelkeeper"  # where the api-server mounts the app (modelkeeper_plugin.py)
REPORTS_ROUTE = "/reports"  # + /<model>/<run key>/<page>: a run's report folder (app.py)
