"""Probe DAGs the `airflow_ui` fixture writes beside copies of the repo's DAG files.

Each probe has one Param `reason` in one shape, and whether the UI's trigger form should
accept its default as it is. The shapes are the ones modelkeeper's DAGs use (`""` as a
string default, with or without `minLength`) and the nullable form that replaces them,
so that every run shows the trigger-form test both passing and failing. Not product code.
"""

from __future__ import annotations

# dag_id -> (the Param, as source; is the Trigger button enabled on open?)
PROBES: dict[str, tuple[str, bool]] = {
    "mk_probe_param_nullable": ('Param(None, type=["null", "string"], maxLength=500)', True),
    "mk_probe_param_nullable_min_length": (
        'Param(None, type=["null", "string"], minLength=3, maxLength=500)',
        True,
    ),
    "mk_probe_param_empty_string": ('Param("", type="string", maxLength=500)', False),
    "mk_probe_param_empty_string_min_length": (
        'Param("", type="string", minLength=3, maxLength=500)',
        False,
    ),
}
PROBE_TAG = "mk-browser-probe"


def probe_dag_file() -> str:
    """The source of one DAG file defining every probe."""
    entries = "\n".join(f"    {dag_id!r}: {param}," for dag_id, (param, _) in PROBES.items())
    return f'''"""Browser-test probes (tests/browser/probes.py): one Param `reason` each."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param

PROBES = {{
{entries}
}}

for _dag_id, _param in PROBES.items():
    with DAG(
        _dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=[{PROBE_TAG!r}],
        params={{"reason": _param}},
    ):
        EmptyOperator(task_id="noop")
'''
