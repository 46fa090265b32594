"""No orphans: a child exits by itself when its parent is SIGKILLed (FAULTS F31)."""

from __future__ import annotations

import contextlib
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
    return [int(word) for word in _run_and_kill_words(script, method, tmp_path)]


def _run_and_kill_words(script: str, method: str, tmp_path: Path) -> list[str]:
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
    return out.read_text().split()


@pytest.mark.parametrize("method", available_methods())
def test_child_exits_when_parent_is_killed(method: str, tmp_path: Path) -> None:
    pid = _run_and_kill(SCRIPT, method, tmp_path)[0]
    if not _wait_gone(pid):
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
def test_a_child_removes_the_segments_of_its_sigkilled_parent(method: str, tmp_path: Path) -> None:
    pid, *names = _run_and_kill_words(SEGMENTS_SCRIPT, method, tmp_path)
    assert len(names) == 2
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(os.path.exists(f"/dev/shm/{n}") for n in names):
        time.sleep(0.05)
    left = [n for n in names if os.path.exists(f"/dev/shm/{n}")]
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pid), 9)
    assert left == []


OWN_SEGMENTS_SCRIPT = """
import os, signal, sys
import parkit

def make_and_wait(paths):
    event, value = parkit.Event(), parkit.Value(int, 1)
    paths.put("/dev/shm/" + event._segment.name)
    paths.put("/dev/shm/" + value._name)
    event.wait(60)

if __name__ == "__main__":
    paths = parkit.Queue()
    p = parkit.Process(make_and_wait, (paths,), context=sys.argv[1])
    p.start()
    print(p.pid, paths.get(timeout=30), paths.get(timeout=30), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("method", available_methods())
def test_a_child_of_a_sigkilled_parent_removes_its_own_segments(
    method: str, tmp_path: Path
) -> None:
    # It leaves by os._exit, which skips the exit hooks that would remove what it
    # made; its parent, which removes them after a crash, is gone.
    pid, *paths = _run_and_kill_words(OWN_SEGMENTS_SCRIPT, method, tmp_path)
    assert len(paths) == 2
    assert _wait_gone(int(pid))
    assert [os.path.exists(path) for path in paths] == [False, False]


@pytest.mark.parametrize("method", available_methods())
def test_pool_workers_exit_when_parent_is_killed(method: str, tmp_path: Path) -> None:
    pids = _run_and_kill(POOL_SCRIPT, method, tmp_path)  # the forkserver's children too
    assert len(pids) >= 2
    left = [pid for pid in pids if not _wait_gone(pid)]
    assert not left, f"workers {left} outlived their SIGKILLed parent by more than 5 s"
