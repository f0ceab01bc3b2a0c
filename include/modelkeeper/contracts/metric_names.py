"""Names and directions of the metrics modelkeeper computes.

Kept apart from evaluation.py (which imports numpy/sklearn) so the spec schema, loaded
at DAG parse time, can check metric names without heavy imports.
"""

HIGHER_IS_BETTER = frozenset({"roc_auc", "average_precision", "accuracy", "f1", "r2"})
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})
CLASSIFICATION = frozenset({"roc_auc", "average_precision", "log_loss", "brier", "accuracy", "f1"})
REGRESSION = frozenset({"rmse", "mae", "r2"})


def higher_is_better(metric: str) -> bool:
    if metric in HIGHER_IS_BETTER:
        return True
    if metric in LOWER_IS_BETTER:
        return False
    raise ValueError(
        f"unknown metric {metric!r}; known: {sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)}"
    )
