"""A model's data cut into steps and ingested into an isolated store, as the DAGs would.

Each step's rows are landed as one file and taken through the collect and validate
stages (Great Expectations; no Data Docs) on a temporary storage root; every policy
then works on the accepted batch. The MLflow store (SQLite and an artifact folder) and
the audit trail live in the same work folder: the live ones are never opened.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from modelkeeper.contracts.errors import DataError
from modelkeeper.stages.workspace import Memo, Run, Workspace

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Accepted
    from modelkeeper.contracts.spec import ModelSpec
    from modelkeeper.records.registry import Registry

LANDING = "landing/backtest"


class Replay:
    """The data, cut into steps, ingested into an isolated store; the shared stores."""

    def __init__(
        self,
        spec: ModelSpec,
        data: pd.DataFrame,
        workdir: Path,
        *,
        registry: Registry | None = None,
    ) -> None:
        from modelkeeper.contracts.spec import FileSource

        ts = spec.data_schema.timestamp_column
        if ts not in data.columns:
            raise DataError(f"backtest data has no timestamp column {ts!r}")
        if data.empty:
            raise DataError("backtest data is empty")
        self.workdir = Path(workdir)
        self.spec = spec.model_copy(
            update={"source": FileSource(kind="files", path=f"{LANDING}/*.parquet")}
        )
        from modelkeeper.data.storage import Storage
        from modelkeeper.monitoring.history import History
        from modelkeeper.records.audit import AuditLog
        from modelkeeper.records.registry import Registry

        self.memo = Memo()
        self.registry = registry or Registry(
            f"sqlite:///{self.workdir / 'mlflow.db'}",
            artifact_location=str(self.workdir / "artifacts"),
        )
        self.storage = Storage(self.workdir / "storage")
        self.audit = AuditLog.from_url(f"sqlite:///{self.workdir / 'audit.db'}")
        # The detector's state between steps lives in the history, as between DAG runs.
        self.history = History.from_url(f"sqlite:///{self.workdir / 'history.db'}")
        self.ingest_ws = self.workspace(self.spec)
        data = data.assign(**{ts: pd.to_datetime(data[ts])}).sort_values(ts, kind="stable")
        step_days = spec.backtest.step_days
        self.origin = data[ts].min().normalize()
        codes = ((data[ts] - self.origin) // pd.Timedelta(days=step_days)).to_numpy()
        self.n_steps = int(codes.max()) + 1
        self.data, self.codes = data.reset_index(drop=True), codes
        self.step_days = step_days
        self.warmup = self._warmup(spec)
        self.accepted: dict[int, Accepted] = {}
        self.validation: dict[int, str] = {}

    def _warmup(self, spec: ModelSpec) -> int:
        """Default: one training window, but at most a quarter of the replay (an
        all-history window would otherwise leave nothing to replay)."""
        days = self.step_days
        window_steps = min(math.ceil(spec.window.training_days / days), self.n_steps // 4)
        warmup = spec.backtest.warmup_steps or max(
            window_steps, math.ceil(spec.window.holdout_days / days) + 1
        )
        if warmup >= self.n_steps:
            raise DataError(
                f"{self.n_steps} steps of {days} days: nothing left to replay after "
                f"{warmup} warm-up steps (set backtest.warmup_steps lower)"
            )
        return warmup

    def workspace(self, spec: ModelSpec, *, name: str | None = None) -> Workspace:
        """A policy's workspace: its own registered model on the shared stores and memo."""
        return Workspace(
            spec=spec.model_copy(update={"source": self.spec.source}),
            storage=self.storage,
            registry=self.registry,
            audit=self.audit,
            history=self.history,
            model_name=name,
            reports=False,
            memo=self.memo,
        )

    def step_start(self, step: int) -> pd.Timestamp:
        return self.origin + pd.Timedelta(days=self.step_days * step)

    def ingest(self, step: int) -> Accepted:
        """Land the step's rows as a file and take it through collect and validate."""
        from modelkeeper.contracts.results import Accepted
        from modelkeeper.stages.ingest import collect, validate

        rows = self.data[self.codes == step].reset_index(drop=True)
        if rows.empty:
            accepted = Accepted(True, "no rows in this step", 0, None, None, None)
        else:
            ws = self.ingest_ws
            ws.storage.write_parquet(rows, ws.storage.root / LANDING / f"step_{step:03d}.parquet")
            run = Run(run_id=f"backtest_step_{step:03d}", dag_id="backtest")
            accepted = validate(ws, run, collect(ws, run))
        self.accepted[step], self.validation[step] = accepted, accepted.summary
        return accepted
