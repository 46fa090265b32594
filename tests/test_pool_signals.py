"""Ctrl-C and a SIGKILLed parent, in a real subprocess (SPEC §1; FAULTS F31).

Ctrl-C in a terminal sends SIGINT to the whole process group, workers included:
the script runs in a session of its own and the test signals that group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from conftest import METHODS

BOUND_S = 10.0


@pytest.fixture(autouse=True)
def _ctrl_c_can_arrive() -> None:
    # A process started with a bare `&` by a non-interactive shell inherits
    # SIGINT ignored, and so do the scripts these tests start: Ctrl-C then does
    # nothing, and every test here would fail as if parkit ignored it.
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN, (
        "this test run inherited SIGINT ignored (started with `&` from a "
        "non-interactive shell?): Ctrl-C can't be tested; run it as a foreground job"
    )


CTRL_C = """
import os, sys, time
import parkit

def nap(x):
    os.write(1, f"running {x}\\n".encode())  # one write: lines of two workers don't mix
    time.sleep(60)

if __name__ == "__main__":
    print("start", flush=True)
    try:
        parkit.map(nap, range(4), context=sys.argv[1], workers=2, chunksize=1)
    except KeyboardInterrupt:
        print("interrupted", time.monotonic(), flush=True)
        raise
"""

PARENT_KILLED = """
import os, signal, sys, time
import parkit

def nap(x):
    time.sleep(60)

if __name__ == "__main__":
    pool = parkit.Pool(2, context=sys.argv[1])
    pids = set(pool.map(lambda _: os.getpid(), range(8), chunksize=1))
    futures = [pool.submit(nap, i) for i in range(4)]
    time.sleep(0.3)
    print(*pids, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: set[int], bound: float) -> set[int]:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        left = {p for p in pids if _alive(p)}
        if not left:
            return set()
        time.sleep(0.05)
    return {p for p in pids if _alive(p)}


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("method", METHODS)
def test_ctrl_c_stops_the_call_and_leaves_nothing(method: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CTRL_C), method],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    descendants: set[int] = set()
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "start"
        # Both workers run an item (they print a marker first).
        running = sorted(proc.stdout.readline().strip() for _ in range(2))
        assert running == ["running 0", "running 1"]
        descendants = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=BOUND_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGINT, err
    lines = out.split()
    assert lines[0] == "interrupted", out
    assert float(lines[1]) - sent < 1.5  # the parent gets KeyboardInterrupt at once
    assert err.count("Traceback") == 1, err  # the parent's; workers print nothing
    assert "KeyboardInterrupt" in err
    left = _wait_gone(descendants, 5.0)
    _kill(left)
    assert not left, f"processes outlived the interrupted script: {left}"


@pytest.mark.parametrize("method", METHODS)
def test_workers_exit_when_the_parent_is_sigkilled(method: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PARENT_KILLED), method],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    pids = {int(p) for p in done.stdout.split()}
    assert len(pids) == 2
    left = _wait_gone(pids, 5.0)
    _kill(left)
    assert not left, f"workers outlived their SIGKILLed parent by more than 5 s: {left}"


EXECUTOR_CTRL_C = """
import multiprocessing, os, sys, time
import parkit

def nap(x):
    os.write(1, f"running {os.getpid()}\\n".encode())  # one write: workers' lines don't mix
    time.sleep(60)

if __name__ == "__main__":
    method, where = sys.argv[1:]
    try:
        with parkit.ProcessPoolExecutor(2, mp_context=method) as ex:
            futures = [ex.submit(nap, i) for i in range(8)]
            if where == "body":
                futures[-1].result()
            # else: the block's exit waits for the naps
    except KeyboardInterrupt:
        # The workers are gone already, not left to end with this process.
        left = len(multiprocessing.active_children())
        print("interrupted", time.monotonic(), left, flush=True)
        raise
"""


@pytest.mark.parametrize("where", ["body", "exit"])
@pytest.mark.parametrize("method", METHODS)
def test_ctrl_c_to_the_parent_alone_leaves_the_executor_block(method: str, where: str) -> None:
    # What a Jupyter interrupt, `kill -INT <pid>` or a supervisor does: only
    # the parent gets SIGINT, the workers go on with their tasks unless it
    # stops them. Leaving the `with` block must not wait for the queued naps.
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(EXECUTOR_CTRL_C), method, where],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    workers: set[int] = set()
    try:
        assert proc.stdout is not None
        while len(workers) < 2:  # both workers run a nap
            word, pid = proc.stdout.readline().split()
            assert word == "running"
            workers.add(int(pid))
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=BOUND_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        left = _wait_gone(workers, 5.0)
        _kill(left)
    assert proc.returncode == -signal.SIGINT, err
    lines = out.split()
    assert lines[0] == "interrupted", out
    assert float(lines[1]) - sent < BOUND_S
    assert lines[2] == "0", out
    assert err.count("Traceback") == 1, err  # the parent's; workers print nothing
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    assert not left, f"workers outlived the interrupted block: {left}"


# The main script records, when a spawn/forkserver child imports it, how that child
# treats SIGINT at that moment: before parkit's own code has run in it.
SIGINT_AT_IMPORT = """
import signal, sys
import parkit

if __name__ == "__mp_main__":
    handler = signal.getsignal(signal.SIGINT)
    names = {signal.SIG_IGN: "ignored", signal.default_int_handler: "default"}
    name = names.get(handler, repr(handler))
    with open(sys.argv[2], "a") as f:
        f.write(name + "\\n")

if __name__ == "__main__":
    method, record = sys.argv[1], sys.argv[2]
    assert parkit.map(abs, [-1, -2], workers=2, chunksize=1, context=method) == [1, 2]
    parkit.shutdown()
    assert parkit.run(abs, -3, context=method) == 3
    open(record, "a").write("--\\n")
    p = parkit.Process(abs, args=(-4,), context=method)
    p.start()
    assert p.result(timeout=30) == 4
"""


@pytest.mark.parametrize("method", [m for m in METHODS if m != "fork"])
def test_pool_and_run_children_ignore_ctrl_c_before_parkit_loads(
    method: str, tmp_path: Path
) -> None:
    # A terminal's Ctrl-C reaches the whole process group, children still starting
    # included: a pool worker or run()'s child that got it while importing printed
    # a KeyboardInterrupt traceback. A parkit.Process child keeps Python's default,
    # as the stdlib's does (its target may handle KeyboardInterrupt).
    script = tmp_path / "sigint_at_import.py"
    script.write_text(textwrap.dedent(SIGINT_AT_IMPORT))
    record = tmp_path / "record.txt"
    proc = subprocess.run(
        [sys.executable, str(script), method, str(record)],
        capture_output=True,
        text=True,
        timeout=BOUND_S * 4,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert record.read_text().split() == ["ignored", "ignored", "ignored", "--", "default"]
