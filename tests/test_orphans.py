"""No orphans: a child exits by itself when its parent is SIGKILLed (FAULTS F31)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from parkit._core._context import available_methods

SCRIPT = """
import os, signal, sys, time
import parkit

def sleep_forever():
    while True:
        time.sleep(60)

if __name__ == "__main__":
    p = parkit.Process(sleep_forever, context=sys.argv[1])
    p.start()
    print(p.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("method", available_methods())
def test_child_exits_when_parent_is_killed(method: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), method],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        pytest.fail(f"child {pid} outlived its SIGKILLed parent by more than 5 s")


SEGMENTS_SCRIPT = """
import os, signal, sys, time
import parkit

def hold(lock, q):
    while True:
        time.sleep(60)

if __name__ == "__main__":
    lock, q = parkit.Lock(), parkit.Queue()
    p = parkit.Process(hold, (lock, q), context=sys.argv[1])
    p.start()
    q.put(1)
    print(p.pid, lock._segment.name, q._segment.name, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("method", available_methods())
def test_a_child_removes_the_segments_of_its_sigkilled_parent(method: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SEGMENTS_SCRIPT), method],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    pid, *names = done.stdout.split()
    assert len(names) == 2
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/dev/shm/{n}") for n in names):
        time.sleep(0.05)
    left = [n for n in names if os.path.exists(f"/dev/shm/{n}")]
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pid), 9)
    assert left == []
