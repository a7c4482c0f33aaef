"""Dead letters for people: a table, the original messages pretty-printed, and a one-line summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from rich.syntax import Syntax
from rich.table import Table

from ordersctl.dlq.records import DeadLetterRecord
from ordersctl.output import out_console


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
        error = _short(r.headers.get("dlq.error", ""))
        attempts = r.headers.get("dlq.attempts", "")
        table.add_row(f"{r.partition}@{r.offset}", r.original(), r.reason, error, r.order_uid or "-",
                      r.failed_at, attempts, str(r.replay_count))  # fmt: skip
    return table


def print_payloads(records: list[DeadLetterRecord]) -> None:
    """Each original message, pretty-printed JSON where it is JSON (asked for with --payload)."""
    for record in records:
        out_console.rule(f"{record.partition}@{record.offset} {record.reason}")
        if record.value is None:
            out_console.print("[dim](no payload)[/dim]")
            continue
        try:
            pretty = json.dumps(json.loads(record.value), indent=2, ensure_ascii=False)
            out_console.print(Syntax(pretty, "json", word_wrap=True))
        except ValueError:
            raw = record.value
            out_console.print(repr(raw) if b"\x00" in raw else raw.decode("utf-8", "replace"))
