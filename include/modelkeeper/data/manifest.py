"""Exactly-once ingestion: the manifest of what each run took.

Under the storage root:

    manifest/<model>/<run>.json               one commit record per run that validated
    accepted/<model>/date=YYYY-MM-DD/<run>.parquet   accepted rows, by event date (pool.py)
    snapshots/<model>/<run>/files/NNNN.parquet        each new file as collect read it
                                              (a rejected one moves to quarantine/)

The protocol, so that a kill -9 anywhere neither loses nor doubles a batch:

- `collect` (collect.py) lists the source's files and takes those whose identity (path,
  size, modification time, ETag) no committed record holds, whatever their event times:
  late rows, rows tying earlier ones and a corrected file re-landed later are all taken.
- `accept` (accept.py) validates the files, writes the accepted rows to pool partitions
  under run-keyed names, then commits the run's record with one atomic rename. Readers
  trust only the partitions a committed record lists: a run killed before its commit
  leaves partitions nobody reads, and its files stay new for the next run; a retry of
  the same run rewrites the same names and commits once.
- A file re-landed with other content replaces the earlier rows by `schema.unique_key`
  (readers keep the last committed version of a key). Without a unique_key there is no
  way to tell a correction from new rows: the re-landed file is quarantined as a conflict.
- An unreadable file is quarantined once (its record says so) and skipped with a warning
  by every later run. A file that fails validation is quarantined once too: after the
  commit its snapshot moves into the run's quarantine folder (a retry finishes the move).
- Files in the landing folder that the source's pattern does not match are not taken;
  the run names them in a warning and its summary, and its record keeps their
  identities, so each is named once (a changed file has another identity).
- SQL sources re-read `source.lookback_minutes` before the last accepted event time and
  drop rows whose unique_key is already in the pool: late rows committed within the
  lookback and rows tying the watermark are taken exactly once. Rows committed later
  than that behind the watermark are not seen (the limit of any watermark query).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelkeeper.data.storage import run_key

if TYPE_CHECKING:
    from modelkeeper.data.storage import Storage


class Manifest:
    """The committed records of one model, read once per instance (they are small)."""

    def __init__(self, storage: Storage, model: str) -> None:
        self.storage, self.model = storage, model
        self.folder = storage.root / "manifest" / model
        self._records: list[dict] | None = None

    def records(self) -> list[dict]:
        if self._records is None:
            found = [
                json.loads(p.read_text(encoding="utf-8"))
                for p in self.folder.glob("*.json")
                if not p.name.startswith(".")
            ]
            self._records = sorted(found, key=lambda r: (r["committed_at"], r["run_id"]))
        return self._records

    def record(self, run_id: str) -> dict | None:
        return next((r for r in self.records() if r["run_id"] == run_id), None)

    def commit(self, record: dict) -> None:
        """The one write that makes a run's batch count (atomic rename)."""
        self.storage.write_json(record, self.folder / f"{run_key(record['run_id'])}.json")
        self._records = None

    def taken(self, *, excluding: str | None = None) -> dict[str, dict]:
        """File identity -> {"run_id", "outcome"} for every file some run took."""
        out: dict[str, dict] = {}
        for r in self.records():
            if r["run_id"] == excluding:
                continue
            for f in r["files"]:
                out.setdefault(f["key"], {"run_id": r["run_id"], "outcome": f["outcome"]})
        return out

    def named(self, *, excluding: str | None = None) -> set[str]:
        """Identities of the files not matching the source's pattern that a run has named
        already (each is named once; changed, it has another identity)."""
        return {
            u["key"]
            for r in self.records()
            if r["run_id"] != excluding
            for u in r.get("unmatched", [])
        }

    def paths(self) -> set[str]:
        return {f["source"] for r in self.records() for f in r["files"]}

    def watermark(self) -> str | None:
        marks = [r["watermark"] for r in self.records() if r.get("watermark")]
        return max(marks) if marks else None

    def last_take(self) -> dict | None:
        """The last record that took any file (runs with nothing new commit empty ones)."""
        took = [r for r in self.records() if r["files"]]
        return took[-1] if took else None

    def partitions(self) -> list[dict]:
        """Every committed pool partition, in commit order: {"path", "date", "rows", ...}."""
        return [p for r in self.records() for p in r.get("pool", [])]


def previous_tick(schedule: str | None, at: datetime | str | None) -> str | None:
    """The schedule's tick before `at` (UTC ISO), or None without a cron schedule: whether
    a run took data since then tells a quiet producer from a run another one beat to it."""
    if not schedule or at is None:
        return None
    from croniter import croniter

    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return croniter(schedule, when.astimezone(UTC)).get_prev(datetime).isoformat()
    except (ValueError, KeyError):  # not a cron expression croniter knows
        return None
