"""Large buffers travel through /dev/shm beside the pickle (_core/_oob.py).

What must hold: values arrive equal and writable; the receiver's writes stay its
own; no segment is left behind — not after success, not when a worker dies after
writing one, not when the parent dies (the leak guard checks /dev/shm after every
test).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import parkit
from parkit._core import _oob
from parkit._core import _segments as segments
from tasks import array_sum, crash_after_result_written, make_array, scale_in_place

BOUND_S = 20.0
BIG = _oob.THRESHOLD // 8 * 3  # float64 elements: 3 MiB, out of band
SMALL = 1000  # in-band


def _segments() -> list[str]:
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(f"parkit-{os.getpid()}-"))


def test_dumps_puts_large_buffers_in_a_private_segment_and_loads_unlinks_it() -> None:
    a = np.arange(BIG, dtype=np.float64)
    data, descriptor = _oob.dumps([a, b"small"], "auto", os.getpid(), "p")
    assert descriptor
    assert len(data) < 1000  # the array is not in the pickle
    (name,) = _segments()
    assert os.stat(f"/dev/shm/{name}").st_mode & 0o777 == 0o600  # SPEC §7
    b, small = _oob.loads(data, descriptor)
    assert _segments() == []
    assert small == b"small"
    assert np.array_equal(a, b)
    assert b.flags.writeable
    b[0] = -1.0  # copy-on-write: only the receiver sees it
    assert a[0] == 0.0


def test_small_buffers_stay_in_band() -> None:
    data, descriptor = _oob.dumps(np.zeros(SMALL), "auto", os.getpid(), "p")
    assert descriptor == b""
    assert np.array_equal(pickle.loads(data), np.zeros(SMALL))


def test_discard_and_sweep() -> None:
    _, d1 = _oob.dumps(np.zeros(BIG), "auto", os.getpid(), "p")
    _oob.dumps(np.zeros(BIG), "auto", os.getpid(), "w1")
    assert len(_segments()) == 2
    _oob.discard(d1)
    _oob.discard(d1)  # twice is harmless
    assert len(_segments()) == 1
    segments.sweep(os.getpid(), "w1")
    assert _segments() == []


def test_arrays_as_arguments_and_results_round_trip(context: str) -> None:
    arrays = [np.full(BIG, float(i)) for i in range(6)]
    with parkit.Pool(2, context=context) as pool:
        assert pool.map(array_sum, arrays) == [float(i) * BIG for i in range(6)]
        out = pool.map(make_array, [(BIG, i) for i in range(6)])
        assert [float(a[0]) for a in out] == [float(i) for i in range(6)]
        assert all(a.flags.writeable and a.shape == (BIG,) for a in out)
        doubled = pool.map(scale_in_place, arrays[:2])
        assert float(doubled[1][0]) == 2.0
        assert float(arrays[1][0]) == 1.0  # the parent's array is its own
    assert _segments() == []


def test_a_worker_that_dies_after_writing_a_segment_leaves_nothing() -> None:
    with parkit.Pool(1) as pool:
        out = pool.map(crash_after_result_written, [np.zeros(BIG)], errors="return")
        assert type(out[0]) is parkit.WorkerCrashed
        assert out[0].exitcode == 7
    assert _segments() == []


PARENT_KILLED = """
import os, signal, sys, time
import numpy as np
import parkit

def hold(a):
    time.sleep(60)

if __name__ == "__main__":
    pool = parkit.Pool(1, context=sys.argv[1])
    futures = [pool.submit(hold, np.zeros(int(sys.argv[2]))) for _ in range(3)]
    time.sleep(1.0)
    print(os.getpid(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_segments_of_a_sigkilled_parent_are_removed_by_its_workers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PARENT_KILLED), "forkserver", str(BIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -9, done.stderr
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + BOUND_S
    left: list[str] = []
    while time.monotonic() < deadline:
        left = [n for n in os.listdir("/dev/shm") if n.startswith(f"parkit-{pid}-")]
        if not left:
            break
        time.sleep(0.1)
    for name in left:
        os.unlink(f"/dev/shm/{name}")
    assert left == []


@pytest.mark.parametrize("writer", ["p", "w123"])
def test_prefix_names_owner_and_writer(writer: str) -> None:
    assert segments.prefix(42, writer) == f"parkit-42-{writer}-"
