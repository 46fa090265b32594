"""No orphans: a child exits by itself when its parent is SIGKILLed (FAULTS F31)."""

from __future__ import annotations

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
