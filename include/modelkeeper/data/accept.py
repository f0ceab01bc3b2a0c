"""accept: validate a batch file by file, quarantine the rejects, commit the rest.

Files with the same columns are validated together (one Great Expectations run on the
combined rows); only when that fails is each file validated on its own, so the failure is
pinned on the file that has it and the other files are still accepted. A batch of late
files only (every row older than the pool's newest) gets the row checks but not the batch
bounds: a few late rows are a supplement, not a short batch. Files whose columns differ
are validated one by one first: a renamed column is reported as missing in the file that
lacks it. A file that passes on its own but fails the whole-batch checks (row count, both
classes) is quarantined with the batch. A rejected file's rows are kept once: its snapshot
moves into the quarantine folder after the commit. manifest.py has the commit protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelkeeper.contracts.results import Accepted, Batch, BatchFile, FileOutcome
from modelkeeper.data.collect import describe_unmatched
from modelkeeper.data.manifest import Manifest
from modelkeeper.data.pool import commit_accepted

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.data.objstore import Location
    from modelkeeper.data.storage import Storage
    from modelkeeper.quality.report import ValidationOutcome

ACCEPTED_SNAPSHOT = "accepted.parquet"
QUARANTINED_ROWS = "batch.parquet"  # a rejected file's rows, in its quarantine folder

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
    row: scoring features, late labels). Idempotent per run: a committed run returns its
    recorded result.
    """
    if validate is None:
        from modelkeeper.quality.validation import validate_frame as validate
    manifest = Manifest(storage, spec.name)
    done = manifest.record(run_id)
    if done is not None and done.get("result"):
        recorded = Accepted.from_dict(done["result"])
        _move_rejected(storage, batch, recorded)  # a kill after the commit left some
        return recorded
    review = _Review(
        batch,
        spec,
        validate,
        docs=storage.report_dir(spec.name, run_id) / "data_docs",
        # Late files (all their rows older than what the pool already holds) supplement
        # earlier batches: they get the row checks, not the batch bounds.
        latest=max((p["end"] for p in manifest.partitions()), default=None),
        row_checks_only=row_checks_only,
    )
    review.open(storage, manifest.taken(excluding=run_id))
    combined = review.judge()
    quarantine = _quarantine(storage, spec, run_id, review)
    result = _result(storage, spec, run_id, review, combined, quarantine)
    commit_accepted(
        spec,
        storage,
        run_id,
        combined if review.accepted else None,
        files=list(review.outcomes.values()),
        result=result,
        manifest=manifest,
        unmatched=batch.unmatched,
    )
    _move_rejected(storage, batch, result)
    return result


