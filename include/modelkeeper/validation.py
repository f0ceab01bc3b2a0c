"""Validate a model's input frame against its spec with Great Expectations.

This is the only module in modelkeeper that imports ``great_expectations``: a GX upgrade
touches this file alone. GX is imported inside :func:`validate_frame` (a cold import costs
~10 s), so importing this module stays cheap for DAG parsing.

The expectation suite is a pure function of the spec (``schema`` + ``target``):

* every declared column exists and has a dtype of its declared family;
* non-nullable columns have no nulls; nullable ones at most ``max_null_share`` nulls;
* numeric columns lie within ``min``/``max`` and are finite (+/-inf always fails);
* category columns with ``allowed`` values have at most ``max_unseen_share`` others;
* the row count is within ``min_rows``/``max_rows`` (per-row checks pass on empty frames);
* ``unique_key`` rows are unique; a classification target has at least two classes;
* undeclared columns warn or fail per ``schema.extra_columns``.

Frames GX cannot handle (duplicate or non-string column names) are rejected before GX
runs, with a synthetic result; :func:`validate_frame` does not raise on bad data.
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkeeper.spec import ColumnRule, DataSchema, ModelSpec

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# dtype families as names GX's ExpectColumnValuesToBeInTypeList resolves on pandas: numpy
# dtype names, and pandas extension dtype *class* names (GX instantiates them; "Int64" alone
# is not resolved). Categorical / string / tz-aware datetime columns are normalised to
# object / naive datetime64 first (see _frame_for_gx), because GX cannot name those dtypes.
_INT_TYPES = (
    *(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)),
    *(f"{sign}Int{bits}Dtype" for sign in ("", "U") for bits in (8, 16, 32, 64)),
)
_FLOAT_TYPES = ("float16", "float32", "float64", "Float32Dtype", "Float64Dtype")
_DATETIME_TYPES = tuple(f"datetime64[{unit}]" for unit in ("s", "ms", "us", "ns"))
_BOOL_TYPES = ("bool", "BooleanDtype")
# An object column is checked value by value: every non-null value must be a str.
_CATEGORY_TYPES = ("str",)

# Bounds for numeric columns the spec leaves open: finite, so that +/-inf still fails.
_FLOAT_MAX = sys.float_info.max

_SUITE_NAME = "schema"
_DOCS_SITE = "modelkeeper"
_MAX_STR = 1_000  # longest string kept in results (a frame can hold megabyte-long cells)
_MAX_LISTED = 20  # column names listed in one message


@dataclass(frozen=True)
class ValidationOutcome:
    """What a validation found; ``to_dict()`` is plain JSON for XCom and report files."""

    success: bool
    summary: str
    failures: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    statistics: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


def validate_frame(
    df: pd.DataFrame, spec: ModelSpec, *, docs_dir: Path | None = None
) -> ValidationOutcome:
    """Validate ``df`` against ``spec``'s data schema; never raises on bad data.

    With ``docs_dir``, GX Data Docs (``index.html`` plus expectation and validation pages)
    are built into that folder; a failure to build them becomes a warning, not an error.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_frame expects a pandas DataFrame, got {type(df).__name__}")
    schema = spec.data_schema

    problems = _precheck(df)
    if problems:
        return _rejected(problems, spec)

    declared = {rule.name for rule in schema.columns}
    extras = [c for c in df.columns if c not in declared]
    warns: list[str] = []
    if extras and schema.extra_columns == "warn":
        warns.append(f"unexpected extra columns: {_listed(extras)}")

    frame = _frame_for_gx(df, schema)
    try:
        gx_result, order, docs_warning = _run_gx(frame, spec, docs_dir)
    except _GXRunError as exc:
        return _crashed(exc, spec, len(df), len(df.columns))
    if docs_warning:
        warns.append(docs_warning)

    # GX reports results grouped by column; report failures in suite (= spec) order.
    failed = sorted(
        (r for r in gx_result.results if not r.success),
        key=lambda r: order.get(str(getattr(r.expectation_config, "id", None)), len(order)),
    )
    dtypes = {c: str(df[c].dtype) for c in df.columns}
    failures = [_failure(r, dtypes) for r in failed]
    stats = gx_result.statistics or {}
    statistics = {
        "evaluated": int(stats.get("evaluated_expectations", len(gx_result.results))),
        "successful": int(stats.get("successful_expectations", 0)),
        "unsuccessful": int(stats.get("unsuccessful_expectations", len(failures))),
        "rows": len(df),
        "columns": len(df.columns),
    }
    success = bool(gx_result.success) and not failures
    return ValidationOutcome(
        success=success,
        summary=_summary(success, failures, warns, statistics),
        failures=failures,
        warnings=warns,
        statistics=statistics,
        result=_jsonable(gx_result.to_json_dict()),
    )


