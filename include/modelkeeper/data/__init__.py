"""Data in and out: sources, exactly-once ingestion, partitioned storage, object stores."""
