"""No orphans: a child exits by itself when its parent is SIGKILLed (FAULTS F31)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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

# Pool workers, one busy in a task and one idle: both must go.
POOL_SCRIPT = """
import os, signal, sys, time
import psutil
import parkit

def sleep_forever():
    while True:
        time.sleep(60)

if __name__ == "__main__":
    pool = parkit.Pool(2, context=sys.argv[1])
    pool.map(abs, [1, 2])
    pool.submit(sleep_forever)
    time.sleep(0.2)
    print(*(c.pid for c in psutil.Process().children(recursive=True)), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    os.kill(pid, 9)
    return False


def _run_and_kill(script: str, method: str, tmp_path: Path) -> list[int]:
    # Files, not pipes: an orphan holding a pipe open would hang subprocess.run.
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout, err.open("w") as stderr:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script), method],
            stdout=stdout,
            stderr=stderr,
            timeout=60,
            check=False,
        )
    assert done.returncode == -9, err.read_text()
    return [int(pid) for pid in out.read_text().split()]


@pytest.mark.parametrize("method", available_methods())
def test_child_exits_when_parent_is_killed(method: str, tmp_path: Path) -> None:
    pid = _run_and_kill(SCRIPT, method, tmp_path)[0]
    if not _wait_gone(pid):
        pytest.fail(f"child {pid} outlived its SIGKILLed parent by more than 5 s")


@pytest.mark.parametrize("method", available_methods())
def test_pool_workers_exit_when_parent_is_killed(method: str, tmp_path: Path) -> None:
    pids = _run_and_kill(POOL_SCRIPT, method, tmp_path)  # the forkserver's children too
    assert len(pids) >= 2
    left = [pid for pid in pids if not _wait_gone(pid)]
    assert not left, f"workers {left} outlived their SIGKILLed parent by more than 5 s"
