"""Watching the champion at work: data quality of scored batches, late-label joins, alarms.

Pure functions of frames and the spec; the operators feed them (scored batches, the
prediction log, the label pool) and record what they return in the history table.
Drift is modelkeeper.monitoring.drift's, realized and estimated metrics are modelkeeper.monitoring.performance's.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modelkeeper.contracts.metric_names import higher_is_better
from modelkeeper.data.keys import left_join

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelkeeper.contracts.results import Detector
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.decisions.detector import Baseline

#: A window's realized metric stands in for its estimate once its labels cover this share
#: of the window's scored rows: the first labels of a window can be a biased few (its
#: first days), and the estimate of all its rows says more than they do.
REALIZED_COVERAGE = 0.5


# -- data quality ------------------------------------------------------------------------------


def quality(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, float]:
    """Per feature column: null share, unseen-category share (outside `allowed`), and
    out-of-range share (outside `min`/`max`), as {"<column>.<measure>": share}."""
    out: dict[str, float] = {}
    n = max(len(frame), 1)
    for name in spec.features.all:
        rule = spec.data_schema.column(name)
        if name not in frame.columns:
            out[f"{name}.missing_column"] = 1.0
            continue
        col = frame[name]
        out[f"{name}.null_share"] = float(col.isna().sum()) / n
        if rule.allowed is not None:
            present = col.dropna().astype(str)
            out[f"{name}.unseen_share"] = float((~present.isin(rule.allowed)).sum()) / n
        if rule.dtype in ("int", "float") and (rule.min is not None or rule.max is not None):
            values = pd.to_numeric(col, errors="coerce")
            low = values < rule.min if rule.min is not None else False
            high = values > rule.max if rule.max is not None else False
            out[f"{name}.out_of_range_share"] = float(np.sum(low | high)) / n
    return out


# -- late labels ------------------------------------------------------------------------------


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Predictions with their label where it has arrived (left join on the labels' key).

    A label for a key never scored is ignored; a prediction whose label has not come yet
    (or whose key has a missing part) keeps a missing label; duplicated labels of one key
    keep the last one.
    """
    assert spec.labels is not None
    key, label = list(spec.labels.key), spec.label_column
    if predictions.empty:
        return predictions.assign(**{label: pd.Series(dtype="float64")})
    if labels.empty or label not in labels.columns:
        return predictions.assign(**{label: np.nan})
    left = predictions.drop(columns=[label], errors="ignore")
    # Keys may come back typed differently (a time as text, an int as float).
    return left_join(left, labels, key, spec, [label])


# -- alarms --------------------------------------------------------------------------------------


def alarm_reasons(
    spec: ModelSpec,
    *,
    drift_share: float | None = None,
    drift_rows: int = 0,
    metrics: list[dict] = (),  # type: ignore[assignment]
) -> list[tuple[str, str]]:
    """(kind, reason) for every threshold of spec.monitoring the measurements cross.

    `metrics` are measurements as dicts (contracts.results.Measurement.to_dict(), plus the
    version): realized or estimated primary metric, overall or per slice, on windows with
    at least monitoring.min_rows rows.
    """
    m = spec.monitoring
    if m is None:
        return []
    out: list[tuple[str, str]] = []
    if m.drift_share is not None and drift_share is not None and drift_rows >= m.min_rows:
        if drift_share >= m.drift_share:
            out.append(
                (
                    "drift",
                    f"drift: {drift_share:.0%} of columns drifted ≥ {m.drift_share:.0%} "
                    f"on {drift_rows} scored rows",
                )
            )
    primary = spec.metrics.primary
    up = higher_is_better(primary)
    floors = {(None, None): m.metric_floor} if m.metric_floor is not None else {}
    for sf in m.slice_floors:
        floors[(sf.column, "*")] = sf.floor
    for x in metrics:
        if x["metric"] != primary or x["rows"] < m.min_rows:
            continue
        floor = floors.get((x.get("slice_column"), None if x.get("slice_column") is None else "*"))
        if floor is None:
            continue
        value = x["value"]
        if (value < floor) if up else (value > floor):
            where = (
                ""
                if x.get("slice_column") is None
                else f" ({x['slice_column']}={x['slice_value']})"
            )
            out.append(
                (
                    f"{x['kind']}_decay",
                    f"{x['kind']} {primary} {value:.3f}{where} below floor {floor:.3f} in the "
                    f"window from {x['window_start'][:10]} on {x['rows']} rows",
                )
            )
    return out


# -- the change detector over windows ---------------------------------------------------------


def window_values(measurements: Iterable[dict], primary: str, *, min_rows: int) -> list[dict]:
    """One version's primary metric, one measurement a window, oldest window first:
    realized where its labels cover REALIZED_COVERAGE of the window's scored rows, the
    estimate elsewhere; windows with fewer than `min_rows` rows are left out. A window
    measured again keeps its measurement on the most rows (more rows scored, more labels
    in), the latest of equals.

    `measurements`: history rows or Measurement dicts of one version, in the
    order they were recorded."""
    from modelkeeper.monitoring.history import prevailing

    latest: dict[str, dict[str, dict]] = {}
    wanted = [
        m
        for m in measurements
        if m["metric"] == primary
        and m.get("slice_column") is None
        and m["kind"] in ("realized", "estimated")
        and _finite(m.get("value"))
    ]
    for m in prevailing(wanted, per_version=False):  # one version's (or unnamed) rows
        latest.setdefault(m["window_start"], {})[m["kind"]] = m
    out = []
    for start in sorted(latest):
        real, est = latest[start].get("realized"), latest[start].get("estimated")
        covered = real is not None and (  # a row count may be unknown (None): as 0
            est is None or (real.get("rows") or 0) >= REALIZED_COVERAGE * (est.get("rows") or 0)
        )
        chosen = real if covered else est
        if chosen is not None and (chosen.get("rows") or 0) >= min_rows:
            out.append(chosen)
    return out


def detector_over(
    base: Baseline, windows: list[dict], *, false_alarm_rate: float, warmup_batches: int
) -> Detector | None:
    """The champion's change detector (decisions.detector) folded over its windows in
    time order, each window a batch of its rows; its state after the last (None: none)."""
    from modelkeeper.decisions.detector import detect

    past: list[tuple[float, int, float]] = []
    state = None
    for w in windows:
        value, rows = float(w["value"]), int(w["rows"])
        state = detect(
            base,
            past,
            value,
            rows,
            false_alarm_rate=false_alarm_rate,
            warmup_batches=warmup_batches,
        )
        past.append((value, rows, state.statistic))
    return state


def detector_reason(state: Detector, window: dict, version: str | None) -> str:
    """What an alarming detector says: which metric of which window, the statistic
    against its threshold, the baseline."""
    return (
        f"detector: {window['kind']} {window['metric']} {float(window['value']):.3f} in the "
        f"window from {str(window['window_start'])[:10]} on {window['rows']} rows; CUSUM "
        f"{state.statistic:.2f} > threshold {state.threshold:.2f} (baseline "
        f"{state.baseline:.3f} ± {state.sd:.3f}, v{version})"
    )


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
