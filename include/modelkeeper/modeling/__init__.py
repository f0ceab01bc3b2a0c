"""Training, evaluation, explanation and the model card."""
