"""A model's other inputs, ingested like its training data: scoring features, late labels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkeeper.contracts.errors import ConfigError

if TYPE_CHECKING:
    from modelkeeper.contracts.spec import ModelSpec

STREAMS = ("scoring", "labels")


def stream_spec(spec: ModelSpec, stream: str) -> ModelSpec:
    """The spec as ingestion sees one of the model's other inputs: scoring features or late
    labels. Its own name gives it its own manifest, snapshots and pool; its own source and
    columns give it its own suite (features without the label; key, label and time)."""
    if stream not in STREAMS:
        raise ValueError(f"unknown stream {stream!r}; known: {STREAMS}")
    section = getattr(spec, stream)
    if section is None:
        raise ConfigError(f"model {spec.name!r} has no {stream} section in its spec")
    schema = spec.data_schema
    ts = schema.timestamp_column
    if stream == "scoring":
        keep = [c for c in schema.columns if c.name != spec.label_column]
    else:
        wanted = {*section.key, spec.label_column, ts}
        keep = [c for c in schema.columns if c.name in wanted]
    data_schema = schema.model_copy(
        update={"columns": keep, "unique_key": list(section.key), "extra_columns": "warn"}
    )
    # model_copy does not validate: the copy is internal and never written out.
    return spec.model_copy(
        update={
            "name": f"{spec.name}__{stream}",
            "source": section.source,
            "data_schema": data_schema,
        }
    )
