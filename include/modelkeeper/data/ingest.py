"""Exactly-once ingestion: a manifest of what each run took, and the accepted pool.

Under the storage root:

    manifest/<model>/<run>.json               one commit record per run that validated
    accepted/<model>/date=YYYY-MM-DD/<run>.parquet   accepted rows, by event date
    snapshots/<model>/<run>/files/NNNN.parquet        each new file as collect read it

The protocol, so that a kill -9 anywhere neither loses nor doubles a batch:

- `collect` lists the source's files and takes those whose identity (path, size,
  modification time, ETag) no committed record holds, whatever their event times: late
  rows, rows tying earlier ones and a corrected file re-landed later are all taken.
- `accept` validates the files, writes the accepted rows to pool partitions under
  run-keyed names, then commits the run's record with one atomic rename. Readers trust
  only the partitions a committed record lists: a run killed before its commit leaves
  partitions nobody reads, and its files stay new for the next run; a retry of the same
  run rewrites the same names and commits once.
- A file re-landed with other content replaces the earlier rows by `schema.unique_key`
  (readers keep the last committed version of a key). Without a unique_key there is no
  way to tell a correction from new rows: the re-landed file is quarantined as a conflict.
- An unreadable file is quarantined once (its record says so) and skipped with a warning
  by every later run.
- SQL sources re-read `source.lookback_minutes` before the last accepted event time and
  drop rows whose unique_key is already in the pool: late rows committed within the
  lookback and rows tying the watermark are taken exactly once. Rows committed later
  than that behind the watermark are not seen (the limit of any watermark query).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import pyarrow as pa

from modelkeeper.contracts.errors import ConfigError
from modelkeeper.contracts.handoff import Handoff
from modelkeeper.contracts.spec import FileSource, SqlSource
from modelkeeper.data.sources import (
    FileId,
    SourceError,
    list_files,
    naive_utc,
    parse_timestamps,
    read_file,
    substitute_watermark,
)
from modelkeeper.data.storage import run_key

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.objstore import Location
    from modelkeeper.data.storage import Storage
    from modelkeeper.quality.report import ValidationOutcome

BATCH_META = "batch.json"
ACCEPTED_SNAPSHOT = "accepted.parquet"
Outcome = Literal["accepted", "quarantined", "unreadable"]


# -- hand-offs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchFile(Handoff):
    """One new file of a batch (for SQL, the run's query result)."""

    source: str  # path or URI as listed; "sql:<conn_id>" for a query
    key: str  # its identity in the manifest
    snapshot: str | None  # the rows as read, None when unreadable
    rows: int = 0
    start: str | None = None
    end: str | None = None
    columns: list[str] = field(default_factory=list)
    error: str | None = None  # why it could not be read
    quarantine: str | None = None  # where the unreadable bytes were copied
    relanded: bool = False  # its path was taken before, with other content

    @property
    def name(self) -> str:
        return self.source.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Batch(Handoff):
    """collect's result: the new files of a run, as references."""

    folder: str
    files: list[BatchFile]
    rows: int
    start: str | None  # earliest event time among the new rows
    end: str | None  # latest
    since: str | None  # files: the last commit before; SQL: the watermark read from
    skipped: list[str] = field(default_factory=list)  # known-unreadable files passed over


@dataclass(frozen=True)
class FileOutcome(Handoff):
    source: str
    key: str
    outcome: Outcome
    rows: int
    reason: str = ""
    quarantine: str | None = None


@dataclass(frozen=True)
class Accepted(Handoff):
    """accept's result: what the run's files became, and where the accepted rows are."""

    success: bool  # every new file accepted
    summary: str
    rows: int  # accepted rows (after replacing re-landed keys within the batch)
    path: str | None  # the accepted rows of this run, one Parquet file (monitor reads it)
    start: str | None
    end: str | None
    files: list[FileOutcome] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    report: str | None = None
    data_docs: str | None = None
    quarantine: str | None = None


# -- the manifest ------------------------------------------------------------------------------


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


# -- collect -----------------------------------------------------------------------------------


def collect(
    spec: ModelSpec,
    storage: Storage,
    run_id: str,
    *,
    read_sql: Callable[[str], pd.DataFrame] | None = None,
) -> Batch:
    """Snapshot the files (or query rows) no committed run has taken yet.

    Idempotent per run: a complete snapshot (batch.json is written last) is returned as
    is, so a retry sees exactly what the first attempt saw. Unreadable files are copied to
    quarantine here and reported in the batch; `accept` records them.
    """
    folder = storage.snapshot_dir(spec.name, run_id)
    meta = folder / BATCH_META
    if meta.exists():
        return Batch.from_dict(storage.read_json(meta))
    manifest = Manifest(storage, spec.name)
    source = spec.source
    skipped: list[str] = []
    if isinstance(source, FileSource):
        files, skipped, since = _new_files(spec, storage, run_id, manifest, folder)
    elif isinstance(source, SqlSource):
        if read_sql is None:
            raise ConfigError(f"model {spec.name!r} has a SQL source: collect needs read_sql")
        files, since = _new_sql_rows(spec, storage, manifest, folder, read_sql)
    else:  # pragma: no cover - the spec's discriminator admits only the two kinds
        raise TypeError(f"unknown source {type(source).__name__}")
    starts = [f.start for f in files if f.start]
    ends = [f.end for f in files if f.end]
    batch = Batch(
        folder=str(folder),
        files=files,
        rows=sum(f.rows for f in files),
        start=min(starts) if starts else None,
        end=max(ends) if ends else None,
        since=since,
        skipped=skipped,
    )
    storage.write_json(batch.to_dict(), meta)
    return batch


def _new_files(
    spec: ModelSpec, storage: Storage, run_id: str, manifest: Manifest, folder: Location
) -> tuple[list[BatchFile], list[str], str | None]:
    source = spec.source
    assert isinstance(source, FileSource)
    taken, seen = manifest.taken(excluding=run_id), manifest.paths()
    files: list[BatchFile] = []
    skipped: list[str] = []
    for fid in list_files(source.path, base=storage.root):
        before = taken.get(fid.key)
        if before is not None:
            if before["outcome"] == "unreadable":
                skipped.append(
                    f"{fid.path}: unreadable, quarantined by run {before['run_id']}; "
                    "re-land a readable file to ingest it"
                )
            continue
        snapshot = folder / "files" / f"{len(files):04d}.parquet"
        files.append(_snapshot_file(spec, storage, run_id, fid, snapshot, fid.path in seen))
    last = manifest.last_take()
    return files, skipped, last["committed_at"] if last else None


def _snapshot_file(
    spec: ModelSpec, storage: Storage, run_id: str, fid: FileId, snapshot: Location, relanded: bool
) -> BatchFile:
    source = spec.source
    assert isinstance(source, FileSource)
    try:
        df = read_file(fid, source.format)
    except SourceError as exc:
        name = fid.path.rstrip("/").rsplit("/", 1)[-1]
        quarantine = storage.quarantine_dir(spec.name, run_id) / name
        try:
            storage.copy_into(fid.path, quarantine / name)  # a copy, local or object store
        except FileNotFoundError:  # gone since it was listed: the reason says enough
            pass
        storage.write_text(f"{exc}\n", quarantine / "REASON.txt")
        return BatchFile(
            fid.path, fid.key, None, error=str(exc), quarantine=str(quarantine), relanded=relanded
        )
    return _snapshot(spec, storage, df, fid.path, fid.key, snapshot, relanded)


def _snapshot(
    spec: ModelSpec,
    storage: Storage,
    df: pd.DataFrame,
    source: str,
    key: str,
    path: Location,
    relanded: bool = False,
) -> BatchFile:
    ts_col = spec.data_schema.timestamp_column
    start = end = None
    if ts_col in df.columns and len(df):
        ts = naive_utc(parse_timestamps(df[ts_col]))
        if ts.notna().any():  # unparseable ones stay NaT: validation names the column
            df = df.assign(**{ts_col: ts})
            start, end = ts.min().isoformat(), ts.max().isoformat()
    _write_snapshot(storage, df, path)
    return BatchFile(
        source, key, str(path), len(df), start, end, [str(c) for c in df.columns], relanded=relanded
    )


def _new_sql_rows(
    spec: ModelSpec,
    storage: Storage,
    manifest: Manifest,
    folder: Location,
    read_sql: Callable[[str], pd.DataFrame],
) -> tuple[list[BatchFile], str | None]:
    source = spec.source
    assert isinstance(source, SqlSource)
    watermark = manifest.watermark()
    lookback = timedelta(minutes=source.lookback_minutes)
    df = read_sql(substitute_watermark(source.query, watermark, lookback))
    key = spec.data_schema.unique_key
    ts_col = spec.data_schema.timestamp_column
    if ts_col in df.columns and len(df):  # one clock and type, so keys compare with the pool's
        df = df.assign(**{ts_col: naive_utc(parse_timestamps(df[ts_col]))})
    if watermark is not None and key and len(df) and set(key) <= set(df.columns):
        # Re-read rows (the lookback, ties) whose key the pool already holds: drop them.
        since = pd.Timestamp(watermark) - lookback
        known = load_pool(spec, storage, since=since, columns=list(dict.fromkeys([*key, ts_col])))
        if len(known):
            df = _anti_join(df, known[key], key)
    run = folder.name
    batch_file = _snapshot(
        spec, storage, df, f"sql:{source.conn_id}", f"sql:{run}", folder / "files" / "0000.parquet"
    )
    return [batch_file], watermark


def _anti_join(df: pd.DataFrame, known: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Rows of `df` whose key is not in `known` (compared as text: types may differ)."""
    as_text = lambda frame: frame[key].astype(str).agg("\x1f".join, axis=1)  # noqa: E731
    seen = set(as_text(known.drop_duplicates()))
    return df[~as_text(df).isin(seen)].reset_index(drop=True)


def _write_snapshot(storage: Storage, df: pd.DataFrame, path: Location) -> None:
    try:
        storage.write_parquet(df, path)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        # A column holding mixed types (numbers and text in one CSV) cannot be stored as
        # is: keep it as text so validation can report its type.
        mixed = [
            c
            for c in df.columns
            if df[c].dtype == object and df[c].dropna().map(type).nunique() > 1
        ]
        if not mixed:
            raise
        fixed = df.copy()
        for col in mixed:
            fixed[col] = fixed[col].astype(str).where(fixed[col].notna(), None)
        storage.write_parquet(fixed, path)


# -- accept --------------------------------------------------------------------------------------

Validate = Callable[..., "ValidationOutcome"]


def accept(
    batch: Batch,
    spec: ModelSpec,
    storage: Storage,
    run_id: str,
    *,
    validate: Validate | None = None,
    row_checks_only: bool = False,
) -> Accepted:
    """Validate the batch's files, add the good rows to the pool, commit the run's record.

    `row_checks_only` leaves the batch bounds out always (streams scored or joined row by
    row: scoring features, late labels).

    Files with the same columns are validated together (one Great Expectations run on
    the combined rows); only when that fails is each file validated on its own, so the
    failure is pinned on the file that has it and the other files are still accepted.
    A batch of late files only (every row older than the pool's newest) gets the row
    checks but not the batch bounds: a few late rows are a supplement, not a short batch.
    Files whose columns differ are validated one by one first: a renamed column is
    reported as missing in the file that lacks it. A file that passes on its own but
    fails the whole-batch checks (row count, both classes) is quarantined with the batch.
    Idempotent per run: a committed run returns its recorded result.
    """
    if validate is None:
        from modelkeeper.quality.validation import validate_frame as validate
    manifest = Manifest(storage, spec.name)
    done = manifest.record(run_id)
    if done is not None and done.get("result"):
        return Accepted.from_dict(done["result"])

    reports = storage.report_dir(spec.name, run_id)
    taken = manifest.taken(excluding=run_id)
    key = spec.data_schema.unique_key
    outcomes: dict[str, FileOutcome] = {}
    frames: dict[str, pd.DataFrame] = {}
    warnings = list(batch.skipped)
    for f in batch.files:
        if f.key in taken:  # a cleared old run: another run committed this file since
            warnings.append(f"{f.source}: already taken by run {taken[f.key]['run_id']}")
            continue
        if f.error is not None:
            outcomes[f.key] = FileOutcome(f.source, f.key, "unreadable", 0, f.error, f.quarantine)
        elif f.relanded and not key:
            why = (
                f"{f.name} was re-landed with other content and the spec declares no "
                "schema.unique_key to replace the earlier rows by"
            )
            outcomes[f.key] = FileOutcome(f.source, f.key, "quarantined", f.rows, why)
        elif f.rows == 0:
            outcomes[f.key] = FileOutcome(
                f.source, f.key, "quarantined", 0, f"{f.name} has no rows"
            )
        else:
            frames[f.key] = storage.read_parquet(f.snapshot)

    by_key = {f.key: f for f in batch.files}
    failures: list[dict] = []
    docs = reports / "data_docs"
    verdicts: dict[str, ValidationOutcome] = {}

    def judge_alone(keys: list[str]) -> None:
        for k in keys:
            verdict = validate(frames[k], spec, checks="rows")
            verdicts[k] = verdict
            if not verdict.success:
                name = by_key[k].name
                outcomes[k] = FileOutcome(
                    by_key[k].source, k, "quarantined", by_key[k].rows, f"{name}: {verdict.summary}"
                )
                failures.extend({**x, "file": name} for x in verdict.failures)

    # Late files (all their rows older than what the pool already holds) supplement
    # earlier batches: they get the row checks, not the batch bounds (min_rows, classes).
    latest = max((p["end"] for p in manifest.partitions()), default=None)

    def judge_batch(keys: list[str], df: pd.DataFrame) -> ValidationOutcome:
        late = latest is not None and all((by_key[k].end or "") <= latest for k in keys)
        late = late or row_checks_only
        return validate(df, spec, docs_dir=docs, **({"checks": "rows"} if late else {}))

    candidates = list(frames)
    if len({tuple(by_key[k].columns) for k in candidates}) > 1:
        judge_alone(candidates)
        candidates = [k for k in candidates if k not in outcomes]
    combined = _combine([frames[k] for k in candidates], key)
    batch_verdict = None
    if candidates:
        batch_verdict = judge_batch(candidates, combined)
        if not batch_verdict.success and len(candidates) > 1:
            judge_alone(candidates)
            candidates = [k for k in candidates if k not in outcomes]
            combined = _combine([frames[k] for k in candidates], key)
            batch_verdict = judge_batch(candidates, combined) if candidates else None
        if batch_verdict is not None and not batch_verdict.success:
            failures.extend(batch_verdict.failures)
            for k in candidates:
                why = f"{by_key[k].name}: batch {batch_verdict.summary}"
                outcomes[k] = FileOutcome(by_key[k].source, k, "quarantined", by_key[k].rows, why)
            candidates, combined = [], combined.iloc[0:0]
    for k in candidates:
        outcomes[k] = FileOutcome(by_key[k].source, k, "accepted", by_key[k].rows)

    quarantine = _quarantine(
        storage, spec, run_id, batch, outcomes, frames, verdicts, batch_verdict
    )
    path = None
    ts_col = spec.data_schema.timestamp_column
    start = end = None
    if candidates:
        path = str(storage.write_parquet(combined, storage.at(batch.folder) / ACCEPTED_SNAPSHOT))
        start, end = combined[ts_col].min().isoformat(), combined[ts_col].max().isoformat()
    report = storage.write_json(
        {
            "files": [o.to_dict() for o in outcomes.values()],
            "batch": None if batch_verdict is None else batch_verdict.to_dict(),
            "per_file": {by_key[k].name: v.to_dict() for k, v in verdicts.items()},
        },
        reports / "validation.json",
    )
    result = Accepted(
        success=all(o.outcome == "accepted" for o in outcomes.values()),
        summary=_summary(outcomes, len(combined) if candidates else 0, batch_verdict, batch.since),
        rows=len(combined) if candidates else 0,
        path=path,
        start=start,
        end=end,
        files=list(outcomes.values()),
        failures=failures,
        warnings=warnings + ([] if batch_verdict is None else batch_verdict.warnings),
        report=str(report),
        data_docs=str(docs / "index.html") if (docs / "index.html").exists() else None,
        quarantine=quarantine,
    )
    commit_accepted(
        spec,
        storage,
        run_id,
        combined if candidates else None,
        files=list(outcomes.values()),
        result=result,
        manifest=manifest,
    )
    return result


def commit_accepted(
    spec: ModelSpec,
    storage: Storage,
    run_id: str,
    df: pd.DataFrame | None,
    *,
    files: list[FileOutcome] = (),  # type: ignore[assignment]
    result: Accepted | None = None,
    manifest: Manifest | None = None,
) -> None:
    """Add validated rows to the pool and commit the run's record: pool first, then the
    record (the commit), so a crash in between leaves nothing any reader trusts."""
    manifest = manifest or Manifest(storage, spec.name)
    ts_col = spec.data_schema.timestamp_column
    pool: list[dict] = []
    end = None
    if df is not None and len(df):
        if not pd.api.types.is_datetime64_any_dtype(df[ts_col]):
            df = df.assign(**{ts_col: naive_utc(parse_timestamps(df[ts_col]))})
        pool = _write_pool(spec, storage, run_id, df)
        end = df[ts_col].max().isoformat()
    watermark = end
    if isinstance(spec.source, SqlSource):
        watermark = max(filter(None, [end, manifest.watermark()]), default=None)
    manifest.commit(
        {
            "run_id": run_id,
            "committed_at": datetime.now(UTC).isoformat(),
            "files": [f.to_dict() for f in files],
            "pool": pool,
            "watermark": watermark,
            "result": None if result is None else result.to_dict(),
        }
    )


def _combine(frames: list[pd.DataFrame], key: list[str] | None) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    if key and len(frames) > 1 and set(key) <= set(df.columns):
        df = df.drop_duplicates(subset=key, keep="last").reset_index(drop=True)  # later file wins
    return df


def _summary(outcomes: dict[str, FileOutcome], rows: int, verdict: Any, since: str | None) -> str:
    bad = [o for o in outcomes.values() if o.outcome != "accepted"]
    n = len(outcomes)
    if n == 0:
        return f"no new data since {since or 'the start'} (the last run that took any)"
    if not bad:
        checks = f"; {verdict.summary}" if verdict is not None else ""
        return f"validation passed: {n} new file(s), {rows} rows accepted{checks}"
    words = "; ".join(
        o.reason if o.outcome == "quarantined" else f"unreadable: {o.reason}" for o in bad
    )
    kept = f"{n - len(bad)} of {n} new file(s) accepted ({rows} rows)"
    return f"validation failed: {len(bad)} file(s) quarantined, {kept}: {words}"


def _quarantine(
    storage: Storage,
    spec: ModelSpec,
    run_id: str,
    batch: Batch,
    outcomes: dict[str, FileOutcome],
    frames: dict[str, pd.DataFrame],
    verdicts: dict[str, Any],
    batch_verdict: Any,
) -> str | None:
    """Keep every rejected file aside with its report; returns the run's quarantine folder."""
    root = storage.quarantine_dir(spec.name, run_id)
    bad = {k: o for k, o in outcomes.items() if o.outcome != "accepted"}
    if not bad:
        return None
    by_key = {f.key: f for f in batch.files}
    for k, o in bad.items():
        if o.outcome == "unreadable":
            continue  # collect copied the bytes already
        folder = root / by_key[k].name
        if k in frames:
            storage.write_parquet(frames[k], folder / "batch.parquet")
        elif by_key[k].snapshot:
            storage.copy_into(by_key[k].snapshot, folder / "batch.parquet")
        verdict = verdicts.get(k) or batch_verdict
        report = (
            verdict.to_dict() if verdict is not None else {"success": False, "reason": o.reason}
        )
        storage.write_json({"file": o.source, **report}, folder / "validation.json")
        storage.write_text(o.reason + "\n", folder / "REASON.txt")
        outcomes[k] = replace(o, quarantine=str(folder))
    storage.write_text(
        "\n".join(f"{by_key[k].name}: {o.reason}" for k, o in bad.items()) + "\n",
        root / "REASON.txt",
    )
    return str(root)


# -- the pool ------------------------------------------------------------------------------------


def _write_pool(spec: ModelSpec, storage: Storage, run_id: str, df: pd.DataFrame) -> list[dict]:
    """Accepted rows as one partition per event date, under this run's name."""
    ts_col = spec.data_schema.timestamp_column
    out = []
    root = storage.accepted_dir(spec.name)
    for day, part in df.groupby(df[ts_col].dt.strftime("%Y-%m-%d"), sort=True):
        path = storage.write_parquet(
            part.reset_index(drop=True), root / f"date={day}" / f"{run_key(run_id)}.parquet"
        )
        out.append(
            {
                "path": path.relative_to(storage.root).as_posix(),
                "date": day,
                "rows": len(part),
                "start": part[ts_col].min().isoformat(),
                "end": part[ts_col].max().isoformat(),
            }
        )
    return out


def load_pool(
    spec: ModelSpec,
    storage: Storage,
    *,
    since: pd.Timestamp | None = None,
    until: pd.Timestamp | None = None,
    columns: list[str] | None = None,
    manifest: Manifest | None = None,
) -> pd.DataFrame:
    """Accepted rows with event times in (since, until], reading only the partitions of
    those dates; a key re-landed later replaces the earlier rows."""
    manifest = manifest or Manifest(storage, spec.name)
    ts_col = spec.data_schema.timestamp_column
    lo = None if since is None else since.strftime("%Y-%m-%d")
    hi = None if until is None else until.strftime("%Y-%m-%d")
    parts = [
        p
        for p in manifest.partitions()
        if (lo is None or p["date"] >= lo) and (hi is None or p["date"] <= hi)
    ]
    if not parts:
        return pd.DataFrame(columns=columns or [])
    frames = [storage.read_parquet(storage.root / p["path"], columns=columns) for p in parts]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df[ts_col] = pd.to_datetime(df[ts_col])
    if since is not None:
        df = df[df[ts_col] >= since]
    if until is not None:
        df = df[df[ts_col] <= until]
    key = spec.data_schema.unique_key
    if key and set(key) <= set(df.columns):
        df = df.drop_duplicates(subset=key, keep="last")  # the last committed version wins
    return df.sort_values(ts_col, kind="stable").reset_index(drop=True)


def load_window(
    spec: ModelSpec, storage: Storage, *, days: int, until: str | None = None
) -> pd.DataFrame:
    """The last `days` days of accepted rows up to `until` (the newest accepted row when
    None), reading only the partitions of those days."""
    manifest = Manifest(storage, spec.name)
    ends = [
        min(p["end"], until) if until else p["end"]
        for p in manifest.partitions()
        if until is None or p["start"] <= until
    ]
    if not ends:
        return pd.DataFrame()
    # Partitions are whole days: read from the day before the window could start.
    since = pd.Timestamp(max(ends)).normalize() - pd.Timedelta(days=days + 1)
    df = load_pool(
        spec,
        storage,
        since=since,
        until=None if until is None else pd.Timestamp(until),
        manifest=manifest,
    )
    if df.empty:
        return df
    ts_col = spec.data_schema.timestamp_column
    start = df[ts_col].max() - pd.Timedelta(days=days)
    return df[df[ts_col] > start].reset_index(drop=True)


def previous_tick(schedule: str | None, at: datetime | str | None) -> str | None:
    """The schedule's tick before `at` (UTC ISO), or None without a cron schedule."""
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


STREAMS = ("scoring", "labels")


def stream_spec(spec: ModelSpec, stream: str) -> ModelSpec:
    """The spec as ingestion sees one of the model's other inputs: scoring features or late
    labels. Its own name gives it its own manifest, snapshots and pool; its own source and
    columns give it its own suite (features without the label; key, label and time)."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; known: {STREAMS}")
    section = getattr(spec, stream)
    if section is None:
        raise ConfigError(f"model {spec.name!r} has no {stream} section in its spec")
    schema = spec.data_schema
    ts = schema.timestamp_column
    if stream == "scoring":
        keep = [c for c in schema.columns if c.name != spec.label_column]
    else:
        wanted = {*section.key, spec.label_column, ts}
        keep = [c for c in schema.columns if c.name in wanted]
    data_schema = schema.model_copy(
        update={"columns": keep, "unique_key": list(section.key), "extra_columns": "warn"}
    )
    # model_copy does not validate: the copy is internal and never written out.
    return spec.model_copy(
        update={
            "name": f"{spec.name}__{stream}",
            "source": section.source,
            "data_schema": data_schema,
        }
    )
