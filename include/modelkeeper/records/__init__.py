"""What is kept: the MLflow registry adapter, the audit trail, governance."""
