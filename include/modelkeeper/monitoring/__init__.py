"""Watching models: drift, performance (realized and estimated), history, alarms."""
