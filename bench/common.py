"""Shared measuring tools: a fresh process per measurement (peak memory is per process),
and demo data scaled to any size."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def in_child(code: str, *, timeout: float = 1800) -> dict:
    """Run `code` in a fresh interpreter; it must print one JSON object as its last line.

    The child's peak RSS (ru_maxrss of the child, in MB) is added as `peak_rss_mb`, so
    every measurement starts from a clean process and memory is not shared between them.
    """
    wrapper = textwrap.dedent(
        """
        import json, resource, sys
        sys.path[:0] = [{root!r}, {plugins!r}]
        {body}
        """
    ).format(
        root=str(ROOT),
        plugins=str(ROOT / "plugins"),
        body=textwrap.indent(textwrap.dedent(code), ""),
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result


PEAK_RSS = "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024"  # MB, Linux


def scaled_flights(rows: int, seed: int = 0):
    """`rows` rows of the demo schema: the 2013 flights resampled (with replacement past
    the year's ~327k). The spec's key (carrier, flight, origin, time_hour) is made unique
    again by numbering the flights of each (carrier, origin, time_hour) group 1, 2, ...
    (unique by construction; groups stay far below the spec's 9999)."""
    import numpy as np

    from modelkeeper.demo import load_flights

    flights = load_flights()
    rng = np.random.default_rng(seed)
    picked = flights.iloc[rng.integers(0, len(flights), size=rows)].reset_index(drop=True)
    picked = picked.sort_values("time_hour", kind="stable").reset_index(drop=True)
    group = picked.groupby(["carrier", "origin", "time_hour"], sort=False)
    picked["flight"] = (group.cumcount() + 1).astype("int64")
    return picked


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def dumps(obj: object) -> str:
    return json.dumps(obj)
