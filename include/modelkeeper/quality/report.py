"""Great Expectations results as words a person can act on, and as plain JSON.

Turns GX's per-expectation results into failure records ({"expectation", "column",
"detail"}) and a one-line summary that names the failed expectations and columns; builds
the synthetic outcome for frames GX could not (or did not) validate. No GX import here:
validation.py, the GX adapter, hands over result objects and reads only what it needs.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from modelkeeper.contracts.jsonio import clip as _clip_to
from modelkeeper.contracts.jsonio import jsonable

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec

SUITE_NAME = "schema"
MAX_STR = 1_000  # longest string kept in results (a frame can hold megabyte-long cells)
MAX_LISTED = 20  # column names listed in one message
# Bounds for numeric columns the spec leaves open: finite, so that +/-inf still fails.
FLOAT_MAX = sys.float_info.max

_json = partial(jsonable, max_str=MAX_STR)


def suite_name(spec: ModelSpec, checks: str = "all") -> str:
    """The GX suite's name: ``<model>.schema``, ``<model>.schema.rows`` without table checks."""
    base = f"{spec.name}.{SUITE_NAME}"
    return base if checks == "all" else f"{base}.{checks}"


def clip(text: str, limit: int = MAX_STR) -> str:
    return _clip_to(text, limit)


@dataclass(frozen=True)
class ValidationOutcome:
    """What a validation found; ``to_dict()`` is plain JSON for XCom and report files."""

    success: bool
    summary: str
    failures: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    statistics: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)
    # Columns the schema does not declare, under `extra_columns: warn`: allowed, so not a
    # warning; the caller says so once (stages.ingest.validate logs them at info).
    extra_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return _json(asdict(self))


@dataclass(frozen=True)
class NumericProblems:
    """What a numeric column holds that is no usable number (validation._numeric_problems)."""

    infinite: int  # +/-inf values (or strings that read as such)
    not_numbers: int  # values that are not numbers at all, e.g. "n/a" in a float column
    sample: list = field(default_factory=list)  # a few of those, as found

    def words(self, column: str) -> str:
        """ "3 infinite values in distance", "2 values in distance are not numbers (e.g. ...)"."""
        parts = []
        if self.infinite:
            parts.append(f"{self.infinite} infinite value{'s' * (self.infinite != 1)} in {column}")
        if self.not_numbers:
            n = self.not_numbers
            parts.append(
                f"{n} value{'s' * (n != 1)} in {column} {'are' if n != 1 else 'is'} not "
                f"a number (e.g. {clip(repr(self.sample), 120)})"
            )
        return "; ".join(parts)


def failure(
    r: Any, dtypes: dict[str, str], numbers: dict[str, NumericProblems] | None = None
) -> dict:
    """One failed expectation result as {"expectation", "column", "detail"}; `numbers`
    names infinite and non-numeric values of numeric columns in words."""
    config = r.expectation_config
    kwargs = dict(config.kwargs) if config is not None else {}
    column = kwargs.get("column")
    if column is None and kwargs.get("column_list"):
        column = ",".join(str(c) for c in kwargs["column_list"])
    return {
        "expectation": config.type if config is not None else "unknown",
        "column": column,
        "detail": clip(_detail(r, kwargs, dtypes, (numbers or {}).get(column)), 500),
    }


def _exception_message(info: Any) -> str | None:
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    # Several metrics failed: {metric_id: {"raised_exception": ..., ...}}
    for sub in info.values():
        message = _exception_message(sub)
        if message:
            return message
    return None


_UNIQUE = ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique")


def _detail(
    r: Any, kwargs: dict, dtypes: dict[str, str], numbers: NumericProblems | None = None
) -> str:
    column = kwargs.get("column")
    kind = r.expectation_config.type if r.expectation_config is not None else ""
    if kind == "expect_column_to_exist":
        return "column not in the frame"
    error = _exception_message(r.exception_info)
    if numbers is not None and kind == "expect_column_values_to_be_between":
        # GX's own words are a raw comparison or type error ("Column values, min_value,
        # and max_value must either be None or of the same type"): say what is wrong.
        words = numbers.words(str(column))
        unexpected = (r.result or {}).get("unexpected_count")
        others = (unexpected or 0) - numbers.infinite - numbers.not_numbers
        if not error and others > 0:
            words += f"; {others} more outside the range"
        expected = _expected(kwargs)
        return f"{words}; expected {expected}" if expected else words
    if error:
        if isinstance(column, str) and column not in dtypes:
            return f"error: column not in the frame ({error})"
        return f"error: {error}"
    res = r.result or {}
    if kind in _UNIQUE and res.get("unexpected_count") is not None:
        return (
            f"{res['unexpected_count']} rows share their unique_key value with another row "
            "(schema.duplicates: refuse)"
        )
    parts = []
    type_check = kwargs.get("type_list") is not None and column in dtypes
    if type_check:
        # GX's observed value is a scalar type name (e.g. "CategoricalDtypeType"): the
        # column's pandas dtype says more.
        parts.append(f"dtype {dtypes[column]}")
    if res.get("unexpected_count") is not None:
        pct = res.get("unexpected_percent")
        share = f" ({pct:.2f}%)" if isinstance(pct, int | float) and math.isfinite(pct) else ""
        parts.append(f"{res['unexpected_count']} unexpected{share}")
        sample = res.get("partial_unexpected_list")
        if sample:
            parts.append(f"e.g. {clip(repr(sample[:5]), 200)}")
    mismatched = (res.get("details") or {}).get("mismatched")
    if isinstance(mismatched, dict):
        for key in ("unexpected", "missing"):
            if mismatched.get(key):
                parts.append(f"{key} columns: {listed(mismatched[key])}")
    elif "observed_value" in res and not type_check:
        parts.append(f"observed {clip(repr(res['observed_value']), 200)}")
    expected = _expected(kwargs)
    if expected:
        parts.append(f"expected {expected}")
    return "; ".join(parts) or "failed"


