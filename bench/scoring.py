"""The champion at work: batch scoring throughput and the monitoring step, 10k to 1M rows.

One model is trained once (the demo spec on 2013 weeks 0-7) and logged to a throwaway
SQLite MLflow store exactly as the train task logs it (`Registry.log_model`: signature,
input example); its holdout (week 8) with out-of-sample probabilities and the CBPE
calibration are what evaluate stores as the scoring reference. Then, per size N (rows of
the demo schema resampled, `bench.common.scaled_flights`), each in a fresh process:

- **score**: `mlflow.pyfunc.load_model(<model uri>)` (untimed, as the task loads it once),
  then timed: `scoring.predict_timed` (pyfunc `predict` with signature enforcement plus the
  raw estimator's `predict_proba`, 1k rows a call) and `scoring.predictions_frame`.
- **monitor**: what watch and measure compute for a scored batch of N rows: `compute_drift`
  against the holdout (features and the probability, HTML and JSON report written),
  `monitoring.quality`, `monitoring.join_labels` of N labels, `performance.realized` and
  `performance.estimated` per 7-day window and per `origin` slice.

Peak memory is each process's highest RSS while the timed work ran, minus its RSS just
before (libraries imported, the batch read): what the stage adds on top of its input.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bench.common import in_child, table

SIZES = (10_000, 100_000, 1_000_000)

_SETUP = """
import json
import pandas as pd
from modelkeeper.contracts import lineage as L
from modelkeeper.demo import load_flights, week_frame
from modelkeeper.modeling.evaluation import predict
from modelkeeper.monitoring.cbpe import fit_calibrator
from modelkeeper.records.registry import Registry
from modelkeeper.contracts.spec import get_spec
from modelkeeper.modeling.training import features_frame, fit
from bench.common import scaled_flights

folder = {folder!r}
spec = get_spec("flight_delay")
flights = load_flights()
train = pd.concat([week_frame(flights, w) for w in range(8)], ignore_index=True)
holdout = week_frame(flights, 8)
model = fit(spec, train)
registry = Registry(f"sqlite:///{{folder}}/mlflow.db", artifact_location=f"{{folder}}/artifacts")
run = registry.ensure_run("bench-scoring", "bench", {{}})
uri = registry.log_model(run, model, features_frame(train.head(5), spec))
_, proba = predict(model, features_frame(holdout, spec), spec.target.task)
reference = holdout[[*spec.features.all, spec.data_schema.timestamp_column]].assign(prediction=proba)
reference.to_parquet(f"{{folder}}/reference.parquet", index=False)
calibrator = fit_calibrator(proba, holdout[spec.target.column].to_numpy())
with open(f"{{folder}}/calibration.json", "w") as f:
    json.dump(calibrator.to_dict(), f)
for n in {sizes!r}:
    scaled_flights(n, seed=1).to_parquet(f"{{folder}}/batch_{{n}}.parquet", index=False)
print(json.dumps({{"uri": uri, "holdout_rows": len(holdout)}}))
"""

_PROLOGUE = """
import gc, json, re, time
import pandas as pd


def status(key):
    text = open("/proc/self/status").read()
    return int(re.search(key + r":\\s+(\\d+)", text).group(1)) / 1024  # MB


def reset_peak():
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # peak RSS := current RSS
    return status("VmRSS")
"""

_SCORE = (
    _PROLOGUE
    + """
import mlflow, mlflow.pyfunc
from modelkeeper.serving import scoring
from modelkeeper.contracts.spec import get_spec

folder, n = {folder!r}, {rows}
spec = get_spec("flight_delay")
mlflow.set_tracking_uri(f"sqlite:///{{folder}}/mlflow.db")
model = mlflow.pyfunc.load_model({uri!r})
batch = pd.read_parquet(f"{{folder}}/batch_{{n}}.parquet").drop(columns=[spec.target.column])
scoring.predict_timed(model, batch[spec.features.all].head(2000), spec.target.task)  # warm
before = reset_peak()
started = time.perf_counter()
predicted, timings, failed = scoring.predict_timed(model, batch[spec.features.all], "classification")
predict_s = time.perf_counter() - started
out = scoring.predictions_frame(batch, predicted, spec, "1", "bench")
total_s = time.perf_counter() - started
p50, p95 = scoring.latency(timings)
print(json.dumps({{
    "predict_s": predict_s, "total_s": total_s, "failed": failed, "p50": p50, "p95": p95,
    "rows": len(out), "added_mb": status("VmHWM") - before, "before_mb": before,
}}))
"""
)

_MONITOR = (
    _PROLOGUE
    + """
import numpy as np
from modelkeeper.monitoring import alarms as monitoring
from modelkeeper.monitoring import performance
from modelkeeper.monitoring.drift import compute_drift
from modelkeeper.monitoring.cbpe import Calibrator
from modelkeeper.contracts.spec import get_spec

