"""modelkeeper's Airflow plugin: a scheduler listener that writes retrain runs' notes.

Every Airflow component imports this file (the package modelkeeper_airflow is in
.airflowignore, so this is the one module the plugin manager scans): it stays light.
Operator extra links are declared on the operators, not registered here (see
modelkeeper_airflow/links.py for why).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from modelkeeper_airflow.listener import RunNoteListener


class ModelkeeperPlugin(AirflowPlugin):
    name = "modelkeeper"
    listeners = [RunNoteListener()]
