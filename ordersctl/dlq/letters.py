"""Building and sending dead letters: the original message plus headers that say why, where it came from and
when. The sender confirms every delivery before the caller commits offsets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Message

from ordersctl.adapters.kafka import ConfirmedSender, Outgoing, SendingProducer
from ordersctl.adapters.kafka_headers import as_bytes, header_pairs
from ordersctl.dlq import format as fmt
from ordersctl.domain.rules import errors_json
from ordersctl.domain.times import utc_z
from ordersctl.errors import ClientFailed, FieldError, PoisonError, TransientError

# Field errors kept on a letter: a message with thousands of bad fields still fits the topic beside its original.
_ERRORS_KEPT = 50


@dataclass(frozen=True)
class DeadLetter:
    """A poison message and the reason it is one."""

    message: Message
    error: PoisonError
    attempts: int = 1


def _errors(errors: tuple[FieldError, ...]) -> str:
    return json.dumps(errors_json(errors[:_ERRORS_KEPT]))


def dead_letter_headers(letter: DeadLetter, group_id: str, now: datetime | None = None) -> fmt.Headers:
    msg = letter.message
    original = header_pairs(msg) or []
    kept = [(k, v) for k, v in original if not fmt.OWN_HEADERS.match(k) or k == fmt.REPLAY_COUNT]
    _ts_type, ts = msg.timestamp()
    detail = str(letter.error)[: fmt.ERROR_TEXT_LIMIT]
    topic, partition, offset = msg.topic() or "", str(msg.partition()), str(msg.offset())
    ours = {
        fmt.REASON: letter.error.reason,
        fmt.ERROR: detail,
        fmt.ERRORS: _errors(letter.error.errors),
        fmt.ORIGINAL_TOPIC: topic,
        fmt.ORIGINAL_PARTITION: partition,
        fmt.ORIGINAL_OFFSET: offset,
        fmt.ORIGINAL_TIMESTAMP: str(ts),
        fmt.CONSUMER_GROUP: group_id,
        fmt.ATTEMPTS: str(letter.attempts),
        fmt.FAILED_AT: utc_z(now or datetime.now(UTC)),
        fmt.CONNECT_TOPIC: topic,
        fmt.CONNECT_PARTITION: partition,
        fmt.CONNECT_OFFSET: offset,
        fmt.CONNECT_EXCEPTION_CLASS: f"ordersctl.errors.{type(letter.error).__name__}",
        fmt.CONNECT_EXCEPTION_MESSAGE: detail,
    }
    return [*kept, *((k, as_bytes(v)) for k, v in ours.items())]


def _partition(msg: Message) -> int:
    partition = msg.partition()
    return -1 if partition is None else partition


class DeadLetterSender:
    """Publishes dead letters and confirms every delivery before the caller commits offsets."""

    def __init__(self, producer: SendingProducer, topic: str, group_id: str, timeout: float = 15.0) -> None:
        self._producer = producer
        self._topic = topic
        self._group_id = group_id
        self._timeout = timeout

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send all; raise TransientError (nothing to commit) unless every one is confirmed, ClientFailed when
        the producer is unusable."""
        if not letters:
            return
        report = ConfirmedSender(self._producer, timeout=self._timeout).send_all(
            Outgoing(
                self._topic,
                letter.message.value(),
                letter.message.key(),
                dead_letter_headers(letter, self._group_id),
                # Same partition as the original, so a partition's dead letters stay in order.
                partition=_partition(letter.message),
            )
            for letter in letters
        )
        if report.fatal is not None:
            raise ClientFailed(f"dead-letter producer failed: {report.fatal.str()}")
        if not report.complete:
            first = report.failed[0][1] if report.failed else "delivery not confirmed in time"
            raise TransientError(f"dead-letter send to {self._topic} failed: {first}")
