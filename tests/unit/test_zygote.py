"""The zygote (ordersctl/zygote.py), run in a process of its own: it must be forked while its caller has one thread,
and it makes its caller a child subreaper, neither of which suits the test process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from ordersctl.pipeline.worker_process import WORKER_MODULES

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the zygote is Linux-only")

SCRIPT = r"""
import json, os, signal, sys, time
import ordersctl.zygote
from ordersctl.process_name import ZYGOTE_NAME, kernel_name
from ordersctl.zygote import ForkedChild, Zygote, ZygoteUnavailable

class Instead:  # what runs in a worker's place when the zygote cannot fork it
    pid = exitcode = None
    started = False
    def start(self): self.started = True
    def is_alive(self): return False

def zygote_pids():
    mine = open(f"/proc/self/task/{os.getpid()}/children").read().split()
    return [int(p) for p in mine if open(f"/proc/{p}/comm").read().strip() == kernel_name(ZYGOTE_NAME)]

def body(request):
    kind, write_fd = request
    from ordersctl.pipeline.backoff import Backoff  # imported before the fork (preloaded by the caller)
    backoff = Backoff(1.0, 1000.0)
    facts = {
        "comm": open("/proc/self/comm").read().strip(),
        "preloaded": "decimal" in sys.modules,
        "sigint_default": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "jitter": [backoff.next() for _ in range(12)][-1],  # from [0, 1000]
    }
    os.write(write_fd, (json.dumps(facts) + "\n").encode())
    if kind == "exit3":
        os._exit(3)
    time.sleep(60)

assert "decimal" not in sys.modules
from ordersctl.pipeline.backoff import Backoff
Backoff(1.0, 1.0).next()  # the generator has a state to inherit
read_fd, write_fd = os.pipe()
signal.signal(signal.SIGTERM, lambda signum, frame: None)  # the caller's own: a worker must not inherit it
zygote = Zygote(body, preload=("decimal",))
zygote.start()
kinds = ("exit3", "term", "kill", "outlives")
children = {kind: ForkedChild(zygote, kind, (kind, write_fd), Instead) for kind in kinds}
parents = []
for child in children.values():
    child.start()  # returns once the worker is the caller's child
    parents.append(int(open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[1]))
reader = os.fdopen(read_fd)
facts = [json.loads(reader.readline()) for _ in children]
# Each worker has named itself by now. Ctrl-C reaches the whole group, and `kill -USR1` may be sent to every
# process of consume (the workers dump their stacks): the zygote lives on.
zygotes = zygote_pids()
for signum in (signal.SIGINT, signal.SIGUSR1):
    os.kill(zygotes[0], signum)
time.sleep(0.2)
survives_signals = len(zygotes) == 1 and zygote.alive
children["exit3"].join(10)
children["term"].terminate()
children["term"].join(10)
children["kill"].kill()
children["kill"].join(10)
started = time.monotonic()
zygote.close()  # the zygote exits although a worker it forked still runs
closed_in = time.monotonic() - started
outlives = children["outlives"]
alive_after_close = outlives.is_alive()
outlives.terminate()
outlives.join(10)
late = ForkedChild(zygote, "late", ("exit3", write_fd), Instead)
late.start()
gone = late.pid is None and late.is_alive() is False
# A zygote killed, or one that stops answering, is given up: the worker runs as `instead` makes it.
instead_of = {}
for how in (signal.SIGKILL, signal.SIGSTOP):
    other = Zygote(body)
    other.start()
    os.kill(zygote_pids()[0], how)
    ordersctl.zygote.ANSWER_SECONDS = 0.5
    made = []
    child = ForkedChild(other, "x", ("exit3", write_fd), lambda: made.append(Instead()) or made[-1])
    child.start()
    instead_of[how.name] = bool(made and made[0].started) and zygote_pids() == [] and not other.alive
try:
    Zygote(body, preload=("no_such_module",)).start()
    failed_preload = "started"
except ZygoteUnavailable as exc:
    failed_preload = str(exc)
print(json.dumps({
    "me": os.getpid(), "parents": parents, "facts": facts, "closed_in": closed_in,
    "alive_after_close": alive_after_close, "gone": gone, "survives_signals": survives_signals,
    "instead_of": instead_of, "failed_preload": failed_preload,
    "exitcodes": {kind: child.exitcode for kind, child in children.items()},
}))
"""


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_forked_worker_is_its_callers_child_and_ends_with_the_code_a_spawned_one_would(run: dict[str, Any]) -> None:
    assert run["parents"] == [run["me"]] * 4  # adopted: watched and reaped by the supervisor
    assert run["exitcodes"] == {"exit3": 3, "term": -15, "kill": -9, "outlives": -15}


def test_a_forked_worker_has_the_preloaded_modules_its_name_and_default_signal_handlers(run: dict[str, Any]) -> None:
    assert all(f["preloaded"] and f["sigint_default"] and f["sigterm_default"] for f in run["facts"])
    assert sorted(f["comm"] for f in run["facts"]) == sorted(run["exitcodes"])  # ps and top tell workers apart


def test_a_workers_modules_start_no_thread_when_imported() -> None:
    # The zygote imports them and then forks: a thread started by an import would be forked beside.
    script = (
        "import importlib, sys, threading\n"
        "for m in sys.argv[1:]:\n    importlib.import_module(m)\n"
        "print(threading.active_count())"
    )
    done = subprocess.run([sys.executable, "-c", script, *WORKER_MODULES], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1"


def test_workers_forked_from_one_zygote_draw_different_retry_delays(run: dict[str, Any]) -> None:
    assert len({f["jitter"] for f in run["facts"]}) == len(run["facts"])


def test_the_zygote_outlives_a_ctrl_c_and_a_stack_dump_request(run: dict[str, Any]) -> None:
    assert run["survives_signals"] is True


def test_the_zygote_ends_when_closed_and_its_workers_live_on_and_nothing_more_is_forked(run: dict[str, Any]) -> None:
    assert run["closed_in"] < 5
    assert run["alive_after_close"] is True
    assert run["gone"] is True


def test_a_zygote_killed_or_not_answering_is_given_up_and_the_worker_runs_instead(run: dict[str, Any]) -> None:
    assert run["instead_of"] == {"SIGKILL": True, "SIGSTOP": True}


def test_a_zygote_whose_imports_fail_is_refused_at_its_start(run: dict[str, Any]) -> None:
    assert "did not answer" in run["failed_preload"]


def test_the_zygote_is_not_forked_beside_another_thread() -> None:
    script = (
        "import threading, time\nfrom ordersctl.zygote import Zygote, ZygoteUnavailable\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "try:\n    Zygote(print).start()\nexcept ZygoteUnavailable as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True)
    assert "before any other thread" in done.stdout