def _expected(kwargs: dict) -> str:
    bits = []
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is not None and hi is not None:
        bits.append(f"between {_num(lo)} and {_num(hi)}")
    elif lo is not None:
        bits.append(f"at least {_num(lo)}")
    elif hi is not None:
        bits.append(f"at most {_num(hi)}")
    if kwargs.get("value_set") is not None:
        bits.append(f"in {clip(repr(list(kwargs['value_set'])), 200)}")
    if kwargs.get("type_list") is not None:
        bits.append(f"type in {clip(repr(list(kwargs['type_list'])), 120)}")
    mostly = kwargs.get("mostly")
    if mostly is not None and mostly < 1:
        bits.append(f"for at least {mostly:.0%} of rows")
    return ", ".join(bits)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) >= FLOAT_MAX:
        return "-inf" if value < 0 else "inf"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _short(failure: dict) -> str:
    """``expect_x(column=c, 12 unexpected)`` for the one-line summary."""
    args = [] if failure["column"] is None else [f"column={failure['column']}"]
    parts = failure["detail"].split("; ")
    head = parts[0]
    if head.startswith("dtype ") and len(parts) > 1 and "unexpected" in parts[1]:
        head = f"{head}, {parts[1]}"
    if failure["expectation"] != "expect_column_to_exist" and head != "failed":
        args.append(clip(head, 120))
    return f"{failure['expectation']}({', '.join(args)})"


def summary(success: bool, failures: list[dict], warns: list[str], statistics: dict) -> str:
    evaluated = statistics["evaluated"]
    if success:
        text = f"validation passed: {evaluated} of {evaluated} expectations met"
    else:
        # A missing column makes every other expectation on it error out: report the
        # column once and count the rest.
        missing = {f["column"] for f in failures if f["expectation"] == "expect_column_to_exist"}
        shown = [
            f
            for f in failures
            if f["expectation"] == "expect_column_to_exist"
            or not missing.intersection(str(f["column"]).split(","))
            or not f["detail"].startswith("error:")
        ]
        text = (
            f"validation failed: {len(failures)} of {evaluated} expectations failed: "
            + "; ".join(_short(f) for f in shown)
        )
        hidden = len(failures) - len(shown)
        if hidden:
            text += f" (+{hidden} more on missing columns)"
    if warns:
        text += "; warnings: " + "; ".join(warns)
    return text


def _synthetic(
    problems: list[dict],
    spec: ModelSpec,
    reason: str,
    rows: int | None,
    columns: int | None,
    checks: str,
) -> ValidationOutcome:
    """A failed outcome for a frame GX did not (or could not) validate."""
    result = {
        "success": False,
        "synthetic": True,
        "reason": reason,
        "suite_name": suite_name(spec, checks),
        "results": [
            {
                "success": False,
                "expectation_type": p["expectation"],
                "column": p["column"],
                "detail": p["detail"],
            }
            for p in problems
        ],
        "statistics": {
            "evaluated_expectations": 0,
            "successful_expectations": 0,
            "unsuccessful_expectations": 0,
            "success_percent": None,
        },
    }
    return ValidationOutcome(
        success=False,
        summary=f"validation failed: {reason}",
        failures=problems,
        warnings=[],
        statistics={
            "evaluated": 0,
            "successful": 0,
            "unsuccessful": 0,
            "rows": rows,
            "columns": columns,
        },
        result=_json(result),
    )


def rejected(problems: list[dict], spec: ModelSpec, *, checks: str = "all") -> ValidationOutcome:
    reasons = "; ".join(p["detail"] for p in problems)
    reason = f"frame rejected before Great Expectations ran: {reasons}"
    return _synthetic(problems, spec, reason, None, None, checks)


def crashed(
    exc: Exception, spec: ModelSpec, rows: int, columns: int, *, checks: str = "all"
) -> ValidationOutcome:
    detail = clip(f"Great Expectations could not run on the frame: {exc}", 500)
    problems = [synthetic_failure("great_expectations_run", None, detail)]
    return _synthetic(problems, spec, detail, rows, columns, checks)


def synthetic_failure(name: str, column: str | None, detail: str) -> dict:
    return {"expectation": name, "column": column, "detail": clip(detail, 500)}


def listed(names: list[Any]) -> str:
    shown = ", ".join(clip(repr(n), 80) for n in names[:MAX_LISTED])
    more = f" (+{len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    return f"[{shown}]{more}"


def as_json(obj: Any) -> Any:
    """Strict JSON for a GX result, long strings clipped."""
    return _json(obj)
