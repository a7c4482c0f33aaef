"""Prometheus' naming conventions (https://prometheus.io/docs/practices/naming/), checked on what an endpoint
exposes as read by prometheus_client's own parser; and the README's metric table, read as data.

Used by tests/unit/test_metric_names.py (the registries) and tests/e2e/test_metrics.py (the real endpoints)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]

PREFIX = "ordersctl_"
# The client libraries' standard process metrics keep their standard names (the naming page gives
# process_cpu_seconds_total as its example of a library-wide prefix): dashboards and alerts expect them so.
STANDARD_PREFIXES = ("process_",)
# What a gauge, histogram or summary measures, as the last word of its name: base units, or the thing counted.
UNITS = ("seconds", "bytes", "messages", "fds", "ratio")
# Not base units: Prometheus wants seconds and bytes (a ratio, not a percent).
NOT_BASE_UNITS = {"ms", "milliseconds", "us", "microseconds", "ns", "nanoseconds", "minutes", "hours", "days",
                  "kb", "kilobytes", "mb", "megabytes", "gb", "gigabytes", "kib", "mib", "percent"}  # fmt: skip
# A name with one of these words measures time: it must say its unit, seconds.
TIME_WORDS = {"duration", "latency", "time", "elapsed", "age", "wait", "delay", "timeout", "uptime", "seconds"}
# Suffixes the exposition format gives the samples of histograms and summaries, and counters.
RESERVED_SUFFIXES = ("_count", "_sum", "_bucket", "_total", "_created")


@dataclass(frozen=True)
class Family:
    """A metric as a query names it (a counter with its ``_total``), its type and its label names (``le`` and
    ``quantile`` aside)."""

    name: str
    type: str
    labels: frozenset[str]


def families(text: str) -> dict[str, Family]:
    """Every metric of an exposition, by the name a query uses."""
    out: dict[str, Family] = {}
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        labels = {label for sample in family.samples for label in sample.labels} - {"le", "quantile"}
        known = out.get(name)
        out[name] = Family(name, family.type, frozenset(labels) | (known.labels if known else frozenset()))
    return out


def problems(text: str) -> list[str]:
    """What breaks the conventions in an exposition (empty: nothing)."""
    # The parser gives a counter's samples a "_total" they may lack in the text (OpenMetrics' representation):
    # what Prometheus stores is named by the text's TYPE line.
    found = [
        f"{name}: a counter whose name does not end in _total"
        for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE)
        if kind == "counter" and not name.endswith("_total")
    ]
    for family in text_string_to_metric_families(text):
        found += _family_problems(family.name, family.type, family.documentation)
    return found


def _family_problems(name: str, kind: str, documentation: str) -> list[str]:
    """What breaks the conventions in one metric family: prefix, help text, type, unit."""
    shown = name + "_total" if kind == "counter" else name
    words = shown.split("_")
    found = []
    if not name.startswith((PREFIX, *STANDARD_PREFIXES)):
        found.append(f"{shown}: no {PREFIX} prefix")
    if not documentation.strip():
        found.append(f"{shown}: no help text")
    if kind != "counter":
        found += _typed_name_problems(name, kind, words)
    if NOT_BASE_UNITS & set(words):
        found.append(f"{shown}: not in base units ({', '.join(sorted(NOT_BASE_UNITS & set(words)))})")
    if TIME_WORDS & set(words) and not re.search(r"_seconds(_total)?$", shown):
        found.append(f"{shown}: a time not in seconds (or without its unit)")
    return found


def _typed_name_problems(name: str, kind: str, words: list[str]) -> list[str]:
    """A gauge's, histogram's or summary's name: no suffix reserved to other types, a type, a unit at the end."""
    if name.endswith(RESERVED_SUFFIXES):
        return [f"{name}: a {kind} named with a suffix reserved to other types"]
    if kind in ("unknown", "untyped"):
        return [f"{name}: no type"]
    if words[-1] not in UNITS and not name.endswith("_info"):
        return [f"{name}: no unit at the end of the name (one of {', '.join(UNITS)})"]
    return []


def readme_table() -> dict[str, Family]:
    """The README's metric table: its first column the metric name, the second its type, the third its labels (each
    in backquotes)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n### Metrics\n", 1)[1].split("\n#", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        name, kind = cells[0].strip("`"), cells[1]
        out[name] = Family(name, kind, frozenset(re.findall(r"`([a-z_]+)`", cells[2])))
    return out
