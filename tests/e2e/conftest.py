"""Every e2e test: each line that an ordersctl process it started wrote to stderr is a JSON log record with
``pid`` and ``process`` (issue #22: stderr is the log stream, nothing else reaches it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import collected_logs, log_records


@pytest.fixture(autouse=True)
def stderr_is_json_log_stream() -> Iterator[None]:
    with collected_logs() as processes:
        yield
        for command, read in processes:
            log_records(read(), command)
