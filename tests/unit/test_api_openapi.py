"""The helpers that turn our route templates and pydantic's JSON Schema into OpenAPI 3.0."""

from __future__ import annotations

from ordersctl.api.openapi import openapi_path, to_openapi30


def test_openapi_helpers() -> None:
    assert openapi_path("/orders/{order_uid}") == "/orders/{order_uid}"
    assert openapi_path("/x/{id:int}/{name}") == "/x/{id}/{name}"
    converted = to_openapi30({"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Next"})
    assert converted == {"type": "string", "nullable": True, "title": "Next"}
    assert to_openapi30({"const": "ok"}) == {"enum": ["ok"]}
