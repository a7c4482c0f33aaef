"""The body of a consume worker process (``worker_main``), apart from the supervisor: a spawned worker imports the
module its target lives in, so this one imports only what a worker needs (and a forked one has WORKER_MODULES).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from ordersctl.errors import FatalError
from ordersctl.pipeline.options import WorkerOptions

log = logging.getLogger(__name__)
# How long a finished worker waits for its Kafka clients to flush and close before it exits regardless.
TEARDOWN_SECONDS = 15.0
# A worker's exit code after an error that cannot heal (sysexits' EX_CONFIG): its supervisor restarts nothing.
FATAL_EXIT = 78
# The key of a worker's report that carries such an error instead of its counts.
FATAL_REPORT = "fatal"
# What worker_main imports: the zygote imports them once, and every worker forked from it has them (zygote.py).
WORKER_MODULES = (
    "ordersctl.adapters.kafka",
    "ordersctl.adapters.postgres",
    "ordersctl.config",
    "ordersctl.log_stream",
    "ordersctl.logs",
    "ordersctl.pipeline.interpreter",
    "ordersctl.pipeline.wiring",
    "ordersctl.process_name",
    "ordersctl.runtime",
)


def fatal_report(exc: FatalError) -> dict[str, str]:
    """A FatalError as it crosses to the supervisor (plain data: any exception may not pickle)."""
    return {FATAL_REPORT: type(exc).__name__, "service": exc.service, "cause": exc.cause}


def worker_main(config_file: Path | None, overrides: dict[str, Any], options: WorkerOptions, reports: Any) -> None:
    """Body of a worker process. It always ends with ``os._exit``: once its batches are committed nothing in
    it needs finalizing, and a librdkafka handle that blocks in its destructor (seen after a broker restart,
    confluentinc/librdkafka#4674) must not keep a finished worker alive."""
    from ordersctl.adapters.kafka import Member
    from ordersctl.config import for_process, load_settings
    from ordersctl.log_stream import dump_stacks_on
    from ordersctl.logs import identify, setup_logging
    from ordersctl.pipeline.interpreter import tune_interpreter
    from ordersctl.pipeline.wiring import build_worker
    from ordersctl.process_name import set_name, worker_name
    from ordersctl.runtime import Runtime

    code = 1
    set_name(worker_name(options.worker_id))  # in ps and top; a spawned one has no zygote to name it
    identify("consume", options.worker_id)

    def report(snapshot: dict[str, Any]) -> None:
        reports.put(((options.worker_id, os.getpid()), snapshot))

    try:
        settings = for_process(load_settings(config_file, overrides), f"ordersctl-consume-w{options.worker_id}")
        setup_logging(settings.log.level, settings.log.format, "consume", options.worker_id)
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        # `kill -USR1 <worker pid>` writes every thread's stack to the log (stderr): what a stuck worker waits on.
        dump_stacks_on(signal.SIGUSR1)
        runtime = Runtime(settings, Member(worker=options.worker_id))
        try:
            worker = build_worker(runtime, options, stop, report=report)
            tune_interpreter()
            worker.run()
            code = 0
        finally:
            if not runtime.close(timeout=TEARDOWN_SECONDS):
                log.warning(
                    "Kafka clients did not close in time; exiting without them", extra={"seconds": TEARDOWN_SECONDS}
                )
    except FatalError as exc:
        # Cannot heal: one log line, no traceback; the supervisor stops consume and says why.
        log.error("stopping on an error that cannot heal", extra={"error": str(exc)})
        report(fatal_report(exc))
        code = FATAL_EXIT
    except BaseException:
        # The supervisor restarts the worker; the traceback goes to the log (masked by its handler).
        _log_crash(overrides)
    finally:
        logging.shutdown()
        reports.close()
        reports.join_thread()  # the last progress report reaches the supervisor
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _log_crash(overrides: dict[str, Any]) -> None:
    """A worker's uncaught exception, with its traceback, as a log record (masked by the handler): in the JSON log
    stream one JSON line. Logging is set up first if the worker died before it did."""
    from ordersctl.config import log_format_given
    from ordersctl.logs import json_stream

    json_stream(log_format_given(overrides.get("log", {}).get("format")))
    log.critical("worker failed", exc_info=True)
