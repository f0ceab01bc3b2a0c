"""The model's input signature as the spec declares it, in MLflow's column types.

Part of the MLflow adapter (records/registry.py logs the model with it). pyfunc enforces
the signature on every prediction (MLflow 3.17: `mlflow.models.utils._enforce_mlflow_datatype`
column by column) and refuses what it cannot convert without loss, so each spec dtype is
declared as an MLflow type that takes the column as a landed file gives it back, with or
without missing values:

| spec dtype | landed as (no gaps / gaps)           | declared |
|------------|--------------------------------------|----------|
| int        | int64                                | long     |
| int, nullable | int64 / float64 with NaN          | any      |
| float      | float64 / float64 with NaN           | double   |
| bool       | bool / object True, False, None      | boolean  |
| category   | object str / object str, None        | string   |
| datetime   | datetime64 / datetime64 with NaT     | datetime |

No MLflow type takes both columns of a nullable int: `long` refuses every float column,
`double` refuses int64 (it casts ints of at most 6 bytes, or all 0/1, only), and
`required=False` only lets a column be absent. `any` passes the column on unchecked; the
pipeline's `prepare` step makes it float64 and raises on a value that is not a number.
A float column stays `double`, which refuses int64 (a CSV of whole numbers): `any` on
flight_delay's six float columns cost 10-12 ms per 1k rows in MLflow's per-value check,
as much again as its whole pyfunc prediction (about 13 ms per 1k rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.types import Schema

    from modelkeeper.contracts.spec_sections import ColumnRule

#: The MLflow column type of each spec dtype (a nullable int is `any`: see above).
MLFLOW_TYPES = {
    "int": "long",
    "float": "double",
    "bool": "boolean",
    "category": "string",
    "datetime": "datetime",
}


def input_schema(columns: Sequence[ColumnRule]) -> Schema:
    """The model's inputs: one required column per rule, in order (the pipeline needs each)."""
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.types.schema import AnyType

    return Schema(
        [
            ColSpec(
                AnyType()
                if rule.dtype == "int" and rule.nullable
                else DataType[MLFLOW_TYPES[rule.dtype]],
                rule.name,
                required=True,
            )
            for rule in columns
        ]
    )
