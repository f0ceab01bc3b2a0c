"""`[core] hostname_callable` for the scale tier's Celery workers.

Both workers run on this one machine, so the default (the FQDN) would give them one name
and a task instance's `hostname` could not say which worker ran it. Each worker's
environment names it (MK_SCALE_WORKER); a task records that name, as a task on a second
host would record that host's name. Test code, not product code.
"""

from __future__ import annotations

import os


def hostname() -> str:
    return os.environ["MK_SCALE_WORKER"]
