"""Which Kafka errors cannot heal (credentials, access, a wrong security protocol, a topic to consume that does
not exist) and stop the process, and which are outages that librdkafka keeps retrying."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from confluent_kafka import KafkaError

from ordersctl.adapters.kafka import make_admin, make_consumer, make_producer
from ordersctl.adapters.kafka_errors import PROTOCOL_MISMATCH_SECONDS, FatalErrorWatch, fatal_error
from ordersctl.config import KafkaSettings
from ordersctl.errors import AccessDenied, ConfigError, UnknownTopic
from tests.fakes import FakeClock

SASL = "sasl_plaintext://127.0.0.1:19092/bootstrap: SASL SCRAM-SHA-512 mechanism handshake failed"
SSL_TO_PLAINTEXT = (
    "ssl://127.0.0.1:19092/bootstrap: SSL handshake failed: Disconnected: SSL connection closed by peer: "
    "connecting to a PLAINTEXT broker listener? (after 0ms in state SSL_HANDSHAKE)"
)
REFUSED = "127.0.0.1:19092/bootstrap: Connect to ipv4#127.0.0.1:19092 failed: Connection refused"


@pytest.mark.parametrize(
    "code",
    [KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED,
     KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
     KafkaError.CLUSTER_AUTHORIZATION_FAILED],
)  # fmt: skip
def test_authentication_and_authorization_failures_are_access_denied(code: int) -> None:
    fatal = fatal_error(KafkaError(code, "refused"), "broker:9093")
    assert isinstance(fatal, AccessDenied)
    assert fatal.service == "Kafka" and "broker:9093" in str(fatal)


@pytest.mark.parametrize(
    "code",
    [KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT, KafkaError.NOT_COORDINATOR,
     KafkaError.LEADER_NOT_AVAILABLE, KafkaError._RESOLVE],
)  # fmt: skip
def test_outages_are_not_fatal(code: int) -> None:
    assert fatal_error(KafkaError(code, REFUSED)) is None


@pytest.mark.parametrize("alert", ["ssl/tls alert certificate unknown: SSL alert number 46",
                                   "sslv3 alert certificate expired: SSL alert number 45",
                                   "tlsv1 alert unknown ca: SSL alert number 48"])  # fmt: skip
def test_a_client_certificate_the_broker_refuses_is_access_denied(alert: str) -> None:
    """TLS 1.3: the broker's alert comes on the first read after the handshake, a transport failure (librdkafka's
    words, seen with an expired client certificate on the secured stack)."""
    text = f"ssl://127.0.0.1:19194/bootstrap: Receive failed: error:0A000416:SSL routines::{alert} (after 1ms)"
    fatal = fatal_error(KafkaError(KafkaError._TRANSPORT, text), "127.0.0.1:19194")
    assert isinstance(fatal, AccessDenied)
    assert str(fatal).startswith("Kafka: access denied at 127.0.0.1:19194: the broker refused the client certificate")
    # A connection lost mid-read without an alert stays an outage.
    lost = "ssl://127.0.0.1:19194/bootstrap: Receive failed: SSL transport error: Connection reset by peer"
    assert fatal_error(KafkaError(KafkaError._TRANSPORT, lost)) is None


def test_a_broker_certificate_we_refuse_names_what_it_can_be() -> None:
    """librdkafka's own hint names ssl.ca.location alone, also for a bootstrap name the certificate does not hold."""
    text = (
        "ssl://vm:19194/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: "
        "broker certificate could not be verified, verify that ssl.ca.location is correctly configured"
    )
    said = str(fatal_error(KafkaError(KafkaError._SSL, text), "vm:19194"))
    assert said.startswith("Kafka: access denied at vm:19194: the broker's certificate was not accepted (")
    assert "not naming the host connected to" in said and text in said


def test_a_subscribed_topic_that_does_not_exist_is_fatal_but_a_producers_is_not() -> None:
    missing = "Subscribed topic not available: orders: Broker: Unknown topic or partition"
    assert isinstance(fatal_error(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, missing)), UnknownTopic)
    # A producer's messages to a missing topic wait for it (the events topic may be created later).
    assert fatal_error(KafkaError(KafkaError._UNKNOWN_TOPIC, "Local: Unknown topic")) is None


def _mismatches_every(seconds: float, times: int) -> tuple[FatalErrorWatch, FakeClock, list[object]]:
    """A watch told of ``times`` protocol mismatches ``seconds`` apart; what it said to each."""
    clock = FakeClock()
    watch = FatalErrorWatch(clock)
    said: list[object] = []
    for _ in range(times):
        said.append(watch.check(KafkaError(KafkaError._TRANSPORT, SSL_TO_PLAINTEXT), "k:9092"))
        clock.advance(seconds)
    return watch, clock, said


def test_a_wrong_security_protocol_is_fatal_once_it_persists() -> None:
    # A wrong protocol's pace (its TCP connects succeed, so librdkafka's back-off never grows); exact in binary.
    every = 0.0625
    watch, _clock, said = _mismatches_every(every, int(PROTOCOL_MISMATCH_SECONDS / every) + 1)
    assert said[:-1] == [None] * (len(said) - 1)  # a broker going down mid-handshake can say it once
    assert isinstance(said[-1], AccessDenied) and "security protocol" in str(said[-1])
    mismatch = KafkaError(KafkaError._TRANSPORT, SSL_TO_PLAINTEXT)
    assert watch.check(mismatch, "k:9092") is None  # raised once per process: the process is stopping


def test_a_few_mismatches_over_a_long_time_are_not_enough() -> None:
    """A broker killed mid-request now and then: far fewer than a wrong protocol's ~20 a second."""
    assert _mismatches_every(4, 10)[2] == [None] * 10


def test_a_gap_between_mismatches_starts_the_count_again() -> None:
    watch, _clock, said = _mismatches_every(PROTOCOL_MISMATCH_SECONDS / 2 + 1, 40)  # each after more than the gap
    assert said == [None] * 40
    assert watch.check(KafkaError(KafkaError._TRANSPORT, REFUSED), "k") is None


def test_access_denied_is_raised_once_per_process() -> None:
    watch = FatalErrorWatch(FakeClock())
    assert isinstance(watch.check(KafkaError(KafkaError._AUTHENTICATION, SASL), "k"), AccessDenied)
    assert watch.check(KafkaError(KafkaError._AUTHENTICATION, SASL), "k") is None


def test_a_wrong_ssl_key_password_is_access_denied_not_a_traceback(tmp_path: Path) -> None:
    """librdkafka refuses the key in the client's constructor ("bad decrypt")."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=ordersctl", "-passout", "pass:the-password"],
                   check=True, capture_output=True)  # fmt: skip
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1", security_protocol="SSL", ssl_key_location=str(key),
                             ssl_certificate_location=str(cert), ssl_key_password="not-the-password")  # fmt: skip
    for make in (make_producer, make_consumer, make_admin):
        with pytest.raises(AccessDenied, match="Kafka: client credentials refused") as caught:
            make(settings)
        assert "not-the-password" not in str(caught.value)


def test_an_unknown_client_property_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Kafka client settings refused"):
        make_producer(KafkaSettings(), None, **{"no.such.property": "1"})