folder, n = {folder!r}, {rows}
spec = get_spec("flight_delay")
ts, label = spec.data_schema.timestamp_column, spec.target.column
reference = pd.read_parquet(f"{{folder}}/reference.parquet")
calibrator = Calibrator.from_dict(json.load(open(f"{{folder}}/calibration.json")))
batch = pd.read_parquet(f"{{folder}}/batch_{{n}}.parquet")
rng = np.random.default_rng(0)
batch["probability"] = rng.uniform(0, 1, len(batch))  # its predictions (scoring's output)
labels = batch[[*spec.scoring.key, label]].copy()
predictions = batch[list(dict.fromkeys([*spec.scoring.key, ts, "probability"]))].copy()
current = batch.drop(columns=[label]).rename(columns={{"probability": "prediction"}})
compute_drift(reference, current.head(2000), spec, extra_numeric=["prediction"])  # warm
before = reset_peak()
t = {{}}
began = time.perf_counter()
drift = compute_drift(
    reference, current, spec, extra_numeric=["prediction"],
    html_path=__import__("pathlib").Path(f"{{folder}}/drift_{{n}}.html"),
    json_path=__import__("pathlib").Path(f"{{folder}}/drift_{{n}}.json"),
)
t["drift"] = time.perf_counter() - began
began = time.perf_counter()
monitoring.quality(current, spec)
t["quality"] = time.perf_counter() - began
began = time.perf_counter()
joined = monitoring.join_labels(predictions, labels, spec)
t["join"] = time.perf_counter() - began
common = dict(time_column=ts, every="7D", start=spec.monitoring.window_anchor, slices=["origin"])
began = time.perf_counter()
real = performance.realized(joined, label=label, proba="probability", min_rows=200, **common)
t["realized"] = time.perf_counter() - began
began = time.perf_counter()
est = performance.estimated(joined, proba="probability", calibrator=calibrator, min_rows=1, **common)
t["estimated"] = time.perf_counter() - began
assert int(joined[label].notna().sum()) == n, "every label joined"
print(json.dumps({{
    "t": t, "drift_share": drift.drifted_share, "measurements": len(real) + len(est),
    "added_mb": status("VmHWM") - before, "before_mb": before,
}}))
"""
)


def run() -> str:
    folder = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    try:
        setup = in_child(_SETUP.format(folder=str(folder), sizes=SIZES))
        scored = {
            n: in_child(_SCORE.format(folder=str(folder), rows=n, uri=setup["uri"])) for n in SIZES
        }
        watched = {n: in_child(_MONITOR.format(folder=str(folder), rows=n)) for n in SIZES}
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    score_rows = [
        [
            f"{n:,}",
            f"{s['predict_s']:.2f}",
            f"{s['total_s']:.2f}",
            f"**{n / s['total_s']:,.0f}**",
            f"{s['p50']:.1f}",
            f"{s['p95']:.1f}",
            s["failed"],
            f"{s['before_mb']:.0f}",
            f"{s['added_mb']:.0f}",
        ]
        for n, s in scored.items()
    ]
    stages = ("drift", "quality", "join", "realized", "estimated")
    monitor_rows = [
        [
            f"{n:,}",
            *(f"{w['t'][k]:.2f}" for k in stages),
            f"**{sum(w['t'].values()):.2f}**",
            w["measurements"],
            f"{w['before_mb']:.0f}",
            f"{w['added_mb']:.0f}",
        ]
        for n, w in watched.items()
    ]
    return "\n".join(
        [
            "## Scoring and monitoring",
            "",
            "The champion at work (`score_<model>`, `monitor_<model>`): the demo spec's "
            "model trained once on 2013 weeks 0-7, logged with `Registry.log_model` to a "
            "throwaway SQLite MLflow store and loaded with `mlflow.pyfunc.load_model`, as "
            f"the score task loads `models:/<name>@champion`; the scoring reference is its "
            f"week-8 holdout ({setup['holdout_rows']:,} rows, out-of-sample probabilities). "
            "Each row of each table is a fresh process; batches are the demo year "
            "resampled to N rows. *Before MB* = RSS with the libraries imported and the "
            "batch read; *added MB* = the highest RSS while the timed work ran minus that.",
            "",
            "**Scoring** (`predict_timed`: pyfunc `predict` with signature enforcement and "
            "`predict_proba`, 1k rows per call, plus `predictions_frame`; latency per 1k "
            "rows over the batch's calls):",
            "",
            table(
                [
                    "rows",
                    "predict s",
                    "total s",
                    "rows/s",
                    "p50 ms/1k",
                    "p95 ms/1k",
                    "failed",
                    "before MB",
                    "added MB",
                ],
                score_rows,
            ),
            "",
            "**Monitoring step** for a scored batch of N rows (seconds): Evidently drift of "
            "the features and the probability against the holdout (each side sampled to "
            "`drift.sample_rows`, HTML and JSON written), data quality, the join of N late "
            "labels, realized and CBPE-estimated metrics per 7-day window and per origin:",
            "",
            table(
                [
                    "rows",
                    *(f"{k} s" for k in stages),
                    "total s",
                    "measurements",
                    "before MB",
                    "added MB",
                ],
                monitor_rows,
            ),
        ]
    )
