"""The database the audit trail and the monitoring history live in.

Reached through the `modelkeeper_audit` Airflow Connection (SQLite under `make run`,
Postgres scaled out). Each store keeps append-only rows in one table, created on first
use; a row's unique key makes a retried task's insert a no-op instead of a duplicate.
Any call that cannot reach the database raises AuditUnavailable, which Airflow retries.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Self

import sqlalchemy as sa

from modelkeeper.contracts.errors import UnavailableError
from modelkeeper.contracts.jsonio import dumps

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

_IN_LIST = 500  # keys per SELECT ... IN (...)


class AuditUnavailable(UnavailableError):
    """The audit database could not be reached (worth a retry)."""


@contextlib.contextmanager
def reachable(engine: Engine) -> Iterator[None]:
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        url = engine.url.render_as_string(hide_password=True)
        raise AuditUnavailable(f"audit database {url} is unavailable: {exc}") from exc


def keyed_table(name: str, key: str, key_length: int, *columns: Any) -> sa.Table:
    """A table with an id, a unique `key` column and `columns`, in its own MetaData."""
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(key, sa.String(key_length), nullable=False, unique=True),
        *columns,
    )


class SqlStore:
    """Base of a store: its `table`, the unique `key` column, and `json_column`, a dict
    kept as JSON text."""

    table: ClassVar[sa.Table]
    key: ClassVar[str]
    json_column: ClassVar[str]

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with reachable(engine):
            self.table.metadata.create_all(engine, checkfirst=True)

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(sa.create_engine(url))

    def _insert_new(self, rows: list[dict[str, Any]]) -> int:
        """Insert the rows whose key is not there yet, in one transaction; how many were."""
        if not rows:
            return 0
        for row in rows:
            row[self.json_column] = dumps(row[self.json_column], sort_keys=True)
        column = self.table.c[self.key]
        keys = [r[self.key] for r in rows]
        with reachable(self.engine), self.engine.begin() as conn:
            known = set()
            for i in range(0, len(keys), _IN_LIST):
                found = conn.execute(sa.select(column).where(column.in_(keys[i : i + _IN_LIST])))
                known |= {r[0] for r in found}
            new = [r for r in rows if r[self.key] not in known]
            if new:
                conn.execute(self.table.insert(), new)
        return len(new)

    def _select(self, query: sa.Select) -> list[dict[str, Any]]:
        """The rows of `query` as dicts, the JSON column parsed."""
        with reachable(self.engine), self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row[self.json_column] = json.loads(row[self.json_column] or "{}")
        return rows
