"""The one strict JSON writer: XCom results, report files, MLflow artifacts, the audit trail,
the monitoring history and notifications all go through `dumps` (or `jsonable`).

`dumps(obj, **kw)` is `json.dumps(jsonable(obj), allow_nan=False, **kw)`: what it writes
every JSON reader accepts. `jsonable` converts the types results really hold and raises a
TypeError naming where anything else sits (`$.metrics.auc: ...`), so a new type is a
decision made here, never a silent `str()`:

- None, bool, int, str and finite floats stay as they are;
- non-finite floats become the strings "NaN", "Infinity" and "-Infinity": a reader of a
  report sees the word, `as_float` reads them back, and null keeps meaning "not there";
- numpy scalars become Python numbers, numpy arrays, tuples and sets become lists;
- datetimes, dates and pandas Timestamps become ISO 8601 strings; pandas NaT and NA, None;
- paths become their string, enums their value; a dataclass becomes its `to_dict()` when
  it has one (stage results), else `dataclasses.asdict`;
- dict keys become strings (str, int, float, bool and numpy scalar keys only).

Long strings can be clipped (`max_str`): a data frame cell can hold megabytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from pathlib import PurePath
from typing import Any

__all__ = ["as_float", "clip", "dumps", "jsonable"]


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more chars]"


def dumps(obj: Any, *, max_str: int | None = None, **kwargs: Any) -> str:
    """Strict JSON text of `obj` (see the module docstring); `kwargs` go to json.dumps."""
    return json.dumps(jsonable(obj, max_str=max_str), allow_nan=False, **kwargs)


def jsonable(obj: Any, *, max_str: int | None = None) -> Any:
    """`obj` as plain JSON values (dict, list, str, int, float, bool, None)."""
    return _convert(obj, "$", max_str)


def _convert(obj: Any, path: str, max_str: int | None) -> Any:
    if isinstance(obj, enum.Enum):
        return _convert(obj.value, path, max_str)
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):  # numpy's float64 is a float too
        return _float(float(obj))
    if isinstance(obj, str):
        return str(obj) if max_str is None else clip(str(obj), max_str)
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            name = _key(key, path)
            if max_str is not None:
                name = clip(name, 200)
            out[name] = _convert(value, f"{path}.{name}", max_str)
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        return [_convert(v, f"{path}[{i}]", max_str) for i, v in enumerate(obj)]
    converted = _other(obj)
    if converted is _UNKNOWN:
        raise TypeError(
            f"{path}: {type(obj).__module__}.{type(obj).__qualname__} is not JSON "
            f"(modelkeeper.contracts.jsonio converts only the types it lists): {obj!r:.200}"
        )
    return _convert(converted, path, max_str)


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return float(value)
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


_UNKNOWN = object()


def _other(obj: Any) -> Any:
    """A JSON-able stand-in for one of the listed types, or _UNKNOWN."""
    module = type(obj).__module__.split(".", 1)[0]
    if module == "numpy":
        return _numpy(obj)
    if module == "pandas":  # before datetime: Timestamp and NaT are datetimes too
        return _pandas(obj)
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        to_dict = getattr(obj, "to_dict", None)
        return to_dict() if callable(to_dict) else dataclasses.asdict(obj)
    return _UNKNOWN


def _numpy(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.datetime64):
        import pandas as pd

        return _pandas(pd.Timestamp(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    return _UNKNOWN


def _pandas(obj: Any) -> Any:
    import pandas as pd

    if obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    return _UNKNOWN


def _key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool | int | float):
        return str(key)
    if type(key).__module__.split(".", 1)[0] == "numpy" and hasattr(key, "item"):
        return str(key.item())
    raise TypeError(f"{path}: a {type(key).__qualname__} key ({key!r:.80}) is not a JSON key")


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def as_float(value: Any) -> Any:
    """Undo `jsonable` for a number: "NaN"/"Infinity"/"-Infinity" back to floats."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return value
