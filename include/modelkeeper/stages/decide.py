"""decide: whether this run retrains, and why, from what monitor measured."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelkeeper.contracts.results import Monitoring, RetrainDecision
    from modelkeeper.stages.workspace import Workspace

log = logging.getLogger(__name__)


def decide(
    ws: Workspace,
    monitoring: Monitoring,
    *,
    force: bool = False,
    force_reason: str = "",
    alarm: str | None = None,
) -> RetrainDecision:
    from modelkeeper.decisions.retrain import should_retrain

    decision = should_retrain(
        monitoring, ws.spec, force=force, force_reason=force_reason, alarm=alarm
    )
    log.info("%s", decision.reason)
    return decision
