"""What a backtest's records add up to: per-policy summaries, the targets, report.json.

Quarters and halves are of the whole replay (warm-up included); the targets are the bar
the spec policy is held to against the schedules.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from modelkeeper.backtest.engine import Result
    from modelkeeper.backtest.policies import PolicyRun, StepRecord


def _mean(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return float(np.mean(got)) if got else None


def summarise(result: Result, run: PolicyRun) -> dict:
    """mean, per quarter of the replay, second half, retrains, promotions, compute, alarms."""
    span = result.steps
    origin = pd.Timestamp(result.origin)
    records = run.records

    def part(r: StepRecord, n: int) -> int:
        offset = (pd.Timestamp(r.start) - origin) / pd.Timedelta(days=result.step_days)
        return min(int(offset * n // span), n - 1)

    quarters = [_mean([r.metric for r in records if part(r, 4) == q]) for q in range(4)]
    second = [r for r in records if part(r, 2) == 1]
    alarms = run.alarms
    return {
        "mean": _mean([r.metric for r in records]),
        "retrains": sum(1 for r in records if r.retrain and r.promoted is not None),
        "promotions": sum(1 for r in records if r.promoted),
        "by_quarter": quarters,
        "second_half_mean": _mean([r.metric for r in second]),
        "second_half_retrains": sum(1 for r in second if r.retrain and r.promoted is not None),
        "alarms": len(alarms),
        "alarms_paid_off": sum(1 for a in alarms if a.paid_off),
        "compute_seconds": round(sum(r.compute_seconds for r in records), 1),
        "train_seconds": round(sum(r.train_seconds for r in records), 1),
    }


def targets(summary: dict[str, dict], k: int, up: bool) -> list[dict]:
    """The issue's bar for the spec policy, each with the numbers behind it."""
    s, a, e, n = summary["spec"], summary["always"], summary[f"every_{k}"], summary["never"]

    def ge(x: float | None, y: float | None) -> bool:
        return x is not None and y is not None and (x >= y if up else x <= y)

    out = []
    if a["second_half_mean"] is not None:
        need = a["second_half_mean"] * (0.995 if up else 1.005)
        out.append(
            {
                "target": f"second-half mean ≥ 99.5% of always ({need:.4f})",
                "value": s["second_half_mean"],
                "met": ge(s["second_half_mean"], need),
            }
        )
    out.append(
        {
            "target": f"second-half mean ≥ every_{k}'s ({_fmt(e['second_half_mean'])})",
            "value": s["second_half_mean"],
            "met": ge(s["second_half_mean"], e["second_half_mean"]),
        }
    )
    cap = a["second_half_retrains"] / 3
    out.append(
        {
            "target": f"second-half retrains ≤ a third of always's ({cap:.1f})",
            "value": s["second_half_retrains"],
            "met": s["second_half_retrains"] <= cap,
        }
    )
    worse = [
        q + 1
        for q, (x, y) in enumerate(zip(s["by_quarter"], n["by_quarter"], strict=True))
        if x is not None and y is not None and not ge(x, y)
    ]
    out.append(
        {
            "target": "≥ never's mean in every quarter",
            "value": f"below in quarter(s) {worse}" if worse else "every quarter",
            "met": not worse,
        }
    )
    share = s["alarms_paid_off"] / s["alarms"] if s["alarms"] else None
    out.append(
        {
            "target": "≥ half of the alarms paid off",
            "value": f"{s['alarms_paid_off']} of {s['alarms']}",
            "met": share is not None and share >= 0.5,
        }
    )
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def report(result: Result, k: int) -> dict:
    """report.json: the issue's shape, plus windows, targets, steps and alarms."""
    policies = {name: summarise(result, run) for name, run in result.policies.items()}
    base = policies["always"]["mean"]
    for s in policies.values():
        s["gap_to_always"] = None if base is None or s["mean"] is None else s["mean"] - base
    windows = {
        label: {name: summarise(result, run) for name, run in runs.items()}
        for label, runs in result.windows.items()
    }
    return {
        "model": result.model,
        "steps": result.steps,
        "policies": policies,
        "primary": result.primary,
        "step_days": result.step_days,
        "warmup_steps": result.warmup,
        "origin": result.origin,
        "seconds": round(result.seconds, 1),
        "windows": windows,
        "targets": targets(policies, k, result.higher_is_better)
        if {"spec", "always", "never", f"every_{k}"} <= set(policies)
        else [],
        "records": {
            name: [r.to_dict() for r in run.records] for name, run in result.policies.items()
        },
        "alarms": [a.to_dict() for a in result.policies["spec"].alarms]
        if "spec" in result.policies
        else [],
    }


def write_reports(result: Result, out_dir: Path, k: int) -> tuple[Path, Path]:
    """report.json (strict JSON) and report.html in `out_dir`."""
    import json

    from modelkeeper.backtest.report import render_html
    from modelkeeper.contracts.jsonio import jsonable
    from modelkeeper.data.storage import atomic_write

    data = report(result, k)
    out_dir = Path(out_dir)
    text = json.dumps(jsonable(data), indent=2, allow_nan=False)
    json_path = atomic_write(out_dir / "report.json", lambda t: t.write_text(text))
    html = render_html(data)
    html_path = atomic_write(out_dir / "report.html", lambda t: t.write_text(html))
    return json_path, html_path
