"""The harness's partitions (nftables, loopback): a port's packets dropped both ways without a reset, a process
cut off alone, on the connections it holds and the ones it opens; everything gone once healed and closed."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from chaos.partitions import TABLE_PREFIX, Partitions, _tables

pytestmark = pytest.mark.integration
CLIENT = """
import socket, sys, time
old = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
sys.stdin.readline()
for sock in (old, socket.socket()):
    sock.settimeout(1)
    try:
        if sock is not old:
            sock.connect(("127.0.0.1", int(sys.argv[1])))
        sock.sendall(b"ping")
        print("answered" if sock.recv(4) else "closed", flush=True)
    except OSError:
        print("cut off", flush=True)
"""


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)
            threading.Thread(target=lambda c=conn: c.sendall(c.recv(4)), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def _exchange(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"ping")
            return sock.recv(4) == b"ping"
    except OSError:
        return False


def test_a_port_is_dropped_without_a_reset_and_healed(echo_port: int) -> None:
    partitions = Partitions()
    partitions.open()
    try:
        assert _exchange(echo_port)
        partitions.drop_ports("to_echo", [echo_port])
        started = time.monotonic()
        assert not _exchange(echo_port)
        assert time.monotonic() - started >= 0.9  # a timeout, not a refusal: no reset came back
        partitions.heal("to_echo")
        assert _exchange(echo_port)
    finally:
        partitions.close()
    assert partitions.table not in _tables()


def test_one_process_is_cut_off_alone_on_its_held_and_new_connections(echo_port: int) -> None:
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(echo_port)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert client.stdout is not None and client.stdin is not None
    partitions = Partitions()
    partitions.open()
    try:
        assert client.stdout.readline().strip() == "connected"
        partitions.isolate("worker", client.pid, [echo_port])
        client.stdin.write("go\n")
        client.stdin.flush()
        assert [client.stdout.readline().strip() for _ in range(2)] == ["cut off", "cut off"]
        assert _exchange(echo_port)  # everyone else still gets through
    finally:
        partitions.close()
        client.wait(10)
    assert not [t for t in _tables() if t == partitions.table]


def test_a_table_left_by_a_dead_run_is_deleted_by_the_next() -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = Partitions(f"{TABLE_PREFIX}_{dead.stdout.strip()}")
    stale.open()
    partitions = Partitions()
    partitions.open()
    partitions.close()
    assert stale.table not in _tables()
