"""Tune a spec's retraining thresholds on the first half of its replay (issue: tune honestly).

    .venv/bin/python scripts/tune_backtest.py flight_delay [--until 2013-07-01] [--out DIR]

Replays the rows before `--until` once, with every grid point as a spec-like policy on the
same caches (one training per window and step, shared by every variant), and prints each
variant's mean primary metric, retrains and alarms paid off next to `always` and `every_4`.
The second half is never looked at here; `make backtest` reports it with the chosen spec.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import pandas as pd

from modelkeeper.backtest.cli import load_data
from modelkeeper.backtest.engine import ALL_HISTORY_DAYS, run_backtest
from modelkeeper.backtest.summary import summarise
from modelkeeper.contracts.jsonio import dumps
from modelkeeper.contracts.spec import get_spec

GAINS = (None, 0.0025)  # shadow.min_gain; None: the gate's min_improvement
LEVELS = (0.9, 0.95)  # the shadow's interval
MAX_AGE = (None,)  # a schedule on top of the evidence (42 days never fired: retrains came first)
SAMPLES = (20_000, 30_000)  # shadow.sample_rows


def variants(spec):
    out = {}
    for gain, level, age, rows in itertools.product(GAINS, LEVELS, MAX_AGE, SAMPLES):
        name = f"g{gain or 0:.4f}_l{level:.2f}_a{age or 0}_s{rows // 1000}k"
        update = {"min_gain": gain, "level": level, "sample_rows": rows}
        shadow = spec.retrain.shadow.model_copy(update=update)
        parts = dict(
            retrain=spec.retrain.model_copy(update={"shadow": shadow, "max_age_days": age}),
        )
        out[name] = spec.model_copy(update=parts, deep=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--until", default="2013-07-01", help="replay rows before this day")
    parser.add_argument("--days", type=int, default=ALL_HISTORY_DAYS, help="training window")
    parser.add_argument("--warmup", type=int, default=8, help="weeks ingested before model one")
    parser.add_argument("--out", default="backtest", help="writes <out>/<model>/tuning.json")
    parser.add_argument(
        "--policies", nargs="*", default=["never", "always", "every_4"], help="schedules beside"
    )
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # as make backtest: one native thread per fit (cli.py says why)

    spec = get_spec(args.model)
    spec = spec.model_copy(
        update={
            "window": spec.window.model_copy(update={"training_days": args.days}),
            "backtest": spec.backtest.model_copy(update={"warmup_steps": args.warmup}),
        }
    )
    data = load_data(spec)
    ts = spec.data_schema.timestamp_column
    when = pd.to_datetime(data[ts])
    until = pd.Timestamp(args.until, tz=when.dt.tz)
    data = data[when < until]
    with tempfile.TemporaryDirectory() as tmp:
        result = run_backtest(
            spec, data, Path(tmp), variants=variants(spec), progress=print, policies=args.policies
        )
    rows = {name: summarise(result, run) for name, run in result.policies.items()}
    for name, s in sorted(rows.items(), key=lambda kv: -(kv[1]["mean"] or 0)):
        print(
            f"{name:<24} mean {s['mean']:.4f}  retrains {s['retrains']:>3}  "
            f"promotions {s['promotions']:>3}  training {s['training_seconds']:>6}s  "
            f"alarms paid off {s['alarms_paid_off']}/{s['alarms']}"
        )
    out = Path(args.out) / spec.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "tuning.json").write_text(dumps(rows, indent=2))
    records = {name: [r.to_dict() for r in run.records] for name, run in result.policies.items()}
    alarms = {name: [a.to_dict() for a in run.alarms] for name, run in result.policies.items()}
    (out / "tuning_steps.json").write_text(dumps({"records": records, "alarms": alarms}))
    print(f"{len(rows)} policies, {result.seconds:.0f}s; wrote {out / 'tuning.json'}")


if __name__ == "__main__":
    main()
