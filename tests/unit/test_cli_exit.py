"""A command's process ends without taking the interpreter apart, but with everything the interpreter's exit
does for others: exit handlers run, output flushed, a running non-daemon thread waited for, the exit code kept."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def _end(body: str, *, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    script = "import atexit, sys, threading, time\nfrom ordersctl.cli.exit import leave\n" + textwrap.dedent(body)
    return _python(script, stdout)


def _python(script: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    # Buffered output, as a command's is unless its user says otherwise: then flushing it is the exit's job.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", script],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_exit_handlers_run_and_buffered_output_is_flushed_with_the_code() -> None:
    done = _end(
        """
        atexit.register(lambda: sys.stderr.write("handler ran\\n"))
        sys.stdout.write("last line, still buffered")
        leave(3)
        """
    )
    assert done.returncode == 3
    assert done.stdout == "last line, still buffered"
    assert "handler ran" in done.stderr


def test_the_interpreter_is_not_taken_apart() -> None:
    # A finalizer that only runs while the interpreter tears its modules down.
    done = _end(
        """
        class Noisy:
            def __del__(self):
                sys.stderr.write("torn down\\n")
        kept = Noisy()
        leave(0)
        """
    )
    assert done.returncode == 0
    assert "torn down" not in done.stderr


def test_a_command_leaves_without_taking_the_interpreter_apart() -> None:
    done = _python(
        textwrap.dedent(
            """
            import sys
            from ordersctl.cli.main import run
            class Noisy:
                def __del__(self):
                    sys.stderr.write("torn down\\n")
            kept = Noisy()
            sys.argv = ["ordersctl", "--version"]
            run()
            """
        )
    )
    assert done.returncode == 0
    assert done.stdout.startswith("ordersctl ")
    assert "torn down" not in done.stderr


def test_a_running_non_daemon_thread_is_waited_for_as_python_would() -> None:
    done = _end(
        """
        def late():
            time.sleep(0.3)
            print("thread finished", flush=True)
        threading.Thread(target=late).start()
        leave(4)
        """
    )
    assert done.returncode == 4
    assert "thread finished" in done.stdout


def test_output_that_cannot_be_flushed_fails_the_exit_as_python_does() -> None:
    reader = subprocess.Popen(["true"], stdin=subprocess.PIPE)
    reader.wait()  # the pipe's reader is gone: flushing into it is a broken pipe
    assert reader.stdin is not None
    done = _end(
        """
        sys.stdout.write("x" * 100)
        leave(0)
        """,
        stdout=reader.stdin.fileno(),
    )
    reader.stdin.close()
    assert done.returncode == 120


def test_a_profiler_still_gets_to_write_its_figures(tmp_path: Path) -> None:
    figures = tmp_path / "status.prof"
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(figures), "-m", "ordersctl", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert figures.stat().st_size > 0


def test_a_stream_the_command_closed_itself_is_left_alone_as_python_does() -> None:
    done = _end(
        """
        sys.stdout.close()
        leave(0)
        """
    )
    assert done.returncode == 0, done.stderr
