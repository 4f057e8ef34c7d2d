"""The hand-worked impact scenarios of ``tests/unit/test_impact_sample.py``, on every store."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cmdb.store.base import GraphStore
from tests.unit.test_impact_records import check_records
from tests.unit.test_impact_sample import SCENARIOS, check_cycles_terminate, load_sample


@pytest.mark.parametrize("check", SCENARIOS, ids=lambda f: f.__name__.removeprefix("check_"))
def test_impact_on_sample(store: GraphStore, check: Callable[[GraphStore], None]) -> None:
    load_sample(store)
    check(store)


def test_impact_cycles(store: GraphStore) -> None:
    check_cycles_terminate(store)


def test_impact_records(store: GraphStore) -> None:
    check_records(store)
