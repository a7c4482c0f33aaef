"""A command that fails lets go of what its frames held before ``main`` returns: confluent-kafka keeps the exception
an error callback raised (errors.release_frames), and a librdkafka client it reached through its traceback was still
alive when the interpreter exited (a segfault at exit, now and then, in CI)."""

from __future__ import annotations

import gc
import time
import weakref
from typing import Any

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from ordersctl.cli import main as cli_main
from ordersctl.errors import AccessDenied, release_frames


class Client:
    """Stands for a librdkafka client a command's frame holds."""


def test_a_failed_commands_locals_go_although_its_exception_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    kept: list[BaseException] = []  # what confluent-kafka keeps: the exception its callback raised
    clients: list[weakref.ref[Client]] = []

    def command(**_: Any) -> None:
        client = Client()
        clients.append(weakref.ref(client))
        try:
            raise AccessDenied("Kafka", "the broker refused the client certificate")
        except AccessDenied as exc:
            kept.append(exc)
            raise

    monkeypatch.setattr(cli_main, "app", command)
    assert cli_main.main([]) == 2
    assert kept, "the command ran"
    assert clients[0]() is None, "the client outlived main: its frame is still referenced by the kept exception"


def test_its_context_and_cause_are_let_go_too() -> None:
    def inner() -> None:
        client = Client()
        clients.append(weakref.ref(client))
        raise KeyError("first")

    clients: list[weakref.ref[Client]] = []
    try:
        try:
            inner()
        except KeyError as exc:
            raise AccessDenied("Kafka", "refused") from exc
    except AccessDenied as caught:
        outer = caught
    release_frames(outer)
    assert clients[0]() is None
    assert outer.__traceback__ is None and outer.__cause__ is not None and outer.__cause__.__traceback__ is None


def test_an_admin_client_whose_error_callback_raised_is_gone_when_main_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With confluent-kafka itself: an admin client's error callback raises (as ours does for refused credentials),
    on the connection refused at a port nothing listens on."""

    def refuse(err: KafkaError) -> None:
        raise AccessDenied("Kafka", f"refused ({err.code()})")

    def command(**_: Any) -> None:
        conf: dict[str, Any] = {"bootstrap.servers": "127.0.0.1:1", "error_cb": refuse, "log_level": 0}
        admin = AdminClient(conf)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            admin.poll(0.2)
        pytest.fail("the error callback never ran")

    monkeypatch.setattr(cli_main, "app", command)
    assert cli_main.main([]) == 2
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, AdminClient)], "a librdkafka client outlived main"
