"""The command line of `python -m modelkeeper.backtest <model>` (what `make backtest` runs)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from modelkeeper.backtest.engine import ALL_HISTORY_DAYS, run_backtest
from modelkeeper.backtest.summary import _fmt, report, write_reports
from modelkeeper.contracts.errors import ConfigError, DataError

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec

#: Models whose data source is replayed from a package rather than from landed files.
_DEMO_DATA = {
    "flight_delay": "modelkeeper.demo:load_flights",
    "us_births": "modelkeeper.demo.births:load_births",  # 1970-1971: 104 weeks
    "mpls_stops": "modelkeeper.demo.stops:load_stops",  # 2017: 52 weeks and Dec 31
}


def load_data(spec: ModelSpec, data: str | None = None) -> pd.DataFrame:
    """The rows to replay: `data` (a CSV/Parquet file or glob), else the demo data set of a
    demo model, else every file the spec's source lists under the storage root."""
    import glob
    import importlib

    from modelkeeper.contracts.spec import FileSource
    from modelkeeper.data.storage import Storage

    if data is None and spec.name in _DEMO_DATA:
        module, _, func = _DEMO_DATA[spec.name].partition(":")
        return getattr(importlib.import_module(module), func)()
    if data is None:
        if not isinstance(spec.source, FileSource):
            raise ConfigError(
                f"model {spec.name!r} reads SQL: pass --data with an export of its rows"
            )
        pattern = spec.source.path
        if "://" not in pattern and not Path(pattern).is_absolute():
            pattern = str(Storage().root / pattern)
        data = pattern
    paths = sorted(glob.glob(data)) if any(c in data for c in "*?[") else [data]
    if not paths:
        raise DataError(f"no files match {data!r}")
    frames = []
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"{path}: no such file")
        frames.append(pd.read_csv(path) if path.endswith(".csv") else pd.read_parquet(path))
    return pd.concat(frames, ignore_index=True)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import tempfile

    from modelkeeper.contracts.spec import get_spec

    parser = argparse.ArgumentParser(
        prog="python -m modelkeeper.backtest",
        description="Replay a model's data step by step and compare retraining policies.",
    )
    parser.add_argument("model", help="the spec's name (include/models/<name>.yaml)")
    parser.add_argument("--k", type=int, default=4, help="every_<k>: retrain every k steps")
    parser.add_argument(
        "--windows",
        default=None,
        help="extra training windows to compare, in days or 'all' (comma-separated; '' none; "
        "the spec's own window is skipped; default: the spec's backtest.windows)",
    )
    parser.add_argument("--drift", choices=("spec", "all", "none"), default="spec")
    parser.add_argument("--data", help="CSV/Parquet file or glob to replay instead")
    parser.add_argument("--out", default="backtest", help="reports go to <out>/<model>/")
    parser.add_argument("--workdir", help="keep the replay's storage and MLflow store here")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="native threads per fit and prediction (default 1: on a shared machine OpenMP "
        "threads that wait for each other cost far more than they give; compute is then "
        "comparable across machines and loads)",
    )
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # MLflow warns on every cloudpickled model; the replay logs dozens. Its import sets up
    # the "mlflow" logger, so import it before quieting it.
    import mlflow  # noqa: F401

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    spec = get_spec(args.model)
    chosen = spec.backtest.windows if args.windows is None else args.windows.split(",")
    windows = [
        ALL_HISTORY_DAYS if str(w).strip() == "all" else int(w) for w in chosen if str(w).strip()
    ]
    data = load_data(spec, args.data)
    with tempfile.TemporaryDirectory(prefix=f"backtest-{spec.name}-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        print(f"backtest {spec.name}: {len(data)} rows, work folder {workdir}", flush=True)
        result = run_backtest(
            spec,
            data,
            workdir,
            k=args.k,
            windows=windows,
            drift=args.drift,
            progress=lambda line: print(line, flush=True),
        )
    json_path, html_path = write_reports(result, Path(args.out) / spec.name, args.k)
    data_ = report(result, args.k)
    for name, s in data_["policies"].items():
        print(
            f"{name:>8}: mean {_fmt(s['mean'])} second half {_fmt(s['second_half_mean'])} "
            f"retrains {s['retrains']} promotions {s['promotions']} "
            f"training {s['training_seconds']}s (shadow {s['shadow_seconds']}s) "
            f"compute {s['compute_seconds']}s alarms {s['alarms_paid_off']}/{s['alarms']}"
        )
    for t in data_["targets"]:
        mark = {True: "x", False: " ", None: "-"}[t["met"]]
        print(f"  [{mark}] {t['target']}: {t['value']}")
    print(f"{result.seconds:.0f}s; wrote {json_path} and {html_path}")
    return 0
