"""The labels' deadline: predictions still unlabelled `labels.expected_delay_days` after
they were scored (issue 23 item 12). Pure: a frame in, a count out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from modelkeeper.contracts.spec import ModelSpec


def overdue_labels(
    joined: pd.DataFrame, spec: ModelSpec, scored_at: str, now: datetime | None = None
) -> tuple[int, str | None]:
    """How many of the `joined` predictions (label column NaN where no label came) were
    scored before `now` minus the expected delay, and when the oldest of them was scored."""
    import pandas as pd

    if joined.empty or scored_at not in joined.columns:
        return 0, None
    due = pd.Timestamp(now or datetime.now(UTC)) - pd.Timedelta(
        days=spec.labels.expected_delay_days
    )
    due = due.tz_localize(UTC) if due.tzinfo is None else due
    scored = pd.to_datetime(joined[scored_at], utc=True, errors="coerce")
    late = (joined[spec.label_column].isna() & (scored < due)).to_numpy()
    count = int(late.sum())
    return count, (scored[late].min().isoformat() if count else None)