@dataclass
class _Review:
    """One batch under review: the files' frames, verdicts and outcomes so far (outcomes
    in the order they were decided: the report and the record list them so)."""

    batch: Batch
    spec: ModelSpec
    validate: Validate
    docs: Location
    latest: str | None  # the newest event time the pool holds
    row_checks_only: bool
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    verdicts: dict[str, ValidationOutcome] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verdict: ValidationOutcome | None = None  # the whole batch's, when it was validated
    accepted: list[str] = field(default_factory=list)
    dropped: int = 0  # rows that repeated a unique_key, dropped under duplicates: keep_last
    by_key: dict[str, BatchFile] = field(init=False)

    def __post_init__(self) -> None:
        self.by_key = {f.key: f for f in self.batch.files}

    def file(self, key: str) -> BatchFile:
        return self.by_key[key]

    def reject(self, f: BatchFile, reason: str) -> None:
        self.outcomes[f.key] = FileOutcome(f.source, f.key, "quarantined", f.rows, reason)

    def open(self, storage: Storage, taken: dict[str, dict]) -> None:
        """Read the files worth validating; settle at once the ones that are not."""
        self.warnings = list(self.batch.skipped)
        unmatched = describe_unmatched(self.batch.unmatched, self.spec)
        if unmatched:
            self.warnings.append(unmatched)
        has_key = bool(self.spec.data_schema.unique_key)
        for f in self.batch.files:
            if f.key in taken:  # a cleared old run: another run committed this file since
                self.warnings.append(f"{f.source}: already taken by run {taken[f.key]['run_id']}")
            elif f.error is not None:
                self.outcomes[f.key] = FileOutcome(
                    f.source, f.key, "unreadable", 0, f.error, f.quarantine
                )
            elif f.relanded and not has_key:
                self.reject(
                    f,
                    f"{f.name} was re-landed with other content and the spec declares no "
                    "schema.unique_key to replace the earlier rows by",
                )
            elif f.rows == 0:
                self.reject(f, f"{f.name} has no rows")
            else:
                self.frames[f.key] = storage.read_parquet(f.snapshot)

    def judge(self) -> pd.DataFrame:
        """Validate; the combined rows of the files accepted (self.accepted)."""
        candidates = list(self.frames)
        if len({tuple(self.file(k).columns) for k in candidates}) > 1:
            candidates = self.judge_alone(candidates)
        combined = self.combine(candidates)
        if candidates:
            self.verdict = self.judge_batch(candidates, combined)
            if not self.verdict.success and len(candidates) > 1:
                candidates = self.judge_alone(candidates)
                combined = self.combine(candidates)
                self.verdict = self.judge_batch(candidates, combined) if candidates else None
            if self.verdict is not None and not self.verdict.success:
                self.failures.extend(self.verdict.failures)
                for k in candidates:
                    self.reject(self.file(k), f"{self.file(k).name}: batch {self.verdict.summary}")
                candidates, combined = [], combined.iloc[0:0]
        for k in candidates:
            f = self.file(k)
            self.outcomes[k] = FileOutcome(f.source, k, "accepted", f.rows)
        self.accepted = candidates
        return combined

    def judge_alone(self, keys: list[str]) -> list[str]:
        """Each file on its own, row checks only; the keys that passed."""
        for k in keys:
            verdict = self.validate(self.dedupe(self.frames[k]), self.spec, checks="rows")
            self.verdicts[k] = verdict
            if not verdict.success:
                name = self.file(k).name
                self.reject(self.file(k), f"{name}: {verdict.summary}")
                self.failures.extend({**x, "file": name} for x in verdict.failures)
        return [k for k in keys if k not in self.outcomes]

    def judge_batch(self, keys: list[str], df: pd.DataFrame) -> ValidationOutcome:
        late = self.latest is not None and all(
            (self.file(k).end or "") <= self.latest for k in keys
        )
        checks = {"checks": "rows"} if late or self.row_checks_only else {}
        return self.validate(df, self.spec, docs_dir=self.docs, **checks)

    def combine(self, keys: list[str]) -> pd.DataFrame:
        frames = [self.frames[k] for k in keys]
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
        kept = self.dedupe(df)
        self.dropped = len(df) - len(kept)
        return kept

    def extra_columns(self) -> list[str]:
        """The undeclared columns any validated file carried (allowed by the spec), once each."""
        seen = [self.verdict, *self.verdicts.values()]
        return list(dict.fromkeys(c for v in seen if v is not None for c in v.extra_columns))

    def dedupe(self, df: pd.DataFrame) -> pd.DataFrame:
        """One rule for rows that repeat a key of the model, however many files they came in
        and whichever path reads them: under `duplicates: keep_last` the last one stays;
        under `refuse` they stay for the validation to refuse, with their count."""
        if self.spec.data_schema.duplicates != "keep_last" or df.empty:
            return df
        # Each of the model's keys, as the validation checks them (ModelSpec.row_keys).
        declared = {rule.name for rule in self.spec.data_schema.columns}
        for key in self.spec.row_keys:
            if set(key) <= declared and set(key) <= set(df.columns):
                df = df.drop_duplicates(subset=key, keep="last").reset_index(drop=True)
        return df


