"""The dead-letter format: the header names a dead letter carries, and the only place they are spelled.

Besides our ``dlq.*`` headers, the Kafka Connect names (``__connect.errors.*``) are written too, so tools that
understand Connect's dead-letter queues read ours. A replay adds ``dlq.replay.*``.
"""

from __future__ import annotations

import re
from typing import Final

REASON: Final = "dlq.reason"
ERROR: Final = "dlq.error"
ERRORS: Final = "dlq.errors"
ORIGINAL_TOPIC: Final = "dlq.original.topic"
ORIGINAL_PARTITION: Final = "dlq.original.partition"
ORIGINAL_OFFSET: Final = "dlq.original.offset"
ORIGINAL_TIMESTAMP: Final = "dlq.original.timestamp"
CONSUMER_GROUP: Final = "dlq.consumer.group"
ATTEMPTS: Final = "dlq.attempts"
FAILED_AT: Final = "dlq.failed_at"
REPLAY_COUNT: Final = "dlq.replay.count"
REPLAY_FROM_TOPIC: Final = "dlq.replay.from.topic"
REPLAY_FROM_PARTITION: Final = "dlq.replay.from.partition"
REPLAY_FROM_OFFSET: Final = "dlq.replay.from.offset"
CONNECT_TOPIC: Final = "__connect.errors.topic"
CONNECT_PARTITION: Final = "__connect.errors.partition"
CONNECT_OFFSET: Final = "__connect.errors.offset"
CONNECT_EXCEPTION_CLASS: Final = "__connect.errors.exception.class.name"
CONNECT_EXCEPTION_MESSAGE: Final = "__connect.errors.exception.message"

# Headers that belong to the dead-letter format: a message dead-lettered again, or replayed, carries fresh
# ones instead of the old (the replay count excepted: it travels with the message).
OWN_HEADERS: Final = re.compile(r"^(dlq\.|__connect\.errors\.)")

# A replay skips a message replayed this many times already (``REPLAY_COUNT``), unless told otherwise: a poison
# message cannot loop for ever.
DEFAULT_REPLAY_LIMIT: Final = 3

# The error text a dead letter carries is cut here, so a letter stays close to its original's size.
ERROR_TEXT_LIMIT: Final = 1000

Headers = list[tuple[str, bytes]]
