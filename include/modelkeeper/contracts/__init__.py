"""The contracts between stages: spec, typed results, vocabulary, errors, settings."""
