"""The local outbox: every notification kept under the storage root, whatever else got it.

Under `make run` no mail server or webhook is configured, yet an owner must still be
able to read what modelkeeper would have told them: each notification is one JSON file,

    outbox/<model>/<UTC time>-<event>-<random>.json

written atomically (a local rename, or one PUT on an object store), so a reader never
sees half a message and two tasks never write the same name. The Outbox page of the
Airflow UI (modelkeeper_airflow/ui/outbox.py) lists them, newest first.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelkeeper.data import objstore

if TYPE_CHECKING:
    from modelkeeper.data.objstore import Location
    from modelkeeper.data.storage import Storage

FOLDER = "outbox"


@dataclass(frozen=True)
class Entry:
    """One kept notification: the message's payload, when, and what the channels said."""

    at: str
    model: str
    event: str
    subject: str
    reason: str
    text: str
    run_url: str | None = None
    task_url: str | None = None
    delivered: list[str] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Entry:
        payload = raw.get("payload") or {}
        return cls(
            at=str(raw.get("at", "")),
            model=str(payload.get("model", "")),
            event=str(payload.get("event", "")),
            subject=str(payload.get("subject", "")),
            reason=str(payload.get("reason", "")),
            text=str(payload.get("text", "")),
            run_url=payload.get("run_url"),
            task_url=payload.get("task_url"),
            delivered=[str(line) for line in raw.get("delivered") or []],
            payload=payload,
        )


def outbox_dir(storage: Storage) -> Location:
    return storage.root / FOLDER


def post(
    storage: Storage,
    payload: dict[str, Any],
    *,
    delivered: list[str] | None = None,
    now: dt.datetime | None = None,
) -> Location:
    """Keep `payload` (a notification's JSON payload, with `model` and `event`) in the outbox,
    with the lines the other channels returned; returns where it went."""
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    model, event = _safe(payload["model"]), _safe(payload["event"])
    name = f"{at:%Y%m%dT%H%M%S.%fZ}-{event}-{secrets.token_hex(4)}.json"
    record = {"at": at.isoformat(), "payload": payload, "delivered": list(delivered or [])}
    return storage.write_json(record, outbox_dir(storage) / model / name)


def read(storage: Storage, *, models: set[str] | None = None, limit: int = 200) -> list[Entry]:
    """The newest `limit` entries (of `models` only, when given), newest first. A file that
    cannot be read is skipped: the outbox is a record, not a queue."""
    root = outbox_dir(storage)
    if not objstore.exists(root):
        return []
    files = [
        p for p in root.glob("*/*.json") if models is None or p.parent.name in models
    ]  # the name starts with the time: sorting by name sorts by time
    files.sort(key=lambda p: p.name, reverse=True)
    entries = []
    for path in files[:limit]:
        try:
            entries.append(Entry.from_dict(json.loads(objstore.read_text(path))))
        except (OSError, ValueError):
            continue
    return entries


def _safe(name: object) -> str:
    """A name that is one path segment (a model or event name from a spec)."""
    text = "".join(c if c.isalnum() or c in "._-" else "_" for c in str(name)).strip("._")
    return text or "unknown"