def _result(
    storage: Storage,
    spec: ModelSpec,
    run_id: str,
    review: _Review,
    combined: pd.DataFrame,
    quarantine: str | None,
) -> Accepted:
    """Write the accepted rows' snapshot and the validation report; the run's result."""
    outcomes, verdict = review.outcomes, review.verdict
    rows = len(combined) if review.accepted else 0
    path = start = end = None
    if review.accepted:
        path = str(
            storage.write_parquet(combined, storage.at(review.batch.folder) / ACCEPTED_SNAPSHOT)
        )
        ts = combined[spec.data_schema.timestamp_column]
        start, end = ts.min().isoformat(), ts.max().isoformat()
    report = storage.write_json(
        {
            "files": [o.to_dict() for o in outcomes.values()],
            "batch": None if verdict is None else verdict.to_dict(),
            "per_file": {review.file(k).name: v.to_dict() for k, v in review.verdicts.items()},
        },
        storage.report_dir(spec.name, run_id) / "validation.json",
    )
    index = review.docs / "index.html"
    return Accepted(
        success=all(o.outcome == "accepted" for o in outcomes.values()),
        summary=_summary(outcomes, rows, verdict, review.batch.since, review),
        rows=rows,
        path=path,
        start=start,
        end=end,
        files=list(outcomes.values()),
        failures=review.failures,
        warnings=review.warnings + ([] if verdict is None else verdict.warnings),
        extra_columns=review.extra_columns(),
        report=str(report),
        data_docs=str(index) if index.exists() else None,
        quarantine=quarantine,
    )


def _summary(
    outcomes: dict[str, FileOutcome], rows: int, verdict: Any, since: str | None, review: _Review
) -> str:
    text = _verdict(outcomes, rows, verdict, since, review)
    unmatched = describe_unmatched(review.batch.unmatched, review.spec)
    return f"{text}; {unmatched}" if unmatched else text


def _verdict(
    outcomes: dict[str, FileOutcome], rows: int, verdict: Any, since: str | None, review: _Review
) -> str:
    bad = [o for o in outcomes.values() if o.outcome != "accepted"]
    n = len(outcomes)
    if n == 0:
        return f"no new data since {since or 'the start'} (the last run that took any)"
    if not bad:
        checks = f"; {verdict.summary}" if verdict is not None else ""
        dropped = (
            f" ({review.dropped} rows that repeated a unique_key dropped, the last of each "
            "kept: schema.duplicates keep_last)"
            if review.dropped and rows
            else ""
        )
        return f"validation passed: {n} new file(s), {rows} rows accepted{dropped}{checks}"
    words = "; ".join(
        o.reason if o.outcome == "quarantined" else f"unreadable: {o.reason}" for o in bad
    )
    kept = f"{n - len(bad)} of {n} new file(s) accepted ({rows} rows)"
    return f"validation failed: {len(bad)} file(s) quarantined, {kept}: {words}"


def _quarantine(storage: Storage, spec: ModelSpec, run_id: str, review: _Review) -> str | None:
    """Keep every rejected file's report aside; returns the run's quarantine folder. The
    rows follow after the commit (`_move_rejected`): until then the snapshot is what a
    retry reads."""
    root = storage.quarantine_dir(spec.name, run_id)
    bad = {k: o for k, o in review.outcomes.items() if o.outcome != "accepted"}
    if not bad:
        return None
    for k, o in bad.items():
        if o.outcome == "unreadable":
            continue  # collect copied the bytes already
        folder = root / review.file(k).name
        verdict = review.verdicts.get(k) or review.verdict
        report = (
            verdict.to_dict() if verdict is not None else {"success": False, "reason": o.reason}
        )
        storage.write_json({"file": o.source, **report}, folder / "validation.json")
        storage.write_text(o.reason + "\n", folder / "REASON.txt")
        review.outcomes[k] = replace(o, quarantine=str(folder))
    storage.write_text(
        "\n".join(f"{review.file(k).name}: {o.reason}" for k, o in bad.items()) + "\n",
        root / "REASON.txt",
    )
    return str(root)


def _move_rejected(storage: Storage, batch: Batch, result: Accepted) -> None:
    """Move each quarantined file's snapshot into its quarantine folder, once the run's
    record is committed (a retry before the commit reads the snapshot): the rows sit once
    under the root, not in the snapshot and the quarantine both. Idempotent, so a retry
    after a kill finishes what is left."""
    snapshots = {f.key: f.snapshot for f in batch.files}
    for o in result.files:
        snapshot = snapshots.get(o.key)
        if o.outcome != "quarantined" or not o.quarantine or not snapshot:
            continue
        if storage.at(snapshot).exists():
            storage.move_into(snapshot, storage.at(o.quarantine) / QUARANTINED_ROWS)
