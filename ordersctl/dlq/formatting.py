"""Dead letters for people: a table, the original messages pretty-printed, and a one-line summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from rich.syntax import Syntax
from rich.table import Table

from ordersctl.dlq import format as fmt
from ordersctl.dlq.records import UNREADABLE, DeadLetterRecord
from ordersctl.domain.peek import UNREADABLE as NOT_JSON
from ordersctl.domain.peek import bounded_json
from ordersctl.output import out_console, plain

# A payload is pretty-printed up to this size; a bigger one is shown as text, cut (``--json --payload`` has it all).
_PRETTY_LIMIT = 64 * 1024


@dataclass
class Summary:
    """Counts by reason and the time span of the dead letters seen."""

    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    oldest: str = ""
    newest: str = ""

    def add(self, record: DeadLetterRecord) -> None:
        self.count += 1
        self.reasons[record.reason] += 1
        stamp = record.failed_at
        if stamp and (not self.oldest or stamp < self.oldest):
            self.oldest = stamp
        if stamp and stamp > self.newest:
            self.newest = stamp

    def line(self, shown: int) -> str:
        by_reason = ", ".join(f"{k}={v}" for k, v in self.reasons.most_common())
        more = f" (showing {shown})" if shown < self.count else ""
        return f"dlq: {self.count} dead letters{more}: {by_reason}; oldest {self.oldest}, newest {self.newest}"


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def dead_letter_table(records: list[DeadLetterRecord]) -> Table:
    """Ids, origin, reason and times: no payload (personal data)."""
    table = Table("dlq", "original", "reason", "error", "order_uid", "failed at", "att.", "replays")
    for r in records:
        attempts = r.number(fmt.ATTEMPTS)
        uid = UNREADABLE if "order_uid" in r.unreadable else (r.order_uid or "-")
        cells = (f"{r.partition}@{r.offset}", _short(r.original()), _short(r.reason), _short(r.error), uid,
                 _short(r.failed_at), "" if attempts is None else str(attempts), str(r.replay_count))  # fmt: skip
        table.add_row(*(plain(c) for c in cells))
    return table


def print_payloads(records: list[DeadLetterRecord]) -> None:
    """Each original message, pretty-printed JSON where it is JSON (asked for with --payload)."""
    for record in records:
        out_console.rule(plain(f"{record.partition}@{record.offset} {_short(record.reason)}"))
        raw = record.value
        if raw is None:
            out_console.print(plain("(no payload)", "dim"))
            continue
        doc = bounded_json(raw) if len(raw) <= _PRETTY_LIMIT else NOT_JSON
        if doc is not NOT_JSON:
            out_console.print(Syntax(json.dumps(doc, indent=2, ensure_ascii=False), "json", word_wrap=True))
            continue
        cut = f"\n… ({len(raw) - _PRETTY_LIMIT} more bytes)" if len(raw) > _PRETTY_LIMIT else ""
        out_console.print(plain(raw[:_PRETTY_LIMIT].decode("utf-8", "replace") + cut))
