"""Credentials and access the secured services refuse (#21 item 3): one line naming the service and the cause,
exit 2, no traceback and no secret; a running consume stops within 60 s instead of retrying what cannot heal."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.helpers import log_messages
from tests.secure.conftest import SecureClient

pytestmark = [pytest.mark.secure, pytest.mark.e2e, pytest.mark.slow]
WRONG = "not-the-password"


def _refused(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    """Exit 2 and one line, the last, naming ``parts``; no traceback, no wrong or right password."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    messages = log_messages(done.stderr)
    ours = [message for message in messages if message.startswith("ordersctl: ")]
    assert len(ours) == 1 and messages[-1] == ours[0], done.stderr[-3000:]
    for part in parts:
        assert part in ours[0], ours[0]
    assert WRONG not in done.stderr + done.stdout


def _migrated_with_topics(secure: SecureClient) -> None:
    """What consume needs besides access: the schema (else the relay's query is refused: exit 1) and the topics."""
    for args in (("db", "migrate"), ("topics", "create", "--dlq")):
        done = secure.run(*args)
        assert done.returncode == 0, done.stderr[-3000:]


def _other_ca(tmp_path: Path) -> Path:
    """A certificate authority the secured services' certificates do not come from."""
    ca = tmp_path / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "ca.key"),
                    "-out", str(ca), "-days", "1", "-subj", "/CN=not-the-stack-ca"],
                   check=True, capture_output=True)  # fmt: skip
    return ca


def test_a_wrong_kafka_credential_stops_consume(secure: SecureClient) -> None:
    """SCRAM: a wrong password (the broker refuses the SASL authentication). mTLS: a wrong password of the client
    key (librdkafka cannot read the key)."""
    scram = secure.settings.kafka.security_protocol == "SASL_SSL"
    wrong = {"ORDERS_KAFKA__SASL_PASSWORD": WRONG} if scram else {"ORDERS_KAFKA__SSL_KEY_PASSWORD": WRONG}
    _refused(secure.run("topics", "create", "--dlq", timeout=90, **wrong), "Kafka: ")
    _migrated_with_topics(secure)
    started = time.monotonic()
    done = secure.run("consume", "--workers", "2", timeout=90, **wrong)
    assert time.monotonic() - started < 60
    _refused(done, "Kafka: ", "authentication" if scram else "client credentials refused")


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [("ORDERS_KAFKA__GROUP_ID", "not-allowed-group", "GROUP_AUTHORIZATION_FAILED"),
     ("ORDERS_KAFKA__ORDERS_TOPIC", "not-allowed-topic", "TOPIC_AUTHORIZATION_FAILED")],
)  # fmt: skip
def test_a_group_or_topic_the_acls_do_not_allow_stops_consume(
    secure: SecureClient, setting: str, value: str, code: str
) -> None:
    _migrated_with_topics(secure)
    started = time.monotonic()
    done = secure.run("consume", timeout=90, **{setting: value})
    assert time.monotonic() - started < 60
    _refused(done, "Kafka: access denied", code)


def test_an_untrusted_certificate_is_refused_with_exit_2(secure: SecureClient, tmp_path: Path) -> None:
    other = str(_other_ca(tmp_path))
    started = time.monotonic()
    topics = secure.run("topics", "list", timeout=90, ORDERS_KAFKA__SSL_CA_LOCATION=other)
    assert time.monotonic() - started < 8, "waited out the metadata timeout instead of seeing the refusal"
    _refused(topics, "Kafka: access denied", "certificate verify failed")
    dsn = psycopg.conninfo.make_conninfo(secure.settings.postgres.dsn, sslrootcert=other)
    _refused(secure.run("db", "migrate", "--status", ORDERS_POSTGRES__DSN=dsn), "PostgreSQL: access denied")
