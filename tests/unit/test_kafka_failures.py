"""How the pipeline's producers classify Kafka errors: a fatal client error is not retried with the same
client (it would fail forever) but ends the worker, which the supervisor restarts with new clients."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError

from ordersctl.adapters import kafka_errors
from ordersctl.adapters.kafka import ConfirmedSender, Outgoing, is_fatal
from ordersctl.dlq.letters import DeadLetter, DeadLetterSender
from ordersctl.errors import AccessDenied, ClientFailed, InvalidJson, TransientError
from tests.fake_producer import FATAL, TIMED_OUT, FakeProducer
from tests.unit.test_dead_letters import record


def _letters(n: int) -> list[DeadLetter]:
    return [DeadLetter(record(), InvalidJson("not JSON")) for _ in range(n)]


def _sender(producer: FakeProducer) -> DeadLetterSender:
    return DeadLetterSender(producer, "orders.dlq", "grp", timeout=1)


def test_fatal_is_the_flag_or_the_code_of_later_failures() -> None:
    assert is_fatal(FATAL)
    assert is_fatal(KafkaError(KafkaError._FATAL, "failed after a fatal error"))  # flag only on the first
    assert not is_fatal(TIMED_OUT)
    assert not is_fatal(KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS))


def test_dead_letters_confirmed_are_sent_once_each() -> None:
    producer = FakeProducer()
    _sender(producer).send(_letters(3))
    assert len(producer.produced) == 3
    assert all(p["topic"] == "orders.dlq" and p["partition"] == 2 for p in producer.produced)


@pytest.mark.parametrize(
    ("producer", "expected"),
    [
        (FakeProducer(deliver=TIMED_OUT), TransientError),
        (FakeProducer(refuse=KafkaError(KafkaError._UNKNOWN_TOPIC)), TransientError),
        (FakeProducer(deliver=FATAL), ClientFailed),
        (FakeProducer(refuse=FATAL, refuse_after=1), ClientFailed),
    ],
    ids=["timed-out", "refused", "fatal-delivery", "fatal-produce"],
)
def test_dead_letter_failures_are_retried_unless_the_producer_is_broken(producer: Any, expected: type) -> None:
    with pytest.raises(expected) as caught:
        _sender(producer).send(_letters(2))
    assert type(caught.value) is expected  # a fatal error is never taken for a transient one


def test_a_delivery_refused_for_our_access_is_raised_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing ACL on the topic: every later message would be refused the same way."""
    monkeypatch.setattr(kafka_errors, "_watch", kafka_errors.FatalErrorWatch())  # this process's, left as it was
    denied = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed")
    sender = ConfirmedSender(FakeProducer(deliver=denied), timeout=1)
    sender.send(Outgoing("orders.events", b"{}", tag=1))
    with pytest.raises(AccessDenied, match="TOPIC_AUTHORIZATION_FAILED"):
        sender.confirm()
    assert kafka_errors.fatal_raised(), "the error callback would raise it a second time (say in a closing thread)"
    report = ConfirmedSender(FakeProducer(deliver=TIMED_OUT), timeout=1).send_all([Outgoing("t", b"{}", tag=1)])
    assert report.failed == [(1, TIMED_OUT.str())], "a timeout stays a failure of that message, retried later"
