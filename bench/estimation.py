"""Estimated vs realized performance (CBPE) on the demo year.

The champion is trained as the DAG trains it: `modelkeeper.modeling.training.fit` on 2013 weeks
0-7 after `time_split`, which holds out the last 7 days (week 7) and trains on the rest.
Its predicted probabilities on that holdout, with their labels, fit the calibrator
(isotonic, `modelkeeper.monitoring.cbpe.fit_calibrator`). Every later week 8..52 is then
scored twice: **realized** (`performance.realized`, the labels at hand) and **estimated**
(`performance.estimated`, CBPE from the probabilities alone, as if the labels had not
arrived yet). The gap is estimated - realized, per week (7-day windows from Jan 1, the
demo's weeks; week 52 is Dec 31 alone).

A second champion is retrained every 4 weeks the same way (weeks w-8..w-1, calibrator on
its own holdout week w-1) and judged on weeks w..w+3, as a retraining schedule would.
Measured in this process: these are quality numbers, not speed.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from bench.common import table

FIRST_WEEK = 8
RETRAIN_EVERY = 4
TRAIN_WEEKS = 8
PRIMARY = "roc_auc"


def _score(model, frame: pd.DataFrame, spec) -> pd.DataFrame:
    from modelkeeper.modeling.training import features_frame

    proba = model.predict_proba(features_frame(frame, spec))[:, 1]
    return pd.DataFrame(
        {
            "time_hour": frame[spec.data_schema.timestamp_column].to_numpy(),
            "proba": proba,
            "label": frame[spec.target.column].to_numpy(),
        }
    )


def _champion(flights: pd.DataFrame, spec, weeks: range):
    from modelkeeper.demo import week_frame
    from modelkeeper.modeling.training import fit, time_split
    from modelkeeper.monitoring.cbpe import fit_calibrator

    window = pd.concat([week_frame(flights, w) for w in weeks], ignore_index=True)
    split = time_split(window, spec)
    model = fit(spec, split.train)
    held = _score(model, split.holdout, spec)
    return model, fit_calibrator(held["proba"], held["label"]), len(split.train), len(held)


def _measure(scored: pd.DataFrame, calibrator, min_rows: int) -> pd.DataFrame:
    """One row per (week, metric): realized, estimated (calibrated), estimated (raw)."""
    from modelkeeper.demo import YEAR_START
    from modelkeeper.monitoring.performance import as_frame, estimated, realized

    kw = {"proba": "proba", "time_column": "time_hour", "min_rows": min_rows}
    kw["start"] = YEAR_START
    parts = {
        "realized": realized(scored, label="label", **kw),
        "estimated": estimated(scored.drop(columns="label"), calibrator=calibrator, **kw),
        "raw": estimated(scored.drop(columns="label"), calibrator=None, **kw),
    }
    frames = []
    for name, measured in parts.items():
        f = as_frame(measured)[["window_start", "metric", "value", "rows"]]
        frames.append(f.rename(columns={"value": name}).set_index(["window_start", "metric"]))
    joined = frames[0].join(frames[1].drop(columns="rows")).join(frames[2].drop(columns="rows"))
    joined = joined.reset_index()
    start = pd.Timestamp(YEAR_START)
    joined["week"] = ((pd.to_datetime(joined["window_start"]) - start).dt.days // 7).astype(int)
    # The share delayed, realized and as the calibrated probabilities expect it: where
    # they part, the calibration fitted on the holdout no longer holds that week.
    week = ((scored["time_hour"] - start).dt.days // 7).to_numpy()
    rates = (
        pd.DataFrame(
            {
                "week": week,
                "rate": scored["label"],
                "expected_rate": calibrator.apply(scored["proba"]),
            }
        )
        .groupby("week", as_index=False)[["rate", "expected_rate"]]
        .mean()
    )
    joined = joined.merge(rates, on="week", how="left")
    return joined.dropna(subset=["realized", "estimated"])


def _summary(name: str, m: pd.DataFrame, metrics: list[str]) -> list[list[object]]:
    rows = []
    for metric in metrics:
        one = m[m["metric"] == metric]
        gap = one["estimated"] - one["realized"]
        raw_gap = one["raw"] - one["realized"]
        r = np.corrcoef(one["realized"], one["estimated"])[0, 1] if len(one) > 2 else np.nan
        rows.append(
            [
                name,
                metric,
                len(one),
                f"{one['realized'].mean():.4f}",
                f"{one['estimated'].mean():.4f}",
                f"**{gap.abs().mean():.4f}**",
                f"{gap.mean():+.4f}",
                f"{gap.abs().max():.4f}",
                f"{r:.2f}",
                f"{raw_gap.abs().mean():.4f}",
            ]
        )
    return rows


def _controls(scored: pd.DataFrame, calibrator, min_rows: int) -> dict[str, float]:
    """What the gap would be if CBPE's assumption held, and how far the labels are from it.

    Control: the same scores, with each label redrawn from its calibrated probability
    (seeded), so the calibration holds by construction. Clustering: the spread of the
    delayed share between days, realized against what the calibrated probabilities
    expect, and the binomial noise independent labels would add.
    """
    from modelkeeper.demo import YEAR_START
    from modelkeeper.monitoring.performance import as_frame, estimated, realized

    c = calibrator.apply(scored["proba"])
    rng = np.random.default_rng(0)
    simulated = scored.assign(label=(rng.random(len(scored)) < c).astype("int64"))
    kw = {"proba": "proba", "time_column": "time_hour", "min_rows": min_rows}
    kw |= {"start": YEAR_START, "metrics": [PRIMARY]}
    real = as_frame(realized(simulated, label="label", **kw)).set_index("window_start")
    est = as_frame(estimated(simulated, calibrator=calibrator, **kw)).set_index("window_start")
    days = scored.assign(c=c, day=scored["time_hour"].dt.floor("D")).groupby("day")
    daily = days.agg(rate=("label", "mean"), expected=("c", "mean"), n=("label", "size"))
    noise = float(np.sqrt((daily["expected"] * (1 - daily["expected"]) / daily["n"]).mean()))
    return {
        "simulated_gap": float((est["value"] - real["value"]).abs().mean()),
        "daily_sd": float(daily["rate"].std()),
        "daily_expected_sd": float(daily["expected"].std()),
        "daily_noise_sd": noise,
    }


def run() -> str:
    from modelkeeper.contracts.spec import get_spec
    from modelkeeper.demo import N_WEEKS, load_flights, week_frame
    from modelkeeper.monitoring.cbpe import METRICS

    started = time.perf_counter()
    spec = get_spec("flight_delay")
    flights = load_flights()
    min_rows = spec.retrain.min_new_rows
    later = pd.concat(
        [week_frame(flights, w) for w in range(FIRST_WEEK, N_WEEKS)], ignore_index=True
    )

    # A champion trained once on weeks 0-7 and never replaced.
    model, calibrator, train_rows, holdout_rows = _champion(flights, spec, range(TRAIN_WEEKS))
    scored = _score(model, later, spec)
    static = _measure(scored, calibrator, min_rows)
    controls = _controls(scored, calibrator, min_rows)

    # A champion retrained every RETRAIN_EVERY weeks on the 8 weeks before.
    pieces = []
    for first in range(FIRST_WEEK, N_WEEKS, RETRAIN_EVERY):
        model_w, cal_w, _, _ = _champion(flights, spec, range(first - TRAIN_WEEKS, first))
        judged = range(first, min(first + RETRAIN_EVERY, N_WEEKS))
        frame = pd.concat([week_frame(flights, w) for w in judged], ignore_index=True)
        pieces.append(_measure(_score(model_w, frame, spec), cal_w, min_rows))
    retrained = pd.concat(pieces, ignore_index=True)
    took = time.perf_counter() - started

    s, r = (m[m["metric"] == PRIMARY].set_index("week") for m in (static, retrained))
    weekly = []
    for week in s.index:
        row = s.loc[week]
        again = r.loc[week] if week in r.index else None
        weekly.append(
            [
                week,
                row["window_start"][:10],
                f"{int(row['rows']):,}",
                f"{row['realized']:.4f}",
                f"{row['estimated']:.4f}",
                f"{row['estimated'] - row['realized']:+.4f}",
                f"{row['raw'] - row['realized']:+.4f}",
                f"{row['rate']:.3f} / {row['expected_rate']:.3f}",
                "" if again is None else f"{again['realized']:.4f}",
                "" if again is None else f"{again['estimated']:.4f}",
                "" if again is None else f"{again['estimated'] - again['realized']:+.4f}",
            ]
        )
    static_gap = (s["estimated"] - s["realized"]).abs().mean()
    static_raw_gap = (s["raw"] - s["realized"]).abs().mean()
    retrained_gap = (r["estimated"] - r["realized"]).abs().mean()
    drop = s["realized"].max() - s["realized"].min()
    # Does the estimate miss most where the calibration broke (the delayed share moved)?
    rate_miss = (s["rate"] - s["expected_rate"]).abs()
    auc_miss = (s["estimated"] - s["realized"]).abs()
    miss_r = np.corrcoef(rate_miss, auc_miss)[0, 1]
    worst = rate_miss >= rate_miss.quantile(0.75)
    summary_header = [
        "champion",
        "metric",
        "weeks",
        "mean realized",
        "mean estimated",
        "mean abs gap",
        "mean gap",
        "max abs gap",
        "r (weekly)",
        "mean abs gap, uncalibrated",
    ]
    summary = _summary("trained once", static, list(METRICS))
    summary += _summary(f"retrained every {RETRAIN_EVERY} weeks", retrained, list(METRICS))
    return "\n".join(
        [
            "## Estimated vs realized performance (CBPE)",
            "",
            "The `flight_delay` champion on the demo year: trained on weeks 0-7 as the DAG "
            f"trains it ({train_rows:,} rows, holdout week 7 of {holdout_rows:,} rows fits "
            "the isotonic calibrator), then scored on every later week 8..52 twice: "
            "**realized** (`modelkeeper.monitoring.performance.realized`, with the labels) and "
            "**estimated** (`modelkeeper.monitoring.performance.estimated`: CBPE from the "
            "probabilities alone). Gap = estimated - realized. Weeks are 7-day windows from "
            f"2013-01-01 (week 52 is Dec 31 alone); each has at least {min_rows} rows "
            "(the spec's `retrain.min_new_rows`). A second champion is retrained every "
            f"{RETRAIN_EVERY} weeks on the {TRAIN_WEEKS} weeks before (its calibrator on its "
            "own holdout week) and judged on the next 4 weeks. *Uncalibrated* is CBPE on the "
            "raw probabilities, without the calibrator.",
            "",
            f"**{PRIMARY}: mean absolute gap per week {static_gap:.4f} for the champion "
            f"trained once (the realized {PRIMARY} ranges over {drop:.3f} across the "
            f"weeks), {retrained_gap:.4f} for the one retrained every {RETRAIN_EVERY} "
            "weeks.**",
            "",
            table(summary_header, summary),
            "",
            "r (weekly) is the correlation across weeks between realized and estimated: "
            "whether the estimate moves when the realized metric moves. CBPE sees only the "
            "score distribution: it follows covariate shift (other hours, routes, weather, "
            "scored as well as before) and assumes every label is an independent coin with "
            "its calibrated probability. The algorithm is not what limits it here: "
            "**with each label of weeks 8..52 redrawn from its calibrated probability (same "
            f"scores), the mean abs {PRIMARY} gap per week is {controls['simulated_gap']:.4f}"
            "**. The real labels are not such coins: delays come by the day (a storm or a "
            "ground stop delays a large share of a day's flights, whatever their hour or route). The "
            f"delayed share of a day has a standard deviation of {controls['daily_sd']:.3f} "
            f"across the days of weeks 8..52, the calibrated probabilities expect "
            f"{controls['daily_expected_sd']:.3f}, and independent labels would add only "
            f"about {controls['daily_noise_sd']:.3f}. So a week's labels move together in "
            "ways neither the features nor the holdout's calibration carry: the realized "
            f"{PRIMARY} swings from week to week while the estimate stays near its holdout "
            "level. The per-week delayed share (realized / expected in the table) explains "
            f"only part of the misses: the {PRIMARY} miss correlates {miss_r:.2f} with the "
            "share's miss, and the quarter of weeks whose share is missed most have a mean "
            f"abs {PRIMARY} gap of {auc_miss[worst].mean():.4f} against "
            f"{auc_miss[~worst].mean():.4f} for the others. For {PRIMARY}, calibration "
            f"halves the gap ({static_raw_gap:.4f} uncalibrated).",
            "",
            f"Per week, {PRIMARY}:",
            "",
            table(
                [
                    "week",
                    "from",
                    "rows",
                    "realized (once)",
                    "estimated (once)",
                    "gap",
                    "gap uncalibrated",
                    "delayed share: realized / expected (once)",
                    f"realized (every {RETRAIN_EVERY})",
                    f"estimated (every {RETRAIN_EVERY})",
                    "gap",
                ],
                weekly,
            ),
            "",
            f"_{1 + len(range(FIRST_WEEK, N_WEEKS, RETRAIN_EVERY))} fits, {took:.0f} s._",
        ]
    )
