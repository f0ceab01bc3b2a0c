"""Airflow layer of modelkeeper: hooks own connections, operators own orchestration.

The ML lives in the `modelkeeper` core package (include/), which never imports airflow.
"""
