"""parkit.ProcessPoolExecutor: the stdlib executor's contract, parkit's guarantees."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from concurrent.futures import CancelledError, Executor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

import hostile
import parkit
from tasks import ItemError, pid_of, poly, sleep_then, square

BOUND_S = 10.0


def test_it_is_an_executor() -> None:
    assert issubclass(parkit.ProcessPoolExecutor, Executor)


def test_submit_and_map(context: str) -> None:
    with parkit.ProcessPoolExecutor(2, mp_context=context) as ex:
        assert ex.submit(pow, 2, 5).result(timeout=BOUND_S) == 32
        assert ex.submit(hostile.add, 1, 2, scale=3).result(timeout=BOUND_S) == 9
        assert list(ex.map(square, range(10))) == [x * x for x in range(10)]
        assert list(ex.map(pow, [2, 3], [3, 2], chunksize=2)) == [8, 9]
        fs = [ex.submit(square, i) for i in range(6)]
        assert sorted(f.result() for f in as_completed(fs, timeout=BOUND_S)) == [0, 1, 4, 9, 16, 25]


def test_exceptions_arrive_as_themselves() -> None:
    with parkit.ProcessPoolExecutor(1) as ex:
        future = ex.submit(poly, -2)
        assert type(future.exception(timeout=BOUND_S)) is ItemError
        it = ex.map(poly, [1, 2, -3, 4])
        assert next(it) == 2
        assert next(it) == 5
        with pytest.raises(ItemError):
            next(it)


def test_map_timeout_counts_from_the_call() -> None:
    with parkit.ProcessPoolExecutor(1) as ex:
        it = ex.map(sleep_then, [(0.0, "a"), (2.0, "b")], timeout=0.5)
        assert next(it) == "a"
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            next(it)
        assert time.monotonic() - t0 < 1.0


def test_map_checks_chunksize() -> None:
    with parkit.ProcessPoolExecutor(1) as ex, pytest.raises(ValueError, match="chunksize"):
        ex.map(square, [1], chunksize=0)


def test_constructor_checks_like_the_stdlib() -> None:
    with pytest.raises(ValueError, match="max_workers must be greater than 0"):
        parkit.ProcessPoolExecutor(0)
    with pytest.raises(TypeError, match="initializer must be a callable"):
        parkit.ProcessPoolExecutor(1, initializer=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_tasks_per_child must be an integer"):
        parkit.ProcessPoolExecutor(1, max_tasks_per_child=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_tasks_per_child must be >= 1"):
        parkit.ProcessPoolExecutor(1, max_tasks_per_child=0)


def test_a_crash_fails_only_its_future_and_the_executor_goes_on() -> None:
    with parkit.ProcessPoolExecutor(2) as ex:
        crash = ex.submit(hostile.os_exit, 9)
        others = [ex.submit(square, i) for i in range(6)]
        with pytest.raises(BrokenProcessPool) as info:
            crash.result(timeout=BOUND_S)
        assert type(info.value) is parkit.WorkerCrashed
        assert info.value.exitcode == 9
        assert [f.result(timeout=BOUND_S) for f in others] == [i * i for i in range(6)]
        assert ex.submit(square, 7).result(timeout=BOUND_S) == 49


def test_a_failing_initializer_is_a_broken_process_pool() -> None:
    with parkit.ProcessPoolExecutor(
        1, initializer=hostile.raise_given, initargs=(ValueError, ("no",))
    ) as ex:
        future = ex.submit(square, 2)
        with pytest.raises(BrokenProcessPool):
            future.result(timeout=BOUND_S)
        with pytest.raises(BrokenProcessPool):
            ex.submit(square, 3)


def test_shutdown_cancel_futures() -> None:
    ex = parkit.ProcessPoolExecutor(1)
    futures = [ex.submit(time.sleep, 0.2) for _ in range(6)]
    time.sleep(0.1)
    ex.shutdown(wait=True, cancel_futures=True)
    _, not_done = wait(futures, timeout=0)
    assert not not_done
    assert sum(f.cancelled() for f in futures) >= 3
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(square, 1)
    for f in futures:
        if f.cancelled():
            with pytest.raises(CancelledError):
                f.result()


def test_max_tasks_per_child_replaces_workers() -> None:
    with parkit.ProcessPoolExecutor(1, max_tasks_per_child=2) as ex:
        pids = [ex.submit(pid_of, i).result(timeout=BOUND_S) for i in range(6)]
    assert len(set(pids)) == 3


EXIT_WAITS = """
import sys, time
import parkit

def slow_write(path):
    time.sleep(0.5)
    with open(path, "w") as f:
        f.write("done")

if __name__ == "__main__":
    ex = parkit.ProcessPoolExecutor(1)
    ex.submit(slow_write, sys.argv[1])
"""


def test_work_submitted_before_exit_still_runs(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_WAITS), str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert target.read_text() == "done"
