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
* rows are unique by each of the spec's keys whose columns the suite checks (``unique_key``,
  the scoring and the labels key: ``ModelSpec.row_keys``); a classification target has at
  least two classes;
* undeclared columns fail under ``schema.extra_columns: fail``; under ``warn`` (allowed)
  they are listed in the outcome's ``extra_columns``, not in its warnings.

``checks="rows"`` leaves out the two table-level expectations (row count bounds and the
target's class count), for validating one file of a batch whose whole is checked with
``checks="all"``; everything else, the key's uniqueness included, stays.

Speed (bench/validation.py; 1M rows of the demo schema, 54 expectations): GX's pandas
engine filters the *whole* batch for every column metric (``df[df[col].notnull()]``), a
full copy of every column each time. The suite runs under pandas copy-on-write, where an
all-true filter is a lazy copy, and without the per-expectation "unexpected index query"
(a string listing every unexpected row index); verdicts and results are otherwise GX's own.

Frames GX cannot handle (duplicate or non-string column names) are rejected before GX
runs, with a synthetic result; :func:`validate_frame` does not raise on bad data.
Turning GX's results into words and JSON is validation_report.py's job.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelkeeper.contracts.spec import ColumnRule, DataSchema, ModelSpec
from modelkeeper.quality import report
from modelkeeper.quality.report import ValidationOutcome

__all__ = ["Checks", "ValidationOutcome", "validate_frame"]

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.data.objstore import Location

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

_DOCS_SITE = "modelkeeper"

#: "all": the whole suite; "rows": without the table-level row-count and class-count checks.
Checks = Literal["all", "rows"]
_CHECKS = ("all", "rows")
# SUMMARY keeps a sample of unexpected values with their counts and row indices (the Data
# Docs show them). The unexpected index query is a string naming every unexpected row
# (megabytes on a large bad batch, clipped in the result anyway) and costs GX one more
# full-batch filter per expectation: left out.
_RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 10,
    "return_unexpected_index_query": False,
}


def validate_frame(
    df: pd.DataFrame,
    spec: ModelSpec,
    *,
    docs_dir: Path | Location | None = None,
    checks: Checks = "all",
) -> ValidationOutcome:
    """Validate ``df`` against ``spec``'s data schema; never raises on bad data.

    With ``docs_dir``, GX Data Docs (``index.html`` plus expectation and validation pages)
    are built into that folder; a failure to build them becomes a warning, not an error.
    ``checks="rows"`` leaves out the table-level expectations (``min_rows``/``max_rows``
    and the classification target's two classes), e.g. for one file of a larger batch:
    then an empty frame passes, since every other check is per row.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_frame expects a pandas DataFrame, got {type(df).__name__}")
    if checks not in _CHECKS:
        raise ValueError(f"checks must be one of {_CHECKS}, got {checks!r}")
    schema = spec.data_schema

    problems = _precheck(df)
    if problems:
        return report.rejected(problems, spec, checks=checks)

    declared = {rule.name for rule in schema.columns}
    extras = [c for c in df.columns if c not in declared]
    warns: list[str] = []

    frame = _frame_for_gx(df, schema)
    try:
        gx_result, order, docs_warning = _run_gx(frame, spec, docs_dir, checks)
    except _GXRunError as exc:
        return report.crashed(exc, spec, len(df), len(df.columns), checks=checks)
    if docs_warning:
        warns.append(docs_warning)

    # GX reports results grouped by column; report failures in suite (= spec) order.
    failed = sorted(
        (r for r in gx_result.results if not r.success),
        key=lambda r: order.get(str(getattr(r.expectation_config, "id", None)), len(order)),
    )
    dtypes = {c: str(df[c].dtype) for c in df.columns}
    numbers = _numeric_problems(df, schema)
    failures = [report.failure(r, dtypes, numbers) for r in failed]
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
        summary=report.summary(success, failures, warns, statistics),
        failures=failures,
        warnings=warns,
        statistics=statistics,
        result=report.as_json(gx_result.to_json_dict()),
        extra_columns=[report.clip(c, 200) for c in extras]
        if schema.extra_columns == "warn"
        else [],
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


def _expectations(spec: ModelSpec, checks: Checks = "all") -> list[Any]:
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
                    min_value=rule.min if rule.min is not None else -report.FLOAT_MAX,
                    max_value=rule.max if rule.max is not None else report.FLOAT_MAX,
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
    table_level = checks == "all"
    if table_level:
        out.append(
            gxe.ExpectTableRowCountToBeBetween(min_value=schema.min_rows, max_value=schema.max_rows)
        )
    # Every key of the model whose columns this suite checks, on every path alike (one
    # file, one verdict: training data, scoring rows and labels).
    declared = {rule.name for rule in schema.columns}
    for key in spec.row_keys:
        if not set(key) <= declared:
            continue
        if len(key) == 1:  # GX's compound expectation refuses a single column
            out.append(gxe.ExpectColumnValuesToBeUnique(column=key[0]))
        else:
            out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=key))
    if table_level and spec.target.task == "classification":
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
            report.synthetic_failure(
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
            report.synthetic_failure(
                "column_names_are_strings",
                None,
                f"non-string column names: {report.listed(bad)}",
            )
        )
    counts = Counter(c for c in df.columns if isinstance(c, str))
    for name, n in counts.items():
        if n > 1:
            problems.append(
                report.synthetic_failure(
                    "column_names_are_unique", name, f"column {name!r} appears {n} times"
                )
            )
    return problems


def _numeric_problems(df: pd.DataFrame, schema: DataSchema) -> dict[str, report.NumericProblems]:
    """Per numeric column (int/float in the spec): how many values are infinite and how
    many are not numbers at all, so a failed range check names them in words instead of
    GX's raw comparison or type error."""
    import numpy as np
    import pandas as pd

    out = {}
    for rule in schema.columns:
        if rule.dtype not in ("int", "float") or rule.name not in df.columns:
            continue
        col = df[rule.name]
        values = pd.to_numeric(col, errors="coerce") if col.dtype == object else col
        try:
            infinite = int(np.isinf(values.astype("float64")).sum())
        except (TypeError, ValueError):
            continue
        not_numbers = int((values.isna() & col.notna()).sum()) if col.dtype == object else 0
        sample = col[values.isna() & col.notna()].head(3).tolist() if not_numbers else []
        if infinite or not_numbers:
            out[rule.name] = report.NumericProblems(infinite, not_numbers, sample)
    return out


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


