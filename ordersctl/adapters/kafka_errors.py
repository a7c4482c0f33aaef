"""Kafka errors that retrying cannot heal, told apart from outages.

librdkafka retries everything itself and reports each failed attempt through the error callback (``error_cb``)
or as a message error: a wrong password or security protocol would be retried for ever, hundreds of log lines a
minute. The clients ordersctl builds get :func:`stop_on_fatal` as their error callback: it raises the
:class:`~ordersctl.errors.FatalError` from the ``poll``/``consume``/``flush`` that served it, once per process
(later ones come from the same cause while the process stops). An outage (connection refused, all brokers down,
timeouts) is never fatal here: it stays transient, retried as before, however long it lasts and whether or not
the client ever connected (the chaos suite kills brokers, and a broker down at start comes back).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaError

from ordersctl.errors import AccessDenied, ConfigError, FatalError, OrdersError, UnknownTopic

SERVICE = "Kafka"

# Authentication and authorization refused: a wrong password or mechanism, a broker certificate we do not trust
# (expired, another CA, a host name mismatch: librdkafka says _SSL), a missing ACL.
_ACCESS_CODES = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError._SSL,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.DELEGATION_TOKEN_AUTHORIZATION_FAILED,
        KafkaError.UNSUPPORTED_SASL_MECHANISM,
        KafkaError.ILLEGAL_SASL_STATE,
    }
)
# The broker refused our client certificate (expired, revoked, from a CA it does not trust). With TLS 1.3 the client
# finishes its side of the handshake before the broker has checked the certificate, so the broker's alert arrives on
# the first read, as a transport failure ("Receive failed: ...: ssl/tls alert certificate unknown: SSL alert number
# 46"), not as _SSL. An outage never makes a broker send a certificate alert.
_CERTIFICATE_ALERT = re.compile(
    r"alert (?:bad certificate|unsupported certificate|certificate revoked|certificate expired|certificate unknown"
    r"|unknown ca|certificate required)",
    re.IGNORECASE,
)
# A security protocol the listener does not speak shows as a transport failure, with librdkafka's own guess in
# the text ("SSL handshake failed: ... connecting to a PLAINTEXT broker listener?", "Disconnected while requesting
# ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?)").
# A broker going down mid-handshake can say something alike once; a wrong protocol says it on every attempt, and
# since each attempt's TCP connection succeeds librdkafka's reconnect back-off never grows: about 20 a second. So
# it is fatal only once it has gone on for PROTOCOL_MISMATCH_SECONDS, at least _MISMATCH_MIN_ERRORS times, with
# no gap of _MISMATCH_GAP_SECONDS (a gap starts the count again).
_PROTOCOL_HINTS = ("security.protocol", "broker listener?", "ssl listener?", "sasl listener?")
PROTOCOL_MISMATCH_SECONDS = 10.0
_MISMATCH_MIN_ERRORS = 20
_MISMATCH_GAP_SECONDS = 5.0


def fatal_error(err: KafkaError, address: str = "") -> FatalError | None:
    """The fatal error ``err`` stands for, or None (transient, or not ours to judge)."""
    where = f" at {address}" if address else ""
    text = err.str()
    if err.code() in _ACCESS_CODES:
        return AccessDenied(SERVICE, f"access denied{where}{_certificate_cause(err)} ({err.name()}: {text})")
    if err.code() == KafkaError._TRANSPORT and _CERTIFICATE_ALERT.search(text):
        return AccessDenied(SERVICE, f"access denied{where}{_CLIENT_CERTIFICATE} ({text})")
    if err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC) and "Subscribed topic" in text:
        # A consumer's subscription; a producer's unknown topic stays transient (its messages wait, see the relay).
        return UnknownTopic(SERVICE, f"topic not found{where} ({text})")
    return None


_CLIENT_CERTIFICATE = ": the broker refused the client certificate (expired, revoked or from a CA it does not trust)"


def _certificate_cause(err: KafkaError) -> str:
    """What librdkafka's "certificate verify failed" can mean: its own hint names ssl.ca.location alone, also when
    the certificate names another host (a bootstrap address not in it) or has expired."""
    if err.code() != KafkaError._SSL or "certificate verify failed" not in err.str():
        return ""
    return (
        ": the broker's certificate was not accepted (not signed by the CA of ssl.ca.location, expired, or not"
        " naming the host connected to)"
    )


def refused_settings(err: KafkaError) -> OrdersError:
    """A client that librdkafka would not build (its constructor raised ``err``): a key, certificate or SASL setting
    it refused (say a wrong ``ssl.key.password``: "bad decrypt") is AccessDenied, any other setting ConfigError."""
    text = err.str().splitlines()[0] if err.str() else err.name()
    if any(word in text.lower() for word in ("ssl", "sasl", "certificate", "key")):
        return AccessDenied(SERVICE, f"client credentials refused ({text})")
    return ConfigError(f"Kafka client settings refused: {text}")


def protocol_mismatch(err: KafkaError) -> bool:
    """A transport failure that librdkafka itself puts down to the security protocol."""
    text = err.str().lower()
    return err.code() == KafkaError._TRANSPORT and any(hint in text for hint in _PROTOCOL_HINTS)


class FatalErrorWatch:
    """Turns the errors librdkafka reports into a raised FatalError, at most once per process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._raised = False
        self._mismatch_since: float | None = None
        self._mismatch_last = 0.0
        self._mismatches = 0

    @property
    def raised(self) -> bool:
        return self._raised

    def note(self) -> None:
        """One was raised by another path (a message's error, a delivery report): no more from the callback."""
        with self._lock:
            self._raised = True

    def check(self, err: KafkaError, address: str) -> FatalError | None:
        """The fatal error to raise now for ``err``, if any (None as well once one was raised)."""
        fatal = fatal_error(err, address)
        if fatal is None and protocol_mismatch(err):
            fatal = self._persistent_mismatch(err, address)
        if fatal is None:
            return None
        with self._lock:
            if self._raised:
                return None
            self._raised = True
        return fatal

    def _persistent_mismatch(self, err: KafkaError, address: str) -> FatalError | None:
        now = self._clock()
        if self._mismatch_since is None or now - self._mismatch_last > _MISMATCH_GAP_SECONDS:
            self._mismatch_since, self._mismatches = now, 0
        self._mismatch_last = now
        self._mismatches += 1
        if now - self._mismatch_since < PROTOCOL_MISMATCH_SECONDS or self._mismatches < _MISMATCH_MIN_ERRORS:
            return None
        return AccessDenied(SERVICE, f"wrong security protocol for the listener at {address} ({err.str()})")


_watch = FatalErrorWatch()


Fatal = TypeVar("Fatal", bound=FatalError)


def raised_once(fatal: Fatal) -> Fatal:
    """``fatal``, to raise from a path other than the error callback (a consumer's message error, a refused
    delivery): the callback then raises no second one, say from a client closing in a thread of its own, where it
    would be a traceback."""
    _watch.note()
    return fatal


def fatal_raised() -> bool:
    """Whether a client of this process raised an error that cannot heal: the process is stopping, and a producer
    has nothing to wait for (its messages cannot be delivered with these credentials)."""
    return _watch.raised


def stop_on_fatal(address: str) -> Callable[[KafkaError], None]:
    """An ``error_cb`` for a client of ``address``: raises what cannot heal, leaves the rest to librdkafka (which
    logs it through our logger and retries)."""

    def error_cb(err: KafkaError) -> None:
        fatal = _watch.check(err, address)
        if fatal is not None:
            raise fatal

    return error_cb