# --------------------------------------------------------------------------- suite


def _type_list(rule: ColumnRule) -> list[str]:
    if rule.dtype == "float":
        return [*_FLOAT_TYPES, *_INT_TYPES]
    if rule.dtype == "int":
        # A nullable int column read back from parquet/CSV is float64 when it holds NaN.
        return [*_INT_TYPES, *_FLOAT_TYPES] if rule.nullable else list(_INT_TYPES)
    if rule.dtype == "datetime":
        return list(_DATETIME_TYPES)
    if rule.dtype == "bool":
        return list(_BOOL_TYPES)
    return list(_CATEGORY_TYPES)


def _expectations(spec: ModelSpec) -> list[Any]:
    """The expectation suite for ``spec``, in the order results are reported."""
    import great_expectations.expectations as gxe

    schema = spec.data_schema
    out: list[Any] = []
    for rule in schema.columns:
        col = rule.name
        out.append(gxe.ExpectColumnToExist(column=col))
        out.append(gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=_type_list(rule)))
        mostly = 1.0 if not rule.nullable else round(1.0 - rule.max_null_share, 12)
        if mostly > 0:
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=mostly))
        if rule.dtype in ("float", "int"):
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=col,
                    min_value=rule.min if rule.min is not None else -_FLOAT_MAX,
                    max_value=rule.max if rule.max is not None else _FLOAT_MAX,
                )
            )
        if rule.allowed is not None:
            out.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=col,
                    value_set=list(rule.allowed),
                    mostly=round(1.0 - rule.max_unseen_share, 12),
                )
            )
    out.append(
        gxe.ExpectTableRowCountToBeBetween(min_value=schema.min_rows, max_value=schema.max_rows)
    )
    if schema.unique_key:
        out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(schema.unique_key)))
    if spec.target.task == "classification":
        out.append(
            gxe.ExpectColumnUniqueValueCountToBeBetween(column=spec.target.column, min_value=2)
        )
    if schema.extra_columns == "fail":
        out.append(
            gxe.ExpectTableColumnsToMatchSet(
                column_set=[rule.name for rule in schema.columns], exact_match=True
            )
        )
    return out


# --------------------------------------------------------------------------- frame checks


def _precheck(df: pd.DataFrame) -> list[dict]:
    """Problems that stop GX from running meaningfully, as failure dicts."""
    import pandas as pd

    if isinstance(df.columns, pd.MultiIndex):
        return [
            _synthetic_failure(
                "column_names_are_strings",
                None,
                f"multi-level column index with {df.columns.nlevels} levels; flatten it first",
            )
        ]
    problems = []
    # Parquet cannot store them either (pandas' to_parquet requires string column names).
    bad = [c for c in df.columns if not isinstance(c, str)]
    if bad:
        problems.append(
            _synthetic_failure(
                "column_names_are_strings",
                None,
                f"non-string column names: {_listed(bad)}",
            )
        )
    counts = Counter(c for c in df.columns if isinstance(c, str))
    for name, n in counts.items():
        if n > 1:
            problems.append(
                _synthetic_failure(
                    "column_names_are_unique", name, f"column {name!r} appears {n} times"
                )
            )
    return problems