@contextlib.contextmanager
def _copy_on_write() -> Iterator[None]:
    """Turn on pandas copy-on-write for the GX run, unless the process chose a mode itself.

    GX's pandas engine filters the whole batch before each column metric
    (``df[df[col].notnull()]``); without copy-on-write that copies every column each time,
    even when nothing is filtered out (about a third of the run at 1M rows of the demo
    schema). With it, such a filter is a lazy view. This is pandas 3's only mode, which GX
    supports. pandas options are process-wide: a thread using pandas meanwhile sees the
    mode too. Nothing GX builds under it outlives the run (results hold plain values), so
    no lazy copy of the caller's data is written to later under the old mode.
    """
    import pandas as pd

    if int(pd.__version__.split(".", 1)[0]) >= 3 or pd.get_option("mode.copy_on_write"):
        yield
        return
    with pd.option_context("mode.copy_on_write", True):
        yield


def _run_gx(
    frame: pd.DataFrame, spec: ModelSpec, docs_dir: Path | Location | None, checks: Checks
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
        gx.ExpectationSuite(
            name=report.suite_name(spec, checks), expectations=_expectations(spec, checks)
        )
    )
    order = {str(e.id): i for i, e in enumerate(suite.expectations)}
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{spec.name}.validation", data=batch, suite=suite)
    )
    try:
        with _copy_on_write():
            result = definition.run(
                batch_parameters={"dataframe": frame}, result_format=dict(_RESULT_FORMAT)
            )
    except Exception as exc:
        # GX catches errors per expectation; one escaping the run comes from the batch as a
        # whole (GX fingerprints every cell). Bad data must not crash the caller: report it.
        log.exception("Great Expectations failed on the frame")
        raise _GXRunError(f"{type(exc).__name__}: {exc}") from exc

    docs_warning = None
    if docs_dir is not None:
        try:
            from modelkeeper.data.objstore import staged_dir

            # An object-store root: built in a local folder, uploaded with index.html last.
            with staged_dir(docs_dir, last="index.html") as local:
                _build_docs(context, local)
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
    # GX writes CDN links; without internet the pages render unstyled and the index empty.
    from modelkeeper.quality.datadocs import make_offline

    make_offline(docs_dir)
