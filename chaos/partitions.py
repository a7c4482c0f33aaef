"""Network partitions on one machine, with nftables: packets to and from the stack's own ports dropped on the
loopback interface, both ways, without a reset (as a lost host or a firewall does), so only the clients' own
timeouts can notice.

Everything lives in one table of the harness's own (``ordersctl_chaos_<pid>``), one base chain per partition:
healing deletes the chain, ``close`` the table. A table left by a run that died (its pid gone) is deleted when
the next one starts. Nothing else is touched: no other table, port or interface.

One process cut off from everything (``isolate``): on loopback every process shares the addresses, so it is
matched by its sockets. Those it holds already, by their local ports; those it opens meanwhile, by a cgroup v2 it
is moved into for the partition (nftables' ``socket cgroupv2``), since a socket keeps the cgroup it was made in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

TABLE_PREFIX = "ordersctl_chaos"
_CGROUP_BASE = Path("/sys/fs/cgroup")  # where nftables resolves a cgroupv2 path


def nft(script: str) -> None:
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True, capture_output=True, timeout=30)


def ensure_nft() -> None:
    """nftables (Debian package ``nftables``), installed when missing, as the stack installs its services."""
    if shutil.which("nft"):
        return
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nftables"], env=env, check=True, capture_output=True)


def _tables() -> list[str]:
    out = subprocess.run(["nft", "list", "tables", "inet"], text=True, check=True, capture_output=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.startswith("table inet ")]


def delete_stale_tables() -> list[str]:
    """The tables of earlier runs whose process is gone (killed halfway through a partition)."""
    stale = []
    for table in _tables():
        owner = table.removeprefix(f"{TABLE_PREFIX}_")
        if table.startswith(f"{TABLE_PREFIX}_") and owner.isdigit() and not Path(f"/proc/{owner}").exists():
            nft(f"delete table inet {table}")
            stale.append(table)
    return stale


def _cgroup2_root() -> Path:
    for line in Path("/proc/mounts").read_text().splitlines():
        _dev, mount, kind, *_ = line.split()
        if kind == "cgroup2":
            return Path(mount)
    raise RuntimeError("no cgroup v2 hierarchy mounted: a process cannot be partitioned alone")


def socket_ports(pid: int, remote_ports: set[int]) -> set[int]:
    """Local ports of the TCP sockets ``pid`` holds whose peer is on one of ``remote_ports``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) in remote_ports:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def _set(ports: Iterable[int]) -> str:
    return "{ " + ", ".join(str(p) for p in sorted(ports)) + " }"


class Partitions:
    """The harness's nftables table; each partition a chain of its own, until healed."""

    def __init__(self, table: str | None = None) -> None:
        self.table = table or f"{TABLE_PREFIX}_{os.getpid()}"
        self._cgroups: dict[str, tuple[int, Path, str]] = {}  # chain -> (pid, its cgroup, its former cgroup)
        self._opened = False

    def open(self) -> None:
        ensure_nft()
        delete_stale_tables()
        nft(f"add table inet {self.table}\ndelete table inet {self.table}\nadd table inet {self.table}")
        self._opened = True

    def drop_ports(self, name: str, ports: Iterable[int]) -> None:
        """Drop every packet to or from ``ports`` on loopback: the services there vanish for every client."""
        dropped = _set(ports)
        self._chain(name, [f'oifname "lo" tcp dport {dropped} drop', f'oifname "lo" tcp sport {dropped} drop'])

    def isolate(self, name: str, pid: int, ports: Iterable[int]) -> None:
        """Cut process ``pid`` off from ``ports`` (the whole stack): its connections there, and new ones."""
        wanted = set(ports)
        root = _cgroup2_root()
        group = root / f"{self.table}_{name}"
        group.mkdir(exist_ok=True)
        former = Path(f"/proc/{pid}/cgroup").read_text().splitlines()[-1].split("::", 1)[-1] or "/"
        held = socket_ports(pid, wanted)
        rules = [f'oifname "lo" socket cgroupv2 level 1 "{os.path.relpath(group, _CGROUP_BASE)}" '
                 f"tcp dport {_set(wanted)} drop"]  # fmt: skip
        if held:
            rules += [f'oifname "lo" tcp sport {_set(held)} drop', f'oifname "lo" tcp dport {_set(held)} drop']
        self._chain(name, rules)
        self._cgroups[name] = (pid, group, former)
        (group / "cgroup.procs").write_text(str(pid))

    def _chain(self, name: str, rules: list[str]) -> None:
        body = "\n".join(f"add rule inet {self.table} {name} {rule}" for rule in rules)
        nft(f"add chain inet {self.table} {name} {{ type filter hook output priority 0; policy accept; }}\n{body}")

    def heal(self, name: str) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            nft(f"delete chain inet {self.table} {name}")
        entry = self._cgroups.pop(name, None)
        if entry is not None:
            pid, group, former = entry
            with contextlib.suppress(OSError):  # the process may have died meanwhile
                (_cgroup2_root() / former.lstrip("/") / "cgroup.procs").write_text(str(pid))
            with contextlib.suppress(OSError):
                group.rmdir()

    def close(self) -> None:
        """Heal everything and delete the table (also after an interrupted run)."""
        for name in list(self._cgroups):
            self.heal(name)
        if self._opened:
            with contextlib.suppress(subprocess.CalledProcessError):
                nft(f"delete table inet {self.table}")
            self._opened = False
