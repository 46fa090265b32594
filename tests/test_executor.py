"""parkit.ProcessPoolExecutor: the stdlib executor's contract, parkit's guarantees."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from concurrent.futures import CancelledError, Executor, Future, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

import hostile
import parkit
from tasks import (
    InputError,
    ItemError,
    exit_after_read,
    fail_init,
    gen_then_raise,
    make_big,
    pid_of,
    poly,
    put_in,
    return_exit_at_unpickle,
    sleep_then,
    square,
)

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
        # The worker is up first: the timeout is about the map, not the start-up
        # of a process on a loaded machine.
        assert ex.submit(sleep_then, (0.0, "up")).result(timeout=60) == "up"
        start = time.monotonic()
        it = ex.map(sleep_then, [(0.0, "a"), (6.0, "b")], timeout=2.0)
        assert next(it) == "a"
        with pytest.raises(TimeoutError):
            next(it)
        # From the call: long before "b" could have finished.
        assert time.monotonic() - start < 5.0


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


def test_multiprocessing_objects_may_be_initargs(context: str) -> None:
    import multiprocessing

    q = multiprocessing.get_context(context).Queue()
    with parkit.ProcessPoolExecutor(
        1, mp_context=context, initializer=put_in, initargs=(q, "hi")
    ) as ex:
        assert ex.submit(square, 3).result(timeout=BOUND_S) == 9
    assert q.get(timeout=BOUND_S) == "hi"
    q.close()
    q.join_thread()


def test_a_failing_initializer_releases_its_initargs() -> None:
    import gc
    import multiprocessing
    import weakref

    q = multiprocessing.get_context("spawn").Queue()
    ref = weakref.ref(q)
    ex = parkit.ProcessPoolExecutor(1, mp_context="spawn", initializer=fail_init, initargs=(q,))
    with pytest.raises(BrokenProcessPool):
        ex.submit(square, 1).result(timeout=BOUND_S)
    assert q.get(timeout=BOUND_S) == "init ran"
    ex.shutdown()
    q.close()
    q.join_thread()
    del ex, q
    gc.collect()
    assert ref() is None  # its semaphores go with it: nothing for the tracker to report


def test_a_result_that_exits_at_unpickle_fails_only_its_future() -> None:
    with parkit.ProcessPoolExecutor(1) as ex:
        future = ex.submit(return_exit_at_unpickle, 0)
        err = future.exception(timeout=BOUND_S)
        assert type(err) is parkit.SerializationError
        assert (err.direction, err.stage) == ("result", "unpickle")
        assert type(err.__cause__) is SystemExit
        assert ex.submit(square, 2).result(timeout=BOUND_S) == 4


def test_map_does_not_keep_yielded_results_alive() -> None:
    import gc
    import weakref

    with parkit.ProcessPoolExecutor(2) as ex:
        for obj in ex.map(make_big, range(3)):
            ref = weakref.ref(obj)
            del obj
            gc.collect()
            assert ref() is None
            break


def test_cancel_futures_still_runs_what_was_dispatched() -> None:
    ex = parkit.ProcessPoolExecutor(2)
    futures = [ex.submit(time.sleep, 0.05) for _ in range(20)]
    ex.shutdown(wait=True, cancel_futures=True)
    ran = [f for f in futures if not f.cancelled()]
    assert 1 <= len(ran) <= 2 * 2 + 2  # what fits in the workers' queues, no more
    assert all(f.result() is None for f in ran)


def test_an_executor_dropped_without_shutdown_lets_its_workers_go() -> None:
    import gc

    import psutil

    before = {p.pid for p in psutil.Process().children()}
    ex = parkit.ProcessPoolExecutor(2)
    pids = set(ex.map(pid_of, range(4), chunksize=1))
    del ex
    gc.collect()
    deadline = time.monotonic() + BOUND_S
    while pids & {p.pid for p in psutil.Process().children()} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pids & {p.pid for p in psutil.Process().children()}
    assert before >= {p.pid for p in psutil.Process().children()} - _helpers()


def _helpers() -> set[int]:
    import psutil

    return {
        p.pid
        for p in psutil.Process().children()
        if "forkserver import main" in " ".join(p.cmdline())
        or "resource_tracker import main" in " ".join(p.cmdline())
    }


def test_an_unpicklable_function_fails_its_future() -> None:
    import threading

    lock = threading.Lock()
    with parkit.ProcessPoolExecutor(1) as ex:
        future = ex.submit(lambda: lock)
        assert type(future.exception(timeout=BOUND_S)) is parkit.SerializationError


def test_shutdown_needs_no_grace_for_a_worker_forked_while_the_executor_was_locked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under fork, the I/O thread may fork a worker while another thread holds
    # the executor's lock (inside submit() or shutdown()). That worker used to
    # run the executor's exit hook on its copy of the executor when it ended,
    # wait for ever on the copied lock, and be killed after the exit grace.
    import psutil

    from parkit._backends._process import _workers

    exitcodes: list[int | None] = []
    close = _workers.Worker.close

    def recording_close(self: _workers.Worker, sel: Any, owner: int) -> None:
        exitcodes.append(self.process.exitcode)
        close(self, sel, owner)

    monkeypatch.setattr(_workers.Worker, "close", recording_close)
    r, w = os.pipe()
    try:
        ex = parkit.ProcessPoolExecutor(1, mp_context="fork")
        crash = ex.submit(exit_after_read, r)
        me = psutil.Process()
        # What submit() holds; the replacement for the crashed worker is forked
        # while this thread holds it.
        with ex._shutdown_lock:
            before = {p.pid for p in me.children()}
            os.write(w, b"x")
            assert type(crash.exception(timeout=BOUND_S)) is parkit.WorkerCrashed
            deadline = time.monotonic() + BOUND_S
            while not {p.pid for p in me.children()} - before:
                assert time.monotonic() < deadline, "no replacement worker was started"
                time.sleep(0.01)
        ex.shutdown(wait=True)
    finally:
        os.close(r)
        os.close(w)
    # The crashed worker's code, then the replacement's: it exited by itself
    # (0), not killed (-SIGKILL) after the grace.
    assert exitcodes == [9, 0]


class Counted:
    """An iterator without ``len()`` that counts the items taken from it.

    It refuses to give more than ``limit`` items, so that a map that takes its
    whole (endless) input fails here instead of filling the memory.
    """

    def __init__(self, items: Iterable[Any], limit: int = 10_000) -> None:
        self._it = iter(items)
        self._limit = limit
        self.taken = 0

    def __iter__(self) -> Counted:
        return self

    def __next__(self) -> Any:
        if self.taken >= self._limit:
            raise AssertionError(f"map took more than {self._limit} items")
        item = next(self._it)
        self.taken += 1
        return item


class CountedSized(Counted):
    def __init__(self, items: list[Any]) -> None:
        super().__init__(items)
        self._len = len(items)

    def __len__(self) -> int:
        return self._len


def test_map_over_an_endless_input_yields_results(context: str) -> None:
    with parkit.ProcessPoolExecutor(2, mp_context=context) as ex:
        source = Counted(itertools.count())
        it = ex.map(square, source)
        # No len(): taken through a window of 2 chunks per worker.
        assert source.taken == 4
        assert [next(it) for _ in range(10)] == [x * x for x in range(10)]
        # One chunk more each time the next one's results are waited for.
        assert source.taken == 4 + 10
        del it  # closes it: what has not started is cancelled


@pytest.mark.parametrize("chunksize", [1, 3])
def test_map_buffersize_bounds_what_is_taken(context: str, chunksize: int) -> None:
    with parkit.ProcessPoolExecutor(2, mp_context=context) as ex:
        source = Counted(itertools.count())
        it = ex.map(square, source, buffersize=3, chunksize=chunksize)
        assert source.taken == 3 * chunksize  # submitted at the call
        for k in range(1, 4 * chunksize + 1):
            assert next(it) == (k - 1) ** 2
            chunks_waited = -(-k // chunksize)
            assert source.taken == (3 + chunks_waited) * chunksize
        del it  # closes it: what has not started is cancelled
        # A sized input with a buffersize is taken lazily too.
        sized = CountedSized(list(range(10)))
        it = ex.map(square, sized, buffersize=2)
        assert sized.taken == 2
        assert list(it) == [x * x for x in range(10)]
        assert list(ex.map(pow, [2, 3, 4], itertools.count(1), buffersize=1)) == [2, 9, 64]


def test_map_takes_a_sized_input_at_the_call() -> None:
    with parkit.ProcessPoolExecutor(1) as ex:
        source = CountedSized(list(range(5)))
        it = ex.map(square, source)
        assert source.taken == 5  # as the stdlib documents
        assert list(it) == [0, 1, 4, 9, 16]
        # zip() with a sized iterable ends: also taken at the call.
        endless = Counted(itertools.count())
        it = ex.map(pow, endless, [2, 2, 2])
        assert endless.taken == 4  # zip takes one more before it sees the list end
        assert list(it) == [0, 1, 4]


def test_map_checks_buffersize_as_the_stdlib() -> None:
    with parkit.ProcessPoolExecutor(1) as ex:
        for bad in (0, -1):
            with pytest.raises(ValueError, match=r"^buffersize must be None or > 0$"):
                ex.map(square, range(4), buffersize=bad)
        for wrong in ("foo", 2.0):
            with pytest.raises(TypeError, match=r"^buffersize must be an integer or None$"):
                ex.map(square, range(4), buffersize=wrong)  # type: ignore[arg-type]


@pytest.mark.parametrize("buffersize", [None, 1])
def test_map_timeout_counts_from_the_call_with_a_lazy_input(buffersize: int | None) -> None:
    with parkit.ProcessPoolExecutor(1) as ex:
        source = iter([(0.0, "a"), (2.0, "b"), (0.0, "c")])
        it = ex.map(sleep_then, source, timeout=0.5, buffersize=buffersize)
        assert next(it) == "a"
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            next(it)
        assert time.monotonic() - t0 < 1.0


@pytest.mark.parametrize("buffersize", [None, 2])
def test_a_lazy_input_that_raises_does_after_the_results_before_it(
    buffersize: int | None,
) -> None:
    with parkit.ProcessPoolExecutor(2) as ex:
        it = ex.map(square, gen_then_raise([1, 2, 3], InputError("bad")), buffersize=buffersize)
        assert [next(it) for _ in range(3)] == [1, 4, 9]
        with pytest.raises(InputError, match=r"^bad$"):
            next(it)
        # A sized input is taken at the call: what it raises, map() raises.
        with pytest.raises(InputError, match=r"^bad$"):
            ex.map(pow, gen_then_raise([1, 2], InputError("bad")), [1, 1, 1])


def _submit_then_raise(
    ex: parkit.ProcessPoolExecutor,
    futures: list[Future[Any]],
    task: Any,
    args: list[Any],
    exc: BaseException,
) -> None:
    """Submit ``task(arg)`` for each of ``args`` in ``with ex:``, left by ``exc``."""
    with ex:
        futures.extend(ex.submit(task, arg) for arg in args)
        deadline = time.monotonic() + BOUND_S
        while not futures[0].running():
            assert time.monotonic() < deadline, "the first task was not sent to a worker"
            time.sleep(0.01)
        raise exc


def test_leaving_the_block_by_an_exception_still_waits() -> None:
    ex = parkit.ProcessPoolExecutor(1)
    futures: list[Future[Any]] = []
    with pytest.raises(ValueError, match=r"^out$"):
        _submit_then_raise(ex, futures, sleep_then, [(0.1, i) for i in range(3)], ValueError("out"))
    assert [f.result(timeout=0) for f in futures] == [0, 1, 2]


class Stop(BaseException):
    """A BaseException that is not an Exception (as KeyboardInterrupt)."""


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, Stop])
def test_leaving_the_block_by_a_base_exception_cancels_and_stops(
    context: str, exc_type: type[BaseException]
) -> None:
    ex = parkit.ProcessPoolExecutor(1, mp_context=context)
    futures: list[Future[Any]] = []
    with pytest.raises(exc_type):
        _submit_then_raise(ex, futures, time.sleep, [60] * 6, exc_type())
    # Without waiting for the naps: what had not been sent to the worker is
    # cancelled, what had fails as the worker is stopped (the autouse fixture
    # checks that it is gone).
    assert all(f.done() for f in futures)
    assert not futures[0].cancelled()
    assert sum(f.cancelled() for f in futures) >= 6 - 2  # at most two wait in a worker's pipe
    for f in futures:
        if not f.cancelled():
            err = f.exception(timeout=0)
            assert type(err) is parkit.PoolBroken
            assert str(err) == (
                f"the executor was stopped by {exc_type.__name__} while the task ran"
            )
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        ex.submit(square, 1)
