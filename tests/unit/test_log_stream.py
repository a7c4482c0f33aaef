"""The JSON log stream: with log.format json every line on stderr is one JSON object with pid and process (and
worker in a worker process), whatever wrote it: loggers, console lines, warnings, uncaught exceptions, the
thread stacks of SIGUSR1. Secrets are masked on each of those paths."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from ordersctl import logs, masking
from ordersctl.logs import setup_logging
from ordersctl.output import info, progress
from tests.helpers import log_records


def _records(err: str) -> list[dict[str, Any]]:
    return log_records(err, "the test's process")


def test_every_record_carries_pid_process_and_the_worker(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "json", "consume", 3)
    logging.getLogger("ordersctl.test").info("stored", extra={"orders": 2})
    [record] = _records(capsys.readouterr().err)
    assert record["pid"] == os.getpid() and record["process"] == "consume" and record["worker"] == 3
    assert record["msg"] == "stored" and record["orders"] == 2


def test_no_worker_field_outside_a_worker_and_a_records_fields_never_rename_the_writer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("INFO", "json", "serve")
    logging.getLogger("ordersctl.test").warning("slow")
    logging.getLogger("ordersctl.test").info("child started", extra={"worker": 1, "pid": 1})
    slow, started = _records(capsys.readouterr().err)
    assert slow["process"] == "serve" and "worker" not in slow
    assert started["pid"] == os.getpid() and "worker" not in started


def test_console_lines_are_records_whatever_the_level_and_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """A summary is for the reader: it is written at log.level WARNING too, as a record, its secrets masked."""
    setup_logging("WARNING", "json", "consume")
    masking.remember(["s3cr3t-value"])
    try:
        info("consume: done. consumed=0 stored=0 (s3cr3t-value)")
        info("partition 3: fewer than 8", style="red")
    finally:
        masking.forget_all()
    done, problem = _records(capsys.readouterr().err)
    assert done["msg"] == f"consume: done. consumed=0 stored=0 ({masking.MASK})" and done["level"] == "info"
    assert done["process"] == "consume" and problem["level"] == "error"


def test_progress_bars_are_off_in_the_json_stream() -> None:
    setup_logging("INFO", "json", "produce")
    assert progress().disable
    setup_logging("INFO", "console", "produce")
    assert not progress().disable


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_warnings_and_uncaught_exceptions_of_any_thread_are_records() -> None:
    result = _run("""
        import threading, warnings
        from ordersctl.logs import setup_logging
        setup_logging("INFO", "json", "produce")
        warnings.warn("an old way")
        class Leaky:
            def __del__(self):
                raise OSError("in __del__")
        Leaky()
        def fail():
            raise RuntimeError("in a thread")
        thread = threading.Thread(target=fail, name="relay")
        thread.start()
        thread.join()
        raise ValueError("in the main thread")
    """)
    assert result.returncode == 1
    warned, ignored, in_thread, in_main = _records(result.stderr)
    assert ignored["msg"].startswith("Exception ignored in") and ignored["exc"] == "OSError"
    assert warned["logger"] == "py.warnings" and "UserWarning: an old way" in warned["msg"]
    assert in_thread["thread_name"] == "relay" and in_thread["exc"] == "RuntimeError"
    assert in_thread["level"] == "critical"
    assert "in fail" in in_thread["exc_info"]
    assert in_main["exc"] == "ValueError" and in_main["exc_info"].endswith("ValueError: in the main thread")
    assert {r["process"] for r in (warned, ignored, in_thread, in_main)} == {"produce"}


def test_any_other_text_on_stderr_becomes_records_line_by_line() -> None:
    """A library's print or a server thread's traceback.print_exc: one record per line, the logging machinery's own
    writes going to the stream itself."""
    result = _run("""
        import sys, traceback
        from ordersctl.logs import setup_logging
        setup_logging("INFO", "json", "serve")
        print("a library", "says", file=sys.stderr)
        sys.stderr.write("half a line ")
        sys.stderr.write("and the rest\\n\\n")
        try:
            raise KeyError("gone")
        except KeyError:
            traceback.print_exc()
    """)
    assert result.returncode == 0, result.stderr
    records = _records(result.stderr)
    assert [r["msg"] for r in records[:2]] == ["a library says", "half a line and the rest"]
    assert records[2]["msg"] == "Traceback (most recent call last):" and records[-1]["msg"] == "KeyError: 'gone'"
    assert {(r["logger"], r["process"]) for r in records} == {("stderr", "serve")}


def test_sigusr1_writes_every_threads_stack_as_one_record() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import signal, sys, time
            from ordersctl.log_stream import dump_stacks_on
            from ordersctl.logs import setup_logging
            setup_logging("INFO", "json", "consume", 0)
            dump_stacks_on(signal.SIGUSR1)
            print("ready", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)  # the relay thread gathers the dump until the pipe is quiet for 0.2 s
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    [record] = _records(err)
    assert record["msg"] == "thread stacks" and record["worker"] == 0
    assert "Current thread" in record["stacks"] and "in <module>" in record["stacks"]


def test_a_worker_crash_before_logging_is_set_up_is_a_record(capsys: pytest.CaptureFixture[str]) -> None:
    """The traceback of a worker that failed before it set logging up still reaches the stream as JSON."""
    from ordersctl.pipeline import worker_process

    logs.identity.json = None  # as in a worker process that failed before it set logging up
    try:
        raise OSError("address in use")
    except OSError:
        worker_process._log_crash({"log": {"format": "json"}})
    [record] = _records(capsys.readouterr().err)
    assert record["msg"] == "worker failed" and record["exc"] == "OSError"


@pytest.mark.parametrize(
    ("stderr", "says"),
    [
        (
            '{"msg": "ok", "pid": 1, "process": "consume"}\nconsume: done. consumed=0\n',
            "line 2 of consume's stderr is not",
        ),
        ('{"msg": "no pid", "process": "consume"}\n', "has no pid or process"),
        ('{"msg": "no process", "pid": 1}\n', "has no pid or process"),
        ("\n", "line 1 of consume's stderr is not a JSON object"),
    ],
)
def test_the_e2e_check_refuses_a_plain_line_and_a_record_without_pid_or_process(stderr: str, says: str) -> None:
    """What tests/e2e/conftest.py applies to every captured stderr."""
    with pytest.raises(AssertionError, match=says):
        log_records(stderr, "consume")
