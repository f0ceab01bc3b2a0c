"""collect and validate: take each newly landed batch exactly once, and let only good rows in.

collect snapshots the files (or SQL rows) no run has taken yet, keyed by (model, run);
validate runs the spec's Great Expectations suite on them, quarantines what fails with
its report, adds the rest to the accepted pool and commits the run's manifest record.
`stream` is None for the training data, "scoring" or "labels" for the model's others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.contracts.results import Accepted, Batch
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.stages.workspace import Run, Workspace

log = logging.getLogger(__name__)


def stream_spec(ws: Workspace, stream: str | None) -> ModelSpec:
    """The spec as ingestion sees `stream` (its source, bounds and columns)."""
    from modelkeeper.data.streams import stream_spec as of_stream

    return ws.spec if stream is None else of_stream(ws.spec, stream)


def collect(
    ws: Workspace,
    run: Run,
    *,
    stream: str | None = None,
    read_sql: Callable[[str], pd.DataFrame] | None = None,
) -> Batch:
    from modelkeeper.data.collect import collect as snapshot
    from modelkeeper.data.collect import describe_unmatched

    spec = stream_spec(ws, stream)
    batch = snapshot(spec, ws.storage, run.run_id, read_sql=read_sql)
    for skipped in batch.skipped:
        log.warning("skipping %s", skipped)
    if batch.unmatched:
        log.warning("%s", describe_unmatched(batch.unmatched, spec))
    for f in batch.files:
        if f.error:
            log.warning("%s (copied to %s)", f.error, f.quarantine)
    log.info(
        "collected %s new file(s), %s rows (%s .. %s); last take before: %s",
        len(batch.files),
        batch.rows,
        batch.start,
        batch.end,
        batch.since,
    )
    return batch


def validate(ws: Workspace, run: Run, batch: Batch, *, stream: str | None = None) -> Accepted:
    """The batch's verdict; Data Docs only when the workspace writes reports."""
    from modelkeeper.data.accept import accept

    result = accept(
        batch,
        stream_spec(ws, stream),
        ws.storage,
        run.run_id,
        validate=None if ws.reports else _without_docs,
        row_checks_only=stream is not None,
    )
    for warning in result.warnings:
        log.warning("validation warning: %s", warning)
    note = extra_columns_note(ws.spec, result.extra_columns)
    if note:
        log.info("%s", note)
    return result


def extra_columns_note(spec: ModelSpec, extra: list[str]) -> str | None:
    """One line for the columns the spec does not declare, which `schema.extra_columns:
    warn` allows: a fact, said once per validation at info, not a warning. A stream (scoring
    features, labels) checks only its share of the model's columns: the model's other
    declared columns are expected in its files and are not named."""
    from modelkeeper.quality.report import listed

    declared = {rule.name for rule in spec.data_schema.columns}
    undeclared = [c for c in extra if c not in declared]
    if not undeclared:
        return None
    return (
        f"{len(undeclared)} column(s) the spec does not declare, not validated and not used by "
        f"the model (schema.extra_columns: warn allows them): {listed(undeclared)}"
    )


def _without_docs(df: pd.DataFrame, spec: ModelSpec, *, docs_dir: Any = None, **kw: Any) -> Any:
    from modelkeeper.quality.validation import validate_frame

    return validate_frame(df, spec, **kw)  # no Data Docs: nobody reads a replay's fifty
