"""The read path's Redis GET (``ThreadConnections``): the same answers and failures as ``redis.Redis.get``, on
the real Redis, on a connection Redis dropped, and against a server that never answers."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis

from ordersctl.adapters.redis import make_client
from ordersctl.cache.redis_connections import ThreadConnections
from ordersctl.cache.redis_layer import RedisOrderCache
from ordersctl.config import RedisSettings
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def name() -> str:
    """A client name of this test's own, so that it can find its connections in CLIENT LIST."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(services: None, name: str) -> Iterator[redis.Redis]:
    sep = "&" if "?" in REDIS_URL else "?"
    c = make_client(RedisSettings(url=f"{REDIS_URL}{sep}client_name={name}"))
    yield c
    c.close()


@pytest.fixture
def admin(services: None) -> Iterator[redis.Redis]:
    c = make_client(RedisSettings(url=REDIS_URL))
    yield c
    c.close()


@pytest.fixture
def key(admin: redis.Redis) -> Iterator[str]:
    k = f"test:{uuid.uuid4().hex}"
    yield k
    admin.delete(k)


def test_get_answers_what_the_client_answers_on_a_connection_per_thread(
    client: redis.Redis, admin: redis.Redis, key: str, name: str
) -> None:
    value = bytes(range(256)) * 600  # binary, and more than one read of the 64 KiB buffer
    admin.set(key, value, ex=60)
    conns = ThreadConnections(client)
    assert conns.get(key) == value == client.get(key)
    assert conns.get(f"test:{uuid.uuid4().hex}") is None
    answers: list[object] = []
    threads = [threading.Thread(target=lambda: answers.append(conns.get(key))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == [value] * 3
    # This thread's and the three others' own connections (the client's pool holds no more than one of its own).
    assert len([c for c in admin.client_list() if c["name"] == name]) >= 4


def test_a_connection_redis_dropped_is_made_again_and_the_get_answers(
    client: redis.Redis, admin: redis.Redis, key: str, name: str
) -> None:
    admin.set(key, b"kept", ex=60)
    conns = ThreadConnections(client)
    assert conns.get(key) == b"kept"
    # What a Redis restart or its idle timeout does to a connection kept between requests.
    ours = [c["id"] for c in admin.client_list() if c["name"] == name]
    assert ours
    for client_id in ours:
        admin.client_kill_filter(_id=client_id)
    assert conns.get(key) == b"kept"


def test_an_error_reply_is_a_response_error_and_the_connection_stays_usable(
    client: redis.Redis, admin: redis.Redis, key: str
) -> None:
    admin.rpush(key, "not a string")
    conns = ThreadConnections(client)
    with pytest.raises(redis.ResponseError):
        conns.get(key)
    admin.delete(key)
    admin.set(key, b"now a string", ex=60)
    assert conns.get(key) == b"now a string"


def test_no_answer_within_the_timeout_is_a_timeout_error_and_a_miss_for_the_layer() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        stop = threading.Event()
        threading.Thread(target=_silent_on_get, args=(server, stop), daemon=True).start()
        port = server.getsockname()[1]
        # RESP2: the fake answers the hello on connect with +OK, not HELLO's map.
        client = make_client(RedisSettings(url=f"redis://127.0.0.1:{port}/0?protocol=2", timeout_seconds=0.2))
        try:
            conns = ThreadConnections(client)
            with pytest.raises(redis.TimeoutError):
                conns.get("order:any")
            layer = RedisOrderCache(conns, 60)
            assert layer.get("any") is None
            assert not layer.available, "the layer backs off after the failure"
        finally:
            stop.set()
            client.close()


def _silent_on_get(server: socket.socket, stop: threading.Event) -> None:
    """A server that answers what a client sends on connect (+OK, PONG) and never answers a GET."""
    server.settimeout(0.1)
    while not stop.is_set():
        try:
            peer, _ = server.accept()
        except OSError:  # no client yet, or the test closed the server
            continue
        with peer:
            peer.settimeout(0.1)
            while not stop.is_set():
                try:
                    data = peer.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                if b"PING" in data:
                    peer.sendall(b"+PONG\r\n")
                elif b"GET" not in data:
                    peer.sendall(b"+OK\r\n" * data.count(b"*"))
