"""Broken model specs, shown where Airflow shows broken DAG files.

Each spec in include/models/ becomes its own DAGs; a spec that does not load is left out
of them (so every other model, rollback and reconcile keep loading and running) and is
reported here instead: this file fails to import with one line per broken spec, naming
the file and the field, and the Airflow UI lists it under its import errors.
"""

from modelkeeper.contracts.spec import SpecError, load_specs

_, _broken = load_specs()
if _broken:
    raise SpecError(
        f"{len(_broken)} model spec(s) not loaded; their models have no DAGs until fixed:\n"
        + "\n".join(str(e) for e in _broken)
    )
