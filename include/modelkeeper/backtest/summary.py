"""What a backtest's records add up to: per-policy summaries, the targets, report.json.

Quarters and halves are of the replayed steps (after the warm-up); the targets are the bar
the spec policy is held to against the schedules.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from modelkeeper.backtest.engine import Result
    from modelkeeper.backtest.policies import PolicyRun, StepRecord


def _mean(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return float(np.mean(got)) if got else None


def summarise(result: Result, run: PolicyRun) -> dict:
    """Mean metric overall, per quarter and in the second half of the replayed steps (the
    steps after the warm-up), retrains, promotions, training compute, alarms."""
    records = run.records
    first, last = result.warmup, result.steps - 1  # the replayed (compared) steps

    def part(r: StepRecord, n: int) -> int:
        return min((r.step - first) * n // max(last - first + 1, 1), n - 1)

    quarters = [_mean([r.metric for r in records if part(r, 4) == q]) for q in range(4)]
    second = [r for r in records if part(r, 2) == 1]
    alarms = run.alarms
    retrained = [r for r in records if r.retrain and r.promoted is not None]
    return {
        "mean": _mean([r.metric for r in records]),
        "retrains": len(retrained),
        "promotions": sum(1 for r in records if r.promoted),
        "by_quarter": quarters,
        "second_half_mean": _mean([r.metric for r in second]),
        "second_half_retrains": sum(1 for r in second if r.retrain and r.promoted is not None),
        "alarms": len(alarms),
        "alarms_paid_off": sum(1 for a in alarms if a.paid_off),
        "train_seconds": round(sum(r.train_seconds for r in records), 1),
        "shadow_seconds": round(sum(r.shadow_seconds for r in records), 1),
        "training_seconds": round(sum(r.train_seconds + r.shadow_seconds for r in records), 1),
        "compute_seconds": round(sum(r.compute_seconds for r in records), 1),
        "skipped": [{"step": r.step, "why": r.retrain_reason} for r in records if r.metric is None],
    }


def targets(summary: dict[str, dict], k: int, up: bool) -> list[dict]:
    """The bar the spec policy is held to, each with the numbers behind it; "better" and
    "at least" follow the primary metric's direction (lower is better for rmse)."""
    s, a, e, n = summary["spec"], summary["always"], summary[f"every_{k}"], summary["never"]
    word = "at least" if up else "at most"

    def ok(x: float | None, y: float | None) -> bool:
        return x is not None and y is not None and (x >= y if up else x <= y)

    out = []
    if a["second_half_mean"] is not None:
        need = a["second_half_mean"] * (0.995 if up else 1.005)
        out.append(
            _target(
                f"second-half mean within 0.5% of always's ({word} {need:.4f})",
                s["second_half_mean"],
                ok(s["second_half_mean"], need),
            )
        )
    out.append(
        _target(
            f"second-half mean as good as every_{k}'s ({word} {_fmt(e['second_half_mean'])})",
            s["second_half_mean"],
            ok(s["second_half_mean"], e["second_half_mean"]),
        )
    )
    cap = a["second_half_retrains"] / 3
    out.append(
        _target(
            f"second-half registered retrains at most a third of always's ({cap:.1f})",
            s["second_half_retrains"],
            s["second_half_retrains"] <= cap,
        )
    )
    budget = a["training_seconds"] / 2
    out.append(
        _target(
            f"training compute, shadow fits included, at most half of always's ({budget:.0f} s)",
            s["training_seconds"],
            s["training_seconds"] <= budget,
        )
    )
    worse = [
        q + 1
        for q, (x, y) in enumerate(zip(s["by_quarter"], n["by_quarter"], strict=True))
        if x is not None and y is not None and not ok(x, y)
    ]
    out.append(
        _target(
            "as good as never in every quarter after the warm-up",
            f"worse in quarter(s) {worse}" if worse else "every quarter",
            not worse,
        )
    )
    if s["alarms"]:
        share = s["alarms_paid_off"] / s["alarms"]
        out.append(
            _target(
                "at least half of the alarms paid off",
                f"{s['alarms_paid_off']} of {s['alarms']}",
                share >= 0.5,
            )
        )
    else:
        out.append(_target("at least half of the alarms paid off", "no alarms", None))
    return out


def _target(text: str, value: object, met: bool | None) -> dict:
    """One target; `met` None: not applicable (nothing to judge)."""
    return {"target": text, "value": value, "met": met}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def report(result: Result, k: int) -> dict:
    """report.json: the issue's shape, plus windows, targets, steps and alarms."""
    policies = {name: summarise(result, run) for name, run in result.policies.items()}
    base = policies["always"]["mean"] if "always" in policies else None
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
        "training_window": result.training_window,
        "higher_is_better": result.higher_is_better,
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
    from modelkeeper.backtest.report import render_html
    from modelkeeper.contracts.jsonio import dumps
    from modelkeeper.data.storage import atomic_write

    data = report(result, k)
    out_dir = Path(out_dir)
    text = dumps(data, indent=2)
    json_path = atomic_write(out_dir / "report.json", lambda t: t.write_text(text))
    html = render_html(data)
    html_path = atomic_write(out_dir / "report.html", lambda t: t.write_text(html))
    return json_path, html_path
