"""Masking by name (URLs, DSNs, properties) never raises, and masking by value reaches every part of a log
record: message, arguments, extra fields, traceback."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ordersctl import masking
from ordersctl.logs import JsonFormatter
from ordersctl.masking import SecretFilter, mask_text, mask_url, secrets_in_property, secrets_in_url


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    masking.forget_all()
    yield
    masking.forget_all()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://u:pw@host:notaport/db", "postgresql://u:***@host:notaport/db"),
        ("postgresql://u:p/w@d@host/db", "postgresql://u:***@host/db"),  # raw / and @ in the password
        ("redis://:pw@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("postgresql://u@db/x?sslmode=require&password=pw", "postgresql://u@db/x?sslmode=require&password=***"),
        ("host=db password = 'p w' user=u", "host=db password = *** user=u"),
        ("not a url at all", "not a url at all"),
        ("", ""),
    ],
)
def test_mask_url_hides_the_password_of_malformed_urls_too(raw: str, expected: str) -> None:
    assert mask_url(raw) == expected


def test_the_secrets_of_a_url_are_found_raw_and_decoded() -> None:
    assert set(secrets_in_url("postgresql://u:p%40ss@db/x")) == {"p%40ss", "p@ss"}
    assert secrets_in_url("host=db password='a b c'") == ["a b c"]
    assert secrets_in_url("postgresql://u@db/x") == []


def test_secret_properties_yield_the_whole_value_and_the_secrets_inside() -> None:
    found = secrets_in_property("sasl.oauthbearer.config", "clientId=app clientSecret=s3cr3t-1 scope=x")
    assert found == ["clientId=app clientSecret=s3cr3t-1 scope=x", "s3cr3t-1"]
    assert secrets_in_property("socket.timeout.ms", "1000") == []


def test_short_values_are_not_masked_by_value() -> None:
    masking.remember(["abc", "s3cr3t", "s3cr3t-longer"])
    assert mask_text("abc s3cr3t s3cr3t-longer") == "abc *** ***"


def test_the_log_filter_masks_every_part_of_a_record() -> None:
    masking.remember(["hunter22"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretFilter(logging.LogRecord("", 0, "", 0, "", (), None).__dict__))
    log = logging.getLogger("test.masking")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise RuntimeError("auth failed with hunter22")
        except RuntimeError:
            log.exception("connecting with %s", "pw=hunter22", extra={"dsn": "x:hunter22@db", "n": 3})
    finally:
        log.removeHandler(handler)
    line = stream.getvalue()
    assert "hunter22" not in line
    entry = json.loads(line)
    assert entry["msg"] == "connecting with pw=***"
    assert entry["dsn"] == "x:***@db" and entry["n"] == 3
    assert "auth failed with ***" in entry["exc_info"]


def test_http_error_bodies_mask_secret_values() -> None:
    import falcon
    import falcon.testing

    from ordersctl.api.app import _error_serializer

    masking.remember(["hunter22"])
    resp = falcon.Response()
    _error_serializer(falcon.testing.create_req(), resp, falcon.HTTPBadRequest(title="bad", description="hunter22"))
    assert resp.data == b'{"error": "bad", "detail": "***"}'
