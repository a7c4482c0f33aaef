"""OpenTelemetry tracing's settings (``[otel]``): off by default. The SDK's own OTEL_* variables (sampler,
resource, exporter headers and timeouts, batch sizes) are read by the SDK itself, as in any instrumented
service; these settings say only whether to trace and where to send the spans."""

from __future__ import annotations

import importlib.util
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator

from ordersctl.settings_sources import lower_choice

OtelExporter = Annotated[Literal["otlp", "console"], BeforeValidator(lower_choice)]


class OtelSettings(BaseModel):
    """Tracing with OpenTelemetry (the ``ordersctl[otel]`` extra): a span per batch, order and store in consume,
    per request in serve; a ``traceparent`` header of an orders message is continued, and carried on to the
    order's event. ``exporter``: ``otlp`` (protobuf over HTTP to ``endpoint``) or ``console`` (each span a log
    record on stderr, as the process logs: one JSON line with ``log.format = json``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    exporter: OtelExporter = "otlp"
    # The OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces. Empty: the SDK's choice, that is
    # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces, else localhost:4318.
    endpoint: str = ""

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_a_plain_url(cls, endpoint: str) -> str:
        endpoint = endpoint.strip()
        if not endpoint:
            return endpoint
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("it is not an http:// or https:// URL")
        if parts.username or parts.password:
            # Settings show their values (config show); a collector's credentials are headers, kept by the SDK.
            raise ValueError("credentials go in OTEL_EXPORTER_OTLP_HEADERS, not in the URL")
        return endpoint

    @field_validator("enabled")
    @classmethod
    def _sdk_installed(cls, enabled: bool) -> bool:
        # Said when the settings are loaded (exit 2, one line), not by each consume worker as it starts.
        if enabled and not sdk_installed():
            raise ValueError("tracing needs OpenTelemetry, which is not installed: pip install 'ordersctl[otel]'")
        return enabled


def sdk_installed() -> bool:
    """Whether the ``otel`` extra is installed, found without importing it."""
    try:
        return importlib.util.find_spec("opentelemetry.sdk") is not None
    except ModuleNotFoundError:
        return False
