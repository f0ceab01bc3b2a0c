"""Replaying a model's data through the stages to compare retraining policies."""
