"""Each consume worker is named in the group: client.id ordersctl-<host>-w<N>, and with kafka.static_membership
group.instance.id <host>-w<N>, as the broker reports them."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from tests.helpers import create_topics, finish, send, start_ordersctl, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def _members(settings: Settings) -> list[Any]:
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    group = admin.describe_consumer_groups([settings.kafka.group_id])[settings.kafka.group_id].result(timeout=10)
    return list(group.members)


def test_workers_are_named_and_join_as_static_members(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"static_membership": True})})
    create_topics(settings)
    send(settings, list(OrderGenerator(seed=8).messages(10)))
    log = tmp_path / "consume.log"
    proc = start_ordersctl(settings, "consume", "--workers", "2", log=log)
    host = socket.gethostname()
    try:
        wait_for(lambda: len(_members(settings)) == 2, 90, "two members in the group")
        members = _members(settings)
        assert sorted(m.client_id for m in members) == [f"ordersctl-{host}-w0", f"ordersctl-{host}-w1"]
        assert sorted(m.group_instance_id for m in members) == [f"{host}-w0", f"{host}-w1"]
        proc.send_signal(signal.SIGTERM)
        finish(proc, log, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, log.read_text()[-2000:]
