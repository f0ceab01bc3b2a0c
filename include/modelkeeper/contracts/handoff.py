"""The base of every stage result handed to the next stage (through XCom, as plain JSON).

A stage returns one frozen dataclass; ``to_dict`` is what crosses the task boundary and
``from_dict`` rebuilds it on the other side, nested results included, so no stage ever
indexes another stage's nested dict. Keys a newer producer added are ignored; a missing
required key is a HandoffError naming the stage and the key.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any, Self

from modelkeeper.contracts.errors import HandoffError
from modelkeeper.contracts.jsonio import jsonable


class Handoff:
    """Mixin for frozen dataclasses: JSON-ready ``to_dict`` and a checked ``from_dict``."""

    def to_dict(self) -> dict[str, Any]:
        # Nested results go through their own to_dict (a Decision adds its verdict).
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        return jsonable({f.name: getattr(self, f.name) for f in fields})

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise HandoffError(
                f"{cls.__name__}: expected the upstream stage's result (a dict), got "
                f"{type(data).__name__}{'' if data is not None else ' (did the upstream task run?)'}"
            )
        hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in data:
                required = (
                    f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                )
                if required:
                    raise HandoffError(f"{cls.__name__}: the upstream result has no {f.name!r}")
                continue
            values[f.name] = _rebuild(hints[f.name], data[f.name])
        return cls(**values)


def _rebuild(hint: Any, value: Any) -> Any:
    """A nested Handoff (or ``Handoff | None``) from its dict; anything else unchanged."""
    if value is None:
        return None
    if typing.get_origin(hint) is list and isinstance(value, list):
        (item,) = typing.get_args(hint) or (Any,)
        return [_rebuild(item, v) for v in value]
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    options = typing.get_args(hint) if union else (hint,)
    for option in options:
        if isinstance(option, type) and issubclass(option, Handoff) and isinstance(value, dict):
            return option.from_dict(value)
    return value
