"""The UI's trigger form accepts every modelkeeper DAG's Param defaults as they are.

A person who opens *Trigger* on a modelkeeper DAG must be able to press the modal's
Trigger button straight away: no field flagged, the button enabled. Airflow's form
treats every Param whose `type` does not include "null" as required, and an empty
default (`""`) as a missing value, so `Param("", type="string")` disables the button;
`Param(None, type=["null", "string"])` does not. The probe DAGs (tests/browser/probes.py)
show both outcomes on every run, so a pass here means the check itself still bites.

Screenshots of every dialog: tests/browser/artifacts/trigger_form/<dag_id>.png.
"""

from __future__ import annotations

import shutil

import pytest

from tests.browser.probes import PROBE_TAG, PROBES
from tests.browser.ui import FormState, TriggerDialog
from tests.helpers import CHOSEN_ON_PURPOSE

# About 70 s alone (a fresh Airflow ~25 s, then ~5 s per dialog), ~100 s beside the
# runtime tier under xdist: over the ~60 s that `make test-fast` allows a module.
pytestmark = pytest.mark.slow


def _empty_required(params: dict) -> list[str]:
    """Params the form will call missing: a non-nullable type and an empty default."""
    out = []
    for name, spec in params.items():
        kind = (spec.get("schema") or {}).get("type")
        nullable = isinstance(kind, list) and "null" in kind
        if kind and not nullable and spec.get("value") in ("", None):
            out.append(name)
    return out


def _describe(state: FormState, params: dict) -> str:
    parts = [f"Trigger button {'enabled' if state.submit_enabled else 'DISABLED'}"]
    if state.section_errors:
        parts.append(f"sections flagged: {state.section_errors}")
    if state.invalid_fields:
        parts.append(f"fields flagged: {state.invalid_fields}")
    if state.error_texts:
        parts.append(f"errors shown: {state.error_texts}")
    if empty := _empty_required(params):
        parts.append(f'non-nullable Params with an empty default ("" or null): {empty}')
    return "; ".join(parts)


@pytest.fixture(scope="module")
def shots(artifacts):
    """This module's screenshot folder, emptied first (no pictures of DAGs long gone)."""
    folder = artifacts / "trigger_form"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _open(page, airflow_ui, shots, dag_id: str) -> tuple[FormState, dict]:
    params = airflow_ui.ok("GET", f"/dags/{dag_id}/details")["params"] or {}
    dialog = TriggerDialog.open(page, dag_id, params)
    state = dialog.state()
    dialog.screenshot(str(shots / f"{dag_id}.png"))
    return state, params


def test_modelkeeper_dags_trigger_with_their_defaults(page, airflow_ui, shots):
    assert airflow_ui.import_errors() == []
    dag_ids = airflow_ui.dag_ids(tag="modelkeeper")
    assert dag_ids, "no DAG tagged 'modelkeeper' in the UI"
    problems = {}
    for dag_id in dag_ids:
        if dag_id in CHOSEN_ON_PURPOSE:
            continue
        state, params = _open(page, airflow_ui, shots, dag_id)
        if not state.clean:
            problems[dag_id] = _describe(state, params)
    assert not problems, (
        f"the trigger form refuses these DAGs' defaults (screenshots in {shots}):\n"
        + "\n".join(f"  {dag_id}: {why}" for dag_id, why in problems.items())
    )


@pytest.mark.parametrize("dag_id", list(PROBES))
def test_probe_shows_both_outcomes(page, airflow_ui, shots, dag_id):
    param, accepted = PROBES[dag_id]
    assert dag_id in airflow_ui.dag_ids(tag=PROBE_TAG)
    state, params = _open(page, airflow_ui, shots, dag_id)
    if accepted:
        assert state.clean, f"{param}: {_describe(state, params)}"
    else:
        assert not state.submit_enabled, f"{param}: {_describe(state, params)}"
        assert state.section_errors == ["Run Parameters"], f"{param}: {_describe(state, params)}"


@pytest.mark.parametrize("dag_id", list(CHOSEN_ON_PURPOSE))
def test_a_rollback_names_its_model_on_purpose(page, airflow_ui, shots, dag_id):
    """Issue 23 item 14: the rollback form used to pre-select the alphabetically first
    model. Now nothing is selected and the Trigger button waits for a choice."""
    state, params = _open(page, airflow_ui, shots, dag_id)
    param = CHOSEN_ON_PURPOSE[dag_id]
    assert params[param]["value"] is None, params[param]
    assert not state.submit_enabled, _describe(state, params)
    assert state.section_errors == ["Run Parameters"], _describe(state, params)
