"""A spawned consume worker (where no zygote can fork it) is a fresh interpreter: what it imports is start-up CPU
paid by every worker. It imports the module of its target and what worker_main imports, and none of the modules only
other processes use. (A forked worker has what its zygote imported: WORKER_MODULES, tests/unit/test_zygote.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ordersctl.pipeline.options import WorkerOptions
from ordersctl.pipeline.supervisor import Supervisor

# What a worker never uses: the Redis client (serve and the cache commands), the supervisor's health endpoints and
# process supervision, the API, the CLI and its terminal output, the order generator; nor pydantic-settings, which
# no process needs (settings_sources reads the settings' sources).
NOT_IN_A_WORKER = ("redis", "ordersctl.pipeline.health", "ordersctl.supervision", "falcon", "typer", "rich", "faker",
                   "ordersctl.api", "ordersctl.cli", "ordersctl.domain.generator", "pydantic_settings")  # fmt: skip

SCRIPT = """
import importlib, sys
importlib.import_module(sys.argv[1])  # the module of the target, as spawn's unpickling imports it
from ordersctl.adapters.kafka import Member
from ordersctl.config import for_process
from ordersctl.config import load_settings
from ordersctl.logs import setup_logging
from ordersctl.pipeline.interpreter import tune_interpreter
from ordersctl.pipeline.wiring import build_worker
from ordersctl.runtime import Runtime
print("\\n".join(sys.modules))
"""


def test_a_worker_imports_nothing_it_does_not_use() -> None:
    # Run apart: this test process has imported much more. The supervisor hands spawn a reference to worker_main.
    process = Supervisor(None, {}, 1, WorkerOptions())._make_worker(0)  # no zygote before run(): a spawned one
    module = process._target.__module__  # type: ignore[attr-defined]
    done = subprocess.run([sys.executable, "-c", SCRIPT, module], capture_output=True, text=True, check=True)
    assert _unwanted(set(done.stdout.split())) == []


def test_a_worker_of_the_console_script_runs_it_again_without_importing_the_command_tree() -> None:
    # spawn runs the parent's main script again in the worker, as __mp_main__ (multiprocessing's
    # _fixup_main_from_path): for `ordersctl consume`, the console script pip wrote.
    script = Path(sys.executable).with_name("ordersctl")
    assert script.is_file(), f"no console script beside {sys.executable}: is the package installed (pip install -e .)?"
    rerun = "import runpy, sys\nrunpy.run_path(sys.argv[1], run_name='__mp_main__')\nprint('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", rerun, str(script)], capture_output=True, text=True, check=True)
    entry = {"ordersctl.cli", "ordersctl.cli.entry"}  # the script's own target, which imports nothing else
    assert _unwanted(set(done.stdout.split()) - entry) == []


def _unwanted(imported: set[str]) -> list[str]:
    """The modules of ``imported`` that are, or are inside, one a worker never uses."""
    return sorted(m for m in imported if any(m == n or m.startswith(n + ".") for n in NOT_IN_A_WORKER))
