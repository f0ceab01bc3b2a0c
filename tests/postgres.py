"""The local Postgres that `postgres`-marked tests use (`make test-fast` leaves them out).

MODELKEEPER_TEST_PG_URL moves it. Pointed at a port nobody listens on, it shows which
tests touch Postgres: only the `postgres`-marked ones may fail.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import make_url

PG_URL = os.environ.get(
    "MODELKEEPER_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
_url = make_url(PG_URL)
#: psycopg2.connect() arguments of the server (its `postgres` database: pass dbname).
PG = {"host": _url.host, "port": _url.port, "user": _url.username}
#: The database PG_URL names (where tests create their tables).
PG_DATABASE = _url.database
