"""The scale tier's fixture: deploy/compose.yaml's topology run natively (topology.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scale.topology import Topology


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[Topology]:
    topo = Topology(tmp_path_factory.mktemp("scale"), n_specs=100, n_data=21)
    try:
        topo.start()
        yield topo
    finally:
        topo.stop()
