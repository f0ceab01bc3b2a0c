"""python -m bench [section ...]: measure the sections (all by default), write the report."""

from __future__ import annotations

import importlib
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPORT = HERE.parent / "docs" / "benchmarks.md"
#: In report order. Each is bench/<name>.py with run() -> Markdown.
SECTIONS = [
    "ingest",
    "parse",
    "validation",
    "training",
    "stages",
    "estimation",
    "scoring",
    "startup",
    "scale",
]


def main(argv: list[str]) -> int:
    wanted = argv or SECTIONS
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        print(f"unknown sections {unknown}; known: {SECTIONS}", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    for name in wanted:
        started = time.perf_counter()
        print(f"bench: {name} ...", flush=True)
        markdown = importlib.import_module(f"bench.{name}").run()
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        took = time.perf_counter() - started
        (RESULTS / f"{name}.md").write_text(
            f"{markdown.rstrip()}\n\n_Measured {stamp} in {took:.0f} s._\n", encoding="utf-8"
        )
        print(f"bench: {name} done in {took:.0f} s", flush=True)
    write_report()
    print(f"bench: wrote {REPORT}")
    return 0


def write_report() -> None:
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench`); each section below is re-measured by "
        "`python -m bench <section>`. Machine: "
        f"{platform.machine()}, Python {platform.python_version()}, "
        f"{_cores()} cores. The machines are shared: read ratios measured in one run, "
        "not absolute seconds.",
        "",
    ]
    for name in SECTIONS:
        path = RESULTS / f"{name}.md"
        parts.append(
            path.read_text(encoding="utf-8")
            if path.exists()
            else f"## {name}\n\n_not measured yet_\n"
        )
        parts.append("")
    REPORT.write_text("\n".join(parts), encoding="utf-8")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
