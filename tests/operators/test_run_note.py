"""The listener that turns a retrain run's outcome into its note.

Unit level only: `note_for` and `set_note` on fake DagRun objects. The real scheduler path
(DagRun.update_state calling on_dag_run_success inside the scheduler's session, which
then commits the note) is NOT exercised here; that needs a running scheduler.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from modelkeeper_airflow import listener


def _run(dag_id: str = "retrain_flight_delay", note: str | None = None, user: str | None = None):
    dag_run_note = None if note is None else SimpleNamespace(content=note, user_id=user)
    return SimpleNamespace(dag_id=dag_id, run_id="manual__1", note=note, dag_run_note=dag_run_note)


class TestNoteFor:
    @pytest.mark.parametrize(
        ("dag_run", "outcome", "expected"),
        [
            pytest.param(
                _run(),
                "promoted v3: roc_auc 0.674 → 0.690",
                "promoted v3: roc_auc 0.674 → 0.690",
                id="set",
            ),
            pytest.param(_run(), None, None, id="no-outcome"),
            pytest.param(_run(dag_id="example_etl"), "x", None, id="other-dag"),
            pytest.param(
                _run(dag_id="monitor_flight_delay"),
                "labels: 10 predictions joined with their label, 0 pending; 3 labels match",
                "labels: 10 predictions joined with their label, 0 pending; 3 labels match",
                id="monitor-dag",  # issue 23 item 4: the unmatched count in the note
            ),
            pytest.param(
                _run(dag_id="score_flight_delay"),
                "validate_scoring failed: DataError: validation failed",
                "validate_scoring failed: DataError: validation failed",
                id="score-dag",  # issue 23 item 16: a failed run says why
            ),
            pytest.param(
                _run(note="checked by hand", user="alice"),
                "kept v2: nothing new",
                None,
                id="person-note-kept",
            ),
            pytest.param(
                _run(note="kept v2: nothing new"),
                "promoted v3: roc_auc 0.674 → 0.690",
                "promoted v3: roc_auc 0.674 → 0.690",
                id="own-note-replaced",
            ),
            pytest.param(
                _run(note="kept v2: nothing new"), "kept v2: nothing new", None, id="unchanged"
            ),
        ],
    )
    def test_cases(self, dag_run, outcome, expected):
        assert listener.note_for(dag_run, outcome) == expected

    def test_capped_at_airflow_s_limit(self):
        assert len(listener.note_for(_run(), "x" * 5000)) == listener.MAX_NOTE_CHARS


class TestSetNote:
    def test_sets_the_latest_outcome(self, monkeypatch):
        dag_run = _run()
        monkeypatch.setattr(
            listener, "latest_outcome", lambda dr: "refused v3: roc_auc 0.674 → 0.672"
        )
        listener.set_note(dag_run)
        assert dag_run.note == "refused v3: roc_auc 0.674 → 0.672"

    def test_never_raises(self, monkeypatch, caplog):
        def broken(dr):
            raise RuntimeError("database gone")

        dag_run = _run()
        monkeypatch.setattr(listener, "latest_outcome", broken)
        listener.RunNoteListener().on_dag_run_failed(dag_run=dag_run, msg="")
        assert dag_run.note is None
        assert "could not set the note" in caplog.text


def test_the_plugin_registers_the_listener():
    import modelkeeper_plugin

    [registered] = modelkeeper_plugin.ModelkeeperPlugin.listeners
    assert isinstance(registered, listener.RunNoteListener)
    assert not modelkeeper_plugin.ModelkeeperPlugin.operator_extra_links  # declared on operators
