"""One rule for turning results into strict JSON (XCom, report files, MLflow artifacts).

Non-finite floats become the strings "NaN", "Infinity" and "-Infinity" (what a reader of a
report wants to see, and still strict JSON), numpy scalars become Python numbers, tuples
and sets become lists, anything else unknown becomes its ``str``. Long strings can be
clipped: a data frame cell can hold megabytes.
"""

from __future__ import annotations

import math
from typing import Any


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more chars]"


def jsonable(obj: Any, *, max_str: int | None = None) -> Any:
    if obj is None or isinstance(obj, bool | int):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, str):
        return obj if max_str is None else clip(obj, max_str)
    if isinstance(obj, dict):
        keys = (str(k) if max_str is None else clip(str(k), 200) for k in obj)
        return {k: jsonable(v, max_str=max_str) for k, v in zip(keys, obj.values(), strict=True)}
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v, max_str=max_str) for v in obj]
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item):
        try:
            return jsonable(item(), max_str=max_str)
        except (TypeError, ValueError):
            pass
    text = str(obj)
    return text if max_str is None else clip(text, max_str)


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def as_float(value: Any) -> Any:
    """Undo `jsonable` for a number: "NaN"/"Infinity"/"-Infinity" back to floats."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return value
