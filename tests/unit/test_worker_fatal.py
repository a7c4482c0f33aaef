"""An error that cannot heal ends the worker at once, on fakes: never retried, nothing committed past it, the
group left. (Its supervisor then stops consume: test_supervisor.py; end to end: tests/e2e/test_fatal_errors.py.)"""

from __future__ import annotations

import dataclasses
import threading

import pytest

from ordersctl.errors import AccessDenied, QueryRefused
from tests.fakes import FakeRelay, FakeStore
from tests.unit.test_worker import Rig, orders


def test_a_query_refused_by_the_store_is_raised_not_retried() -> None:
    store = FakeStore()

    def refuse() -> None:
        raise QueryRefused("PostgreSQL", 'query refused (42P01 UndefinedTable: relation "items" does not exist)')

    store.during_save = refuse
    rig = Rig(orders(8), store=store)
    with pytest.raises(QueryRefused):
        rig.run()
    assert store.saves == 1, "retried"
    assert rig.consumer.committed_offsets == {}
    assert rig.consumer.closed, "the worker did not leave the group"


class FailedRelay(FakeRelay):
    """A relay whose thread ended on an error that cannot heal (the producer's credentials refused)."""

    def run_forever(self, stop: threading.Event) -> None:
        self.failure = AccessDenied("Kafka", "access denied at k:9092 (_AUTHENTICATION: ...)")


def test_the_relays_error_that_cannot_heal_is_raised_by_the_worker() -> None:
    rig = Rig(orders(4))
    rig.worker.ports = dataclasses.replace(rig.worker.ports, relay=FailedRelay())
    with pytest.raises(AccessDenied, match="Kafka: access denied"):
        rig.run()
    assert rig.consumer.closed
