from modelkeeper_airflow.operators.approve import PromotionApprovalOperator
from modelkeeper_airflow.operators.collect import CollectOperator
from modelkeeper_airflow.operators.decide import DecideOperator
from modelkeeper_airflow.operators.evaluate import EvaluateOperator
from modelkeeper_airflow.operators.finish import FinishOperator
from modelkeeper_airflow.operators.monitor import MonitorOperator
from modelkeeper_airflow.operators.promote import PromoteOperator
from modelkeeper_airflow.operators.reconcile import ReconcileOperator
from modelkeeper_airflow.operators.rollback import RollbackOperator
from modelkeeper_airflow.operators.score import (
    AlarmOperator,
    MeasureOperator,
    ScoreOperator,
    WatchOperator,
)
from modelkeeper_airflow.operators.train import TrainOperator
from modelkeeper_airflow.operators.validate import ValidateOperator

__all__ = [
    "AlarmOperator",
    "CollectOperator",
    "DecideOperator",
    "EvaluateOperator",
    "FinishOperator",
    "MeasureOperator",
    "MonitorOperator",
    "PromoteOperator",
    "PromotionApprovalOperator",
    "ReconcileOperator",
    "RollbackOperator",
    "ScoreOperator",
    "TrainOperator",
    "ValidateOperator",
    "WatchOperator",
]
