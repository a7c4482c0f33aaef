"""How the harness acts on the stack: shell commands, one per action, with ``{node}`` for a broker id.

The defaults drive the local stack (scripts/stack). To point the harness at another stack, give a JSON file
with the same keys (``--controls FILE``): say, ``ssh kafka-{node} sudo systemctl kill -s KILL kafka``."""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path

STACK = str(Path(__file__).resolve().parents[1] / "scripts" / "stack")


@dataclass(frozen=True)
class Controls:
    broker_kill: str = f"{STACK} kafka-kill {{node}}"
    broker_start: str = f"{STACK} kafka-start {{node}}"
    broker_pause: str = f"{STACK} kafka-pause {{node}}"
    broker_resume: str = f"{STACK} kafka-resume {{node}}"
    pg_crash: str = f"{STACK} pg-crash"
    pg_start: str = f"{STACK} pg-start"
    redis_stop: str = f"{STACK} redis-stop"
    redis_start: str = f"{STACK} redis-start"
    citus_kill: str = f"env ORDERS_STACK_PG=citus {STACK} citus-kill {{node}}"  # {node}: 1 or 2, a worker node
    citus_start: str = f"env ORDERS_STACK_PG=citus {STACK} citus-start {{node}}"
    ha_kill_primary: str = f"env ORDERS_STACK_PG=ha {STACK} ha-crash-primary"  # whichever node is primary now
    ha_heal: str = f"env ORDERS_STACK_PG=ha {STACK} ha-heal"  # every node up again, a primary and a secondary

    @classmethod
    def load(cls, path: Path | None) -> Controls:
        if path is None:
            return cls()
        return replace(cls(), **json.loads(path.read_text()))

    def run(self, action: str, node: int | None = None, timeout: float = 180) -> None:
        template: str = asdict(self)[action]
        command = template.format(node=node if node is not None else "")
        subprocess.run(shlex.split(command), check=True, timeout=timeout, stdout=subprocess.DEVNULL)
