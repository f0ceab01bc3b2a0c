"""The monitoring history: every measurement of every model, as one series table.

A row is one number about one model version over one window: a realized or estimated
metric once labels (or only probabilities) are in, the drift share and data quality of a
scored batch, the scoring volume and latency, the champion's metric at evaluation, an
alarm raised or suppressed. It lives beside the audit trail, in the database of the
`modelkeeper_audit` Airflow Connection (SQLite under `make run`, Postgres scaled out),
indexed for "this model's series". A retried task writes nothing twice: a row is keyed by
(run, kind, metric, window, slice).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Literal

import sqlalchemy as sa

from modelkeeper.contracts.results import Measurement
from modelkeeper.records.sqlstore import SqlStore, keyed_table

Kind = Literal[
    "realized",
    "estimated",
    "evaluation",
    "drift",
    "quality",
    "scoring",
    "alarm",
    "detector",  # the champion's change detector after each labelled batch
    "evidence",  # the shadow's advantage and the drift share a retrain decision weighed
    "labels",  # late labels: how many match no prediction (yet)
    "deadline",  # predictions whose label is overdue (labels.expected_delay_days)
]

history_table = keyed_table(
    "modelkeeper_history",
    "row_key",
    700,
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("version", sa.String(20)),
    sa.Column("window_start", sa.String(40)),
    sa.Column("window_end", sa.String(40)),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("metric", sa.String(120), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("rows", sa.Integer),
    sa.Column("slice_column", sa.String(120)),
    sa.Column("slice_value", sa.String(200)),
    sa.Column("run_id", sa.String(250)),
    sa.Column("dag_id", sa.String(250)),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Index("ix_modelkeeper_history_series", "model", "kind", "metric", "window_start"),
)


def prevailing(rows: Iterable[dict], *, per_version: bool = True) -> list[dict]:
    """One measurement per (kind, metric, window, slice[, version]): the one on the most rows,
    the latest recorded of equals, in the order `rows` came. A window is re-measured while
    its labels may still arrive; a smaller sample never replaces a larger one for the same
    period (an estimate from the 3 rows of a late run does not overwrite one from 6,300).
    `rows`: history rows or Measurement dicts, in the order they were recorded."""
    best: dict[tuple, tuple[int, dict]] = {}
    for i, row in enumerate(rows):
        key = (
            row.get("kind"),
            row.get("metric"),
            row.get("window_start"),
            row.get("slice_column"),
            row.get("slice_value"),
            row.get("version") if per_version else None,
        )
        if key not in best or (row.get("rows") or 0) >= (best[key][1].get("rows") or 0):
            best[key] = (i, row)
    return [row for _, row in sorted(best.values(), key=lambda found: found[0])]


class History(SqlStore):
    table, key, json_column = history_table, "row_key", "detail"

    def record(self, measurements: list[Measurement]) -> int:
        """Insert what is not there yet; returns how many rows were new."""
        rows = []
        for m in measurements:
            row = {**asdict(m), "row_key": m.key()}
            value = row["value"]
            row["value"] = None if value is None or value != value else float(value)  # NaN: none
            rows.append(row)
        return self._insert_new(rows)

    def series(
        self,
        model: str,
        *,
        kind: str | None = None,
        metric: str | None = None,
        since: str | None = None,
    ) -> list[dict]:
        """This model's measurements, oldest window first (then the order recorded)."""
        t = history_table
        query = sa.select(t).where(t.c.model == model)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        if metric is not None:
            query = query.where(t.c.metric == metric)
        if since is not None:
            query = query.where(t.c.recorded_at >= since)
        return self._select(query.order_by(t.c.window_start, t.c.id))

    def last_alarm(self, model: str, *, fired_only: bool = True) -> dict | None:
        alarms = [
            a
            for a in self.series(model, kind="alarm")
            if not fired_only or a["detail"].get("status") == "fired"
        ]
        return max(alarms, key=lambda a: a["recorded_at"]) if alarms else None
