"""The champion at work: batch predictions and the prediction log."""
