"""Create the buckets of the given s3:// URIs when missing (idempotent).

`airflow-init` runs it with the storage root and MLflow's artifact destination, so a
fresh MinIO (or any S3-compatible store) is ready before a task writes. The endpoint is
MODELKEEPER_S3_ENDPOINT_URL (else AWS_ENDPOINT_URL), through modelkeeper.data.objstore;
credentials come from boto's usual chain. Only the bucket names are printed.

    python scripts/ensure_buckets.py s3://modelkeeper/storage s3://modelkeeper/mlflow
"""

from __future__ import annotations

import sys
from urllib.parse import urlparse


def buckets(uris: list[str]) -> list[str]:
    names = []
    for uri in uris:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise SystemExit(f"not an s3://bucket/... URI: {uri!r}")
        names.append(parsed.netloc)
    return list(dict.fromkeys(names))


def main(argv: list[str]) -> int:
    from modelkeeper.contracts.jsonio import dumps
    from modelkeeper.data import objstore  # the one module that talks to object stores

    created = []
    for name in buckets(argv):
        fs = objstore.location(f"s3://{name}").fs
        if not fs.exists(name):
            fs.mkdir(name)
            created.append(name)
    print(dumps({"buckets": buckets(argv), "created": created}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
