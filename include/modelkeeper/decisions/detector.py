"""The champion's change detector: a pure step from its baseline and past batches.

Baseline: the champion's primary metric on its holdout (`baseline`, with `baseline_sd`, the
metric's sd on a batch of the holdout's size, from a bootstrap of its rows), then its
first `warmup_batches` labelled batches. Until those are in, the detector only watches:
weeks differ from each other more than rows do (the weather moves a delay model every
week), and those batches tell by how much. After, each batch's shortfall is standardised by
sd = sqrt(sampling sd at the batch's size² + between-batch sd²) and fed to a one-sided
CUSUM whose threshold gives the spec's false-alarm rate per step (decisions.stats).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelkeeper.contracts.metric_names import higher_is_better
from modelkeeper.contracts.results import Detector
from modelkeeper.decisions.stats import cusum_step, cusum_threshold


@dataclass(frozen=True)
class Baseline:
    metric: str
    value: float  # on the holdout
    sd: float  # on a batch of `rows` rows
    rows: int


def detect(
    base: Baseline,
    past: list[tuple[float, int, float]],
    value: float,
    rows: int,
    *,
    false_alarm_rate: float,
    warmup_batches: int,
) -> Detector:
    """The detector after one more batch (`value` on `rows` rows). `past`: the champion's
    earlier batches as (metric, rows, statistic after it), oldest first."""
    threshold = _threshold(false_alarm_rate)
    before = past[-1][2] if past else 0.0
    batches = len(past) + 1
    if batches <= warmup_batches or not math.isfinite(value):
        note = f"warming up: batch {batches} of {warmup_batches} that set its baseline"
        return Detector(0.0, threshold, batches=batches, note=note)
    calib = past[:warmup_batches]
    values = [base.value] + [v for v, _, _ in calib]
    mean = sum(values) / len(values)
    sampling = [_sampling_sd(base, n) ** 2 for _, n, _ in calib]
    spread = sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1)
    between = max(0.0, spread - sum(sampling) / max(len(sampling), 1))
    sd = math.sqrt(_sampling_sd(base, rows) ** 2 + between)
    sign = 1.0 if higher_is_better(base.metric) else -1.0
    z = sign * (mean - value) / sd if sd > 0 else 0.0
    statistic = cusum_step(before, z)
    return Detector(
        statistic=round(statistic, 4),
        threshold=threshold,
        z=round(z, 4),
        baseline=round(mean, 6),
        sd=round(sd, 6),
        batches=batches,
        alarm=statistic > threshold,
    )


def _sampling_sd(base: Baseline, rows: int) -> float:
    """The metric's sampling sd on `rows` rows, scaled from the holdout's (1/sqrt(n))."""
    return base.sd * math.sqrt(base.rows / max(rows, 1))


_THRESHOLDS: dict[float, float] = {}


def _threshold(rate: float) -> float:
    if rate not in _THRESHOLDS:
        _THRESHOLDS[rate] = cusum_threshold(rate)
    return _THRESHOLDS[rate]
