"""A process the user forks (``os.fork()``) leaves the parent's parkit objects alone.

The child has copies of the parent's pools, kept one-shot pools, executors and
``parkit.Process`` handles, with locks as other threads held them at the fork.
At its own exit it must neither stop the parent's workers (it knows their pids)
nor try to join the parent's children, nor wait on a copied lock.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = """
import os, sys, threading, warnings
import parkit

# Python 3.12+ warns that fork() in a process with threads (the pools' I/O
# threads) may deadlock the child: that hazard is what this test is about.
warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)

def wait_for(event_path):
    while not os.path.exists(event_path):
        threading.Event().wait(0.01)
    return "done"

if __name__ == "__main__":
    method, marker = sys.argv[1], sys.argv[2]
    pool = parkit.Pool(2, context=method)
    assert pool.map(abs, [-1, -2]) == [1, 2]
    assert parkit.map(abs, [-3], context=method) == [3]
    ex = parkit.ProcessPoolExecutor(1, mp_context=method)
    assert ex.submit(abs, -4).result() == 4
    child = parkit.Process(wait_for, args=(marker,), context=method)
    child.start()
    pid = os.fork()
    if pid == 0:
        sys.exit(0)  # a normal exit: the interpreter runs its exit hooks
    _, status = os.waitpid(pid, 0)
    print("fork child exit", os.waitstatus_to_exitcode(status), flush=True)
    # The parent's workers and child are still its own, and still work.
    assert pool.map(abs, [-5, -6]) == [5, 6]
    assert parkit.map(abs, [-7], context=method) == [7]
    assert ex.submit(abs, -8).result() == 8
    open(marker, "w").close()
    assert child.result(timeout=30) == "done"
    pool.shutdown()
    ex.shutdown()
    print("parent ok", flush=True)
"""


def test_a_forked_child_leaves_the_parents_pools_and_children_alone(
    context: str, tmp_path: Path
) -> None:
    script = tmp_path / "user_fork.py"
    script.write_text(textwrap.dedent(SCRIPT))
    marker = tmp_path / "go"
    proc = subprocess.run(
        [sys.executable, str(script), context, str(marker)],
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    assert proc.stderr == ""
    assert proc.stdout.splitlines() == ["fork child exit 0", "parent ok"]
    assert proc.returncode == 0