def _frame_for_gx(df: pd.DataFrame, schema: DataSchema) -> pd.DataFrame:
    """The frame GX sees: a shallow copy, ``df`` itself is not modified.

    * tz-aware datetimes become naive UTC; categorical and string-extension columns declared
      ``category`` become object columns (checked value by value): GX's type check cannot
      name those dtypes.
    * Undeclared columns are dropped unless ``extra_columns`` is "fail" (then GX must see
      them). GX fingerprints every batch by hashing all its cells; an unchecked column of
      megabyte strings would cost seconds for nothing.
    """
    import pandas as pd

    out = None
    if schema.extra_columns != "fail":
        declared = {rule.name for rule in schema.columns}
        keep = [c for c in df.columns if c in declared]
        if len(keep) < len(df.columns):
            out = df[keep].copy(deep=False)
    for rule in schema.columns:
        if rule.name not in df.columns:
            continue
        col = df[rule.name]
        if rule.dtype == "datetime" and isinstance(col.dtype, pd.DatetimeTZDtype):
            new = col.dt.tz_convert(None)
        elif rule.dtype == "category" and isinstance(
            col.dtype, pd.CategoricalDtype | pd.StringDtype
        ):
            new = col.astype(object)
        else:
            continue
        if out is None:
            out = df.copy(deep=False)
        out[rule.name] = new
    return df if out is None else out


# --------------------------------------------------------------------------- GX run


def _import_gx() -> Any:
    """Import GX without its process-wide side effects on warnings and logging."""
    # GX logs hundreds of DEBUG/INFO lines (even at import); keep its warnings and errors,
    # unless the host process configured the logger itself.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    before = warnings.showwarning
    import great_expectations as gx

    if warnings.showwarning is not before:
        # GX's modules call logging.captureWarnings(True) at import; undo it unless it was
        # already on, so warnings keep going wherever the host process sent them.
        logging.captureWarnings(False)
    return gx


def _run_gx(
    frame: pd.DataFrame, spec: ModelSpec, docs_dir: Path | None
) -> tuple[Any, dict[str, int], str | None]:
    """Run the suite on ``frame`` in an ephemeral context; build Data Docs if asked.

    Returns the GX suite result, each expectation id's position in the suite, and a
    warning when Data Docs could not be built.
    """
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas(name="modelkeeper").add_dataframe_asset(name=spec.name)
    batch = asset.add_batch_definition_whole_dataframe(name="whole_frame")
    # Expectations go in before the suite is added: suite.add_expectation() on a stored
    # suite re-serialises the whole suite each time (quadratic; ~2 s for 50 expectations).
    suite = context.suites.add(
        gx.ExpectationSuite(name=f"{spec.name}.{_SUITE_NAME}", expectations=_expectations(spec))
    )
    order = {str(e.id): i for i, e in enumerate(suite.expectations)}
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{spec.name}.validation", data=batch, suite=suite)
    )
    try:
        result = definition.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10},
        )
    except Exception as exc:
        # GX catches errors per expectation; one escaping the run comes from the batch as a
        # whole (GX fingerprints every cell). Bad data must not crash the caller: report it.
        log.exception("Great Expectations failed on the frame")
        raise _GXRunError(f"{type(exc).__name__}: {exc}") from exc

    docs_warning = None
    if docs_dir is not None:
        try:
            _build_docs(context, Path(docs_dir))
        except Exception as exc:  # docs are a by-product: keep the verdict, report why
            log.warning("Data Docs not built in %s", docs_dir, exc_info=True)
            docs_warning = f"data docs not built in {docs_dir}: {type(exc).__name__}: {exc}"
    return result, order, docs_warning


class _GXRunError(RuntimeError):
    """Great Expectations raised while running the suite on the frame."""


def _build_docs(context: Any, docs_dir: Path) -> None:
    docs_dir.mkdir(parents=True, exist_ok=True)
    context.add_data_docs_site(
        site_name=_DOCS_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir.resolve()),
            },
        },
    )
    context.build_data_docs(site_names=[_DOCS_SITE])
    if not (docs_dir / "index.html").is_file():
        raise FileNotFoundError(f"GX reported success but wrote no {docs_dir / 'index.html'}")


