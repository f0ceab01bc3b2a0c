"""Pure decisions: whether to retrain, whether to promote."""
