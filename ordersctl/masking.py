"""Secrets never reach any output: masking by name (settings, URLs, ``key=value`` strings) and by value.

``load_settings`` tells this module every secret value it loaded (passwords, tokens, the password of each URL
or DSN, the secret-bearing ``kafka.extra`` properties); ``mask_text`` then replaces each of them wherever it
appears: in log records (``SecretFilter``), error lines, HTTP error bodies. Masking by value also covers text
nobody parsed: a DSN that does not parse, a client's error message that quotes a setting.

Values shorter than ``MIN_MASKED_LENGTH`` are not masked by value (they would blank out every occurrence of a
common letter pair); they are still masked wherever they are recognised by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "***"
MIN_MASKED_LENGTH = 4
# Words that make a property secret-bearing (a librdkafka key, a key=value pair inside a property's value);
# "key" masks ssl.key.location too, a path: harmless, and simpler than a list of every key-bearing property.
SECRET_WORDS = ("password", "passphrase", "passwd", "secret", "token", "key", "credential")
# librdkafka properties whose whole value carries secrets without a secret word in the key.
SECRET_PROPERTIES = frozenset({"sasl.oauthbearer.config", "sasl.jaas.config"})

_known: tuple[str, ...] = ()
KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_PAIR = re.compile(r"([A-Za-z0-9_.-]+)\s*[=:]\s*(\"[^\"]*\"|'[^']*'|[^\s,;]+)")


def is_secret_key(name: str) -> bool:
    """Whether a property's name says its value is a secret."""
    lowered = name.strip().lower()
    return lowered in SECRET_PROPERTIES or any(word in lowered for word in SECRET_WORDS)


def userinfo_span(value: str) -> tuple[int, int] | None:
    """Where the userinfo of ``scheme://user:pw@host`` is, found without parsing the rest, so that a malformed
    URL (a port that is not a number, a raw ``/`` or ``@`` in the password) is masked all the same: everything
    between ``://`` and the last ``@``."""
    scheme = _SCHEME.match(value)
    if scheme is None:
        return None
    at = value.rfind("@")
    return (scheme.end(), at) if at > scheme.end() else None


def url_password(value: str) -> str | None:
    """The password in a URL's userinfo (raw, as written), or None."""
    span = userinfo_span(value)
    if span is None:
        return None
    _user, sep, password = value[span[0] : span[1]].partition(":")
    return password if sep else None


def mask_url(value: str) -> str:
    """Hide the password of a URL (``scheme://user:pw@host``, also ``?password=``) or a libpq ``key=value`` DSN.
    Never raises, whatever the value."""
    span = userinfo_span(value)
    if span is not None:
        user, sep, _password = value[span[0] : span[1]].partition(":")
        if sep:
            value = f"{value[: span[0]]}{user}:{MASK}{value[span[1] :]}"
    if _SCHEME.match(value):
        return _QUERY_PASSWORD.sub(rf"\g<1>{MASK}", value)
    return KV_PASSWORD.sub(rf"\g<1>{MASK}", value)


def secrets_in_url(value: str) -> list[str]:
    """Every password a URL or DSN carries, as written and decoded, for masking by value."""
    found = [url_password(value) or ""]
    found += [m.group(2).strip("'") for m in KV_PASSWORD.finditer(value)]
    found += [m.group(0).split("=", 1)[1] for m in _QUERY_PASSWORD.finditer(value)]
    return [v for s in found if s for v in {s, unquote(s)}]


def secrets_in_property(name: str, value: str) -> list[str]:
    """The secret values of a secret-bearing property: the whole value, and each ``key=value`` inside it whose
    key is secret-bearing (``clientSecret=...`` in sasl.oauthbearer.config, ``password="..."`` in a JAAS line),
    since a client may quote one part alone."""
    if not is_secret_key(name):
        return []
    parts = [m.group(2).strip("\"'") for m in _PAIR.finditer(value) if is_secret_key(m.group(1))]
    return [value, *parts]


def remember(values: Iterable[str]) -> None:
    """Add secret values to mask from now on, in this process."""
    global _known
    merged = {v for v in (*_known, *values) if len(v) >= MIN_MASKED_LENGTH}
    _known = tuple(sorted(merged, key=len, reverse=True))  # longest first: a secret inside another is masked too


def forget_all() -> None:
    """Mask no value any more (tests)."""
    global _known
    _known = ()


def mask_text(text: str) -> str:
    """``text`` with every remembered secret value replaced by the mask."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _masked(value: object) -> object:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    text = str(value)
    masked = mask_text(text)
    return value if masked == text else masked


class SecretFilter(logging.Filter):
    """Masks remembered secret values in a record: its message, its ``extra`` fields, its traceback and stack.
    Set on the handlers, so every record that is written passes through it, whichever logger made it."""

    def __init__(self, standard: Iterable[str]) -> None:
        super().__init__()
        self._standard = frozenset(standard)

    def filter(self, record: logging.LogRecord) -> bool:
        if not _known:
            return True
        # Formatted once here: the formatter's getMessage() then has nothing left to do.
        record.msg, record.args = mask_text(record.getMessage()), None
        for name, value in list(record.__dict__.items()):
            if name not in self._standard:
                record.__dict__[name] = _masked(value)
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