# --------------------------------------------------------------------------- reporting


def _failure(r: Any, dtypes: dict[str, str]) -> dict:
    """One failed expectation result as {"expectation", "column", "detail"}."""
    config = r.expectation_config
    kwargs = dict(config.kwargs) if config is not None else {}
    column = kwargs.get("column")
    if column is None and kwargs.get("column_list"):
        column = ",".join(str(c) for c in kwargs["column_list"])
    return {
        "expectation": config.type if config is not None else "unknown",
        "column": column,
        "detail": _clip(_detail(r, kwargs, dtypes), 500),
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


def _detail(r: Any, kwargs: dict, dtypes: dict[str, str]) -> str:
    column = kwargs.get("column")
    if r.expectation_config is not None and r.expectation_config.type == "expect_column_to_exist":
        return "column not in the frame"
    error = _exception_message(r.exception_info)
    if error:
        if isinstance(column, str) and column not in dtypes:
            return f"error: column not in the frame ({error})"
        return f"error: {error}"
    res = r.result or {}
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
            parts.append(f"e.g. {_clip(repr(sample[:5]), 200)}")
    mismatched = (res.get("details") or {}).get("mismatched")
    if isinstance(mismatched, dict):
        for key in ("unexpected", "missing"):
            if mismatched.get(key):
                parts.append(f"{key} columns: {_listed(mismatched[key])}")
    elif "observed_value" in res and not type_check:
        parts.append(f"observed {_clip(repr(res['observed_value']), 200)}")
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
        bits.append(f"in {_clip(repr(list(kwargs['value_set'])), 200)}")
    if kwargs.get("type_list") is not None:
        bits.append(f"type in {_clip(repr(list(kwargs['type_list'])), 120)}")
    mostly = kwargs.get("mostly")
    if mostly is not None and mostly < 1:
        bits.append(f"for at least {mostly:.0%} of rows")
    return ", ".join(bits)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) >= _FLOAT_MAX:
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
        args.append(_clip(head, 120))
    return f"{failure['expectation']}({', '.join(args)})"


def _summary(success: bool, failures: list[dict], warns: list[str], statistics: dict) -> str:
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
    problems: list[dict], spec: ModelSpec, reason: str, rows: int | None, columns: int | None
) -> ValidationOutcome:
    """A failed outcome for a frame GX did not (or could not) validate."""
    result = {
        "success": False,
        "synthetic": True,
        "reason": reason,
        "suite_name": f"{spec.name}.{_SUITE_NAME}",
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
        result=_jsonable(result),
    )


def _rejected(problems: list[dict], spec: ModelSpec) -> ValidationOutcome:
    reasons = "; ".join(p["detail"] for p in problems)
    reason = f"frame rejected before Great Expectations ran: {reasons}"
    return _synthetic(problems, spec, reason, None, None)


def _crashed(exc: _GXRunError, spec: ModelSpec, rows: int, columns: int) -> ValidationOutcome:
    detail = _clip(f"Great Expectations could not run on the frame: {exc}", 500)
    problems = [_synthetic_failure("great_expectations_run", None, detail)]
    return _synthetic(problems, spec, detail, rows, columns)


def _synthetic_failure(name: str, column: str | None, detail: str) -> dict:
    return {"expectation": name, "column": column, "detail": _clip(detail, 500)}


def _listed(names: list[Any]) -> str:
    shown = ", ".join(_clip(repr(n), 80) for n in names[:_MAX_LISTED])
    more = f" (+{len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return f"[{shown}]{more}"


def _clip(text: str, limit: int = _MAX_STR) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more chars]"


def _jsonable(obj: Any) -> Any:
    """Strict JSON: non-finite floats become strings, numpy scalars become Python ones,
    long strings are clipped, anything else unknown becomes its ``str``."""
    if obj is None or isinstance(obj, bool | int):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, str):
        return _clip(obj)
    if isinstance(obj, dict):
        return {_clip(str(k), 200): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(v) for v in obj]
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return _clip(str(obj))
