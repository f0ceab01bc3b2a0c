"""`make bench`: speed and memory of modelkeeper's stages, measured side by side.

Each section is a module here with `run() -> str` returning its Markdown; results are
kept per section in bench/results/<section>.md and assembled into docs/benchmarks.md,
so one section can be re-measured alone (`python -m bench validation`). Not timed tests:
these machines are shared and noisy, so compare ratios measured in the same run.
"""
