"""Watching the champion at work: data quality of scored batches, late-label joins, alarms.

Pure functions of frames and the spec; the operators feed them (scored batches, the
prediction log, the label pool) and record what they return in the history table.
Drift is modelkeeper.monitoring.drift's, realized and estimated metrics are modelkeeper.monitoring.performance's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modelkeeper.contracts.metric_names import higher_is_better
from modelkeeper.data.keys import left_join

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec


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

    `metrics` are measurements as dicts (performance.Measurement.to_dict(), plus the
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
