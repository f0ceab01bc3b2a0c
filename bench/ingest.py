"""Ingestion and training against a long history: does a run cost what is new?

For 10, 50 and 200 weeks of landed history (the demo year replayed with dates shifted by
whole 52-week years, so weekdays line up), every history file is committed to the
manifest and pool as validate commits them, then one new week lands. Measured in a fresh
process each: `collect` (list the files, open only the new one) plus `accept` (validate
and commit it), then the training read of the spec's window (`load_accepted`) and `fit`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.common import PEAK_RSS, in_child, table

HISTORY = (10, 50, 200)
TARGET_RATIO = 1.5

_SETUP = """
import sys, time
from pathlib import Path

import pandas as pd

from modelkeeper import demo
from modelkeeper.contracts.results import FileOutcome
from modelkeeper.data.pool import commit_accepted
from modelkeeper.data.sources import list_files
from modelkeeper.contracts.spec import get_spec
from modelkeeper.data.storage import Storage

spec, storage = get_spec("flight_delay"), Storage({root!r})
flights = demo.load_flights()
landing = storage.landing_dir() / "flights"
landing.mkdir(parents=True, exist_ok=True)


def week(n):
    # Week n of an endless replay: demo week n % 52, shifted by whole 52-week years.
    frame = demo.week_frame(flights, n % 52)
    return frame.assign(time_hour=frame["time_hour"] + pd.Timedelta(weeks=52 * (n // 52)))


for n in range({weeks}):
    frame = week(n)
    path = landing / f"week_{{n:04d}}.parquet"
    frame.to_parquet(path, index=False)
    [fid] = [f for f in list_files(str(path), base=storage.root)]
    commit_accepted(
        spec, storage, f"history_{{n:04d}}", frame,
        files=[FileOutcome(fid.path, fid.key, "accepted", len(frame))],
    )
week({weeks}).to_parquet(landing / "week_{weeks:04d}.parquet", index=False)
print("{{}}")
"""

_MEASURE = """
import json, resource, time

from modelkeeper.data.accept import accept
from modelkeeper.data.collect import collect
from modelkeeper.contracts.spec import get_spec
from modelkeeper.data.storage import Storage
from modelkeeper.modeling.training import fit, load_accepted, time_split
from modelkeeper.quality.validation import _import_gx

spec, storage = get_spec("flight_delay"), Storage({root!r})
_import_gx()  # a worker imports GX once; the run's own cost is what follows
started = time.perf_counter()
batch = collect(spec, storage, "new_run")
collect_s = time.perf_counter() - started
started = time.perf_counter()
accepted = accept(batch, spec, storage, "new_run")
accept_s = time.perf_counter() - started
assert accepted.success and len(batch.files) == 1, accepted.summary
ingest_rss = {peak}
started = time.perf_counter()
window = load_accepted(spec, storage)
load_s = time.perf_counter() - started
split = time_split(window, spec)
started = time.perf_counter()
fit(spec, split.train)
fit_s = time.perf_counter() - started
print(json.dumps({{
    "collect_s": collect_s, "accept_s": accept_s, "load_s": load_s, "fit_s": fit_s,
    "window_rows": len(window), "new_rows": batch.rows,
    "ingest_rss_mb": ingest_rss, "peak_rss_mb": {peak},
}}))
"""


def measure(weeks: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"mk-bench-ingest-{weeks}-"))
    try:
        in_child(_SETUP.format(root=str(root), weeks=weeks))
        return in_child(_MEASURE.format(root=str(root), peak=PEAK_RSS))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run() -> str:
    results = {weeks: measure(weeks) for weeks in HISTORY}
    base = results[HISTORY[0]]
    rows = [
        [
            weeks,
            f"{r['new_rows']:,}",
            f"{r['collect_s']:.3f}",
            f"{r['collect_s'] / base['collect_s']:.2f}x",
            f"{r['accept_s']:.2f}",
            f"{r['window_rows']:,}",
            f"{r['load_s']:.2f}",
            f"{r['fit_s']:.1f}",
            f"{r['ingest_rss_mb']:.0f}",
            f"{r['peak_rss_mb']:.0f}",
        ]
        for weeks, r in results.items()
    ]
    ratio = results[HISTORY[-1]]["collect_s"] / base["collect_s"]
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    return "\n".join(
        [
            "## Ingestion and training with a long history",
            "",
            "One new week lands on top of N weeks already ingested (the demo year replayed "
            "with shifted dates). `collect` lists the landing folder and opens only the new "
            "file; `accept` validates it (GX imported beforehand) and commits; training reads "
            "only the partitions of its 56-day window. Each row is a fresh process.",
            "",
            f"**Target: collect with 200 weeks of history within {TARGET_RATIO}x of 10 weeks. "
            f"{verdict.capitalize()}: {ratio:.2f}x.**",
            "",
            table(
                [
                    "history weeks",
                    "new rows",
                    "collect s",
                    "vs 10 weeks",
                    "accept s",
                    "window rows",
                    "load window s",
                    "fit s",
                    "RSS after ingest MB",
                    "peak RSS MB",
                ],
                rows,
            ),
        ]
    )
