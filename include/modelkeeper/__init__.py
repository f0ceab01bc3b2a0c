"""modelkeeper core: plain Python (never imports airflow)."""
