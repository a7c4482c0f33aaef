"""The nodes of a Citus cluster as its coordinator sees them, for ``status``: each node's role, address, whether
the coordinator reaches it, and how many shards it holds. None on plain PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ordersctl.adapters.citus import CitusNode, citus_nodes, is_citus
from ordersctl.observe.sources import Sources


@dataclass(frozen=True)
class CitusNodes:
    """Every node of the cluster (the coordinator first)."""

    nodes: tuple[CitusNode, ...]

    def problems(self) -> list[str]:
        return [f"Citus {n.role} {n.address} unreachable from the coordinator" for n in self.nodes if not n.up]

    def as_json(self) -> list[dict[str, Any]]:
        return [{"role": n.role, "address": n.address, "up": n.up, "shards": n.shards} for n in self.nodes]

    def lines(self) -> list[str]:
        return [
            f"citus {n.role:<11} {n.address:<21} {'up' if n.up else 'UNREACHABLE'}"
            + (f", {n.shards} shards" if n.shards else "")
            for n in self.nodes
        ]


def read_citus_nodes(src: Sources) -> CitusNodes | None:
    with src.connect() as conn:
        if not is_citus(conn):
            return None
        return CitusNodes(tuple(citus_nodes(conn)))
