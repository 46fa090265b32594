"""parkit.SharedArray: shared pages, a small handle, an owner that cleans up."""

from __future__ import annotations

import gc
import os
import pickle

import numpy as np
import pytest

import parkit
from tasks import fill_shared, sum_shared


def _segments() -> set[str]:
    return {n for n in os.listdir("/dev/shm") if n.startswith(f"parkit-{os.getpid()}-sa-")}


def test_zeros_and_copy_of() -> None:
    with parkit.SharedArray.zeros((3, 4), dtype=np.int32) as z:
        assert z.shape == (3, 4)
        assert z.dtype == np.int32
        assert z.nbytes == 48
        assert int(np.asarray(z).sum()) == 0
        assert os.stat(f"/dev/shm/{z.name}").st_mode & 0o777 == 0o600
    a = np.arange(10.0)
    with parkit.SharedArray.copy_of(a) as c:
        assert np.array_equal(c.array, a)
        c[0] = 42.0
        assert a[0] == 0.0  # a copy of the source
        assert c[0] == 42.0


def test_it_pickles_as_a_small_handle_that_sees_the_same_memory() -> None:
    with parkit.SharedArray.zeros(1 << 20) as sa:  # 8 MiB
        data = pickle.dumps(sa)
        assert len(data) < 300
        other = pickle.loads(data)
        other[5] = 7.0
        assert sa[5] == 7.0
        other.close()


def test_workers_write_into_it_under_every_start_method(context: str) -> None:
    with parkit.SharedArray.zeros(8) as sa, parkit.Pool(2, context=context) as pool:
        pool.map(fill_shared, [(sa, i) for i in range(8)], chunksize=1)
        assert sa.array.tolist() == [float(i) for i in range(8)]
        assert pool.submit(sum_shared, sa).result(timeout=20) == float(sum(range(8)))


def test_the_owner_removes_the_segment_on_close_and_on_collection() -> None:
    sa = parkit.SharedArray.zeros(4)
    name = sa.name
    assert name in _segments()
    sa.close()
    assert name not in _segments()
    with pytest.raises(ValueError, match="closed"):
        sa.array  # noqa: B018
    sb = parkit.SharedArray.zeros(4)
    name = sb.name
    del sb
    gc.collect()
    assert name not in _segments()


def test_attaching_after_the_owner_closed_it_is_a_clear_error() -> None:
    sa = parkit.SharedArray.zeros(4)
    data = pickle.dumps(sa)
    sa.close()
    with pytest.raises(ValueError, match="no longer exists"):
        pickle.loads(data)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"SharedArray\.zeros"):
        parkit.SharedArray()
    with pytest.raises(TypeError, match="Python objects"):
        parkit.SharedArray.zeros(3, dtype=object)
    with pytest.raises(ValueError, match="negative"):
        parkit.SharedArray.zeros((2, -1))


OWNER_KILLED = """
import os, signal, sys, time
import parkit

def hold(sa):
    time.sleep(60)

if __name__ == "__main__":
    sa = parkit.SharedArray.zeros(1000)
    pool = parkit.Pool(1, context=sys.argv[1])
    future = pool.submit(hold, sa)
    time.sleep(1.0)
    print(os.getpid(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_segment_of_a_sigkilled_owner_is_removed_by_its_workers() -> None:
    import subprocess
    import sys
    import textwrap
    import time

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OWNER_KILLED), "forkserver"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 20
    left: list[str] = []
    while time.monotonic() < deadline:
        left = [n for n in os.listdir("/dev/shm") if n.startswith(f"parkit-{pid}-sa-")]
        if not left:
            break
        time.sleep(0.1)
    for name in left:
        os.unlink(f"/dev/shm/{name}")
    assert left == []


def test_a_fork_child_closing_an_inherited_array_removes_nothing() -> None:
    with parkit.SharedArray.zeros(10) as sa:
        parkit.run(sa.close, context="fork")
        assert os.path.exists(f"/dev/shm/{sa.name}")
    assert not os.path.exists(f"/dev/shm/{sa.name}")


# The parent starts children that read the array and ends without joining
# them. A hook registered before parkit is imported runs after parkit's and
# multiprocessing's (atexit is last-in, first-out): it sees the children's exit
# codes and whether the array's file outlived them.
CHILDREN_LEFT_RUNNING = """
import atexit, os, sys

procs = []

def report():
    print("exit codes:", [p.exitcode for p in procs])
    print("file left:", os.path.exists("/dev/shm/" + sa.name))

atexit.register(report)

import parkit

def show(sa, i):
    # One write(2) per line: the children write at the same time.
    os.write(1, f"item {i}: {sa[i]:g}\\n".encode())

if __name__ == "__main__":
    sa = parkit.SharedArray.copy_of([10.0, 20.0, 30.0])
    for i in range(3):
        p = parkit.Process(show, (sa, i), context=sys.argv[1])
        p.start()
        procs.append(p)
"""


def test_children_left_running_at_exit_can_still_attach(context: str) -> None:
    # The file used to be removed at exit before the children were joined:
    # under spawn and forkserver none of them could attach.
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", CHILDREN_LEFT_RUNNING, context],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stderr == ""
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert sorted(lines[:3]) == ["item 0: 10", "item 1: 20", "item 2: 30"]
    assert lines[3:] == ["exit codes: [0, 0, 0]", "file left: False"]
