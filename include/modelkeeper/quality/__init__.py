"""Data validation (Great Expectations) and its reports."""
