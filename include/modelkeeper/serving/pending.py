"""Scoring batches still owed their predictions.

`validate` accepts a scoring run's rows before `score` predicts them. When the run fails in
between (MLflow down past the retries, a worker lost) or there is no champion yet, the next
run would only collect new files and the accepted rows would never be predicted. So every
accepted scoring batch stays owed until score has stored its predictions (destination and
prediction log), and each score run takes its own rows plus every batch still owed.

A batch is settled by a marker under `scored/<model>/<run>.json`, written after the
predictions. A batch without one (its run failed, or it was scored before markers existed)
is owed the rows whose key the prediction log does not hold for any version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from modelkeeper.data.keys import anti_join
from modelkeeper.data.manifest import Manifest
from modelkeeper.data.storage import run_key
from modelkeeper.data.streams import stream_spec

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.objstore import Location
    from modelkeeper.data.storage import Storage


def owed(storage: Storage, spec: ModelSpec, run_id: str) -> list[tuple[str, pd.DataFrame]]:
    """(run id, rows) of the earlier scoring runs whose accepted rows have no prediction
    yet, oldest first; `run_id` (the run asking) is left out."""
    from modelkeeper.serving.scoring import read_log

    assert spec.scoring is not None
    ts, key = spec.data_schema.timestamp_column, list(spec.scoring.key)
    out = []
    for record in Manifest(storage, stream_spec(spec, "scoring").name).records():
        result = record.get("result") or {}
        earlier = record["run_id"]
        if earlier == run_id or not result.get("path") or not result.get("rows"):
            continue
        if storage.read_json(_marker(storage, spec.name, earlier)) is not None:
            continue
        rows = storage.read_parquet(result["path"])
        logged = read_log(spec, storage, since=rows[ts].min(), until=rows[ts].max())
        missing = anti_join(rows, logged, key, spec)
        if missing.empty:  # predicted, the marker not written (killed after the log write)
            settle(storage, spec.name, [earlier], by=None)
        else:
            out.append((earlier, missing))
    return out


def settle(storage: Storage, model: str, run_ids: list[str], *, by: str | None) -> None:
    """The batches of `run_ids` have their predictions (`by`: the scoring run that wrote
    them; None when found in the log)."""
    for earlier in run_ids:
        storage.write_json({"run_id": earlier, "scored_by": by}, _marker(storage, model, earlier))


def _marker(storage: Storage, model: str, run_id: str) -> Location:
    return storage.root / "scored" / model / f"{run_key(run_id)}.json"
