"""The asyncio twins: ``parkit.amap``/``aimap``/``astarmap`` and ``Pool.a*`` (issue 15).

Each test runs its own loop (``asyncio.run``). They synchronise on parkit Events
and marker files, never on sleeps: the loop polls a marker with
``asyncio.sleep`` between looks, bounded by :data:`BOUND_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import parkit
from async_tasks import start_then_block, wait_for
from tasks import InputError, ItemError, gen_then_raise, poly, serial_outcome, square

BOUND_S = 30.0

_REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def _request_and(x: str) -> str:
    return f"{_REQUEST.get()}:{x}"


T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await asyncio.wait_for(coro, BOUND_S)

    return asyncio.run(main())


async def until(predicate: Callable[[], bool]) -> None:
    """Let the loop run until ``predicate()`` holds (bounded)."""
    deadline = time.monotonic() + BOUND_S
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


# ----------------------------------------------------------- the loop keeps running


async def _ticker(release: parkit.Event, ticks: list[int], n: int) -> None:
    """Tick ``n`` times on the loop, then release the workers."""
    for i in range(n):
        ticks.append(i)
        await asyncio.sleep(0)
    release.set()


def test_other_coroutines_progress_while_amap_waits(context: str) -> None:
    # The items wait until the ticker, a coroutine on the same loop, releases
    # them: if amap blocked the loop's thread, the ticker could not run and the
    # items would report that their wait timed out (False).
    release = parkit.Event(context=context)
    ticks: list[int] = []

    async def main() -> list[bool]:
        with parkit.Pool(2, context=context) as pool:
            work = asyncio.ensure_future(pool.amap(wait_for, [release] * 4))
            await asyncio.sleep(0)  # amap submits its batches
            await _ticker(release, ticks, 20)
            return await work

    assert run(main()) == [True, True, True, True]
    assert ticks == list(range(20))


def test_other_coroutines_progress_while_aimap_and_asubmit_wait(context: str) -> None:
    release = parkit.Event(context=context)
    ticks: list[int] = []

    async def consume(pool: parkit.Pool) -> list[bool]:
        return [r async for r in pool.aimap(wait_for, [release] * 3)]

    async def main() -> tuple[list[bool], bool]:
        with parkit.Pool(2, context=context) as pool:
            many = asyncio.ensure_future(consume(pool))
            one = asyncio.ensure_future(pool.asubmit(wait_for, release))
            await asyncio.sleep(0)
            await _ticker(release, ticks, 20)
            return await many, await one

    assert run(main()) == ([True, True, True], True)
    assert ticks == list(range(20))


def test_one_shot_amap_does_not_block_the_loop(context: str) -> None:
    release = parkit.Event(context=context)
    ticks: list[int] = []

    async def main() -> list[bool]:
        work = asyncio.ensure_future(
            parkit.amap(wait_for, [release] * 2, workers=2, context=context)
        )
        await asyncio.sleep(0)
        await _ticker(release, ticks, 20)
        return await work

    assert run(main()) == [True, True]
    assert ticks == list(range(20))


def test_serial_amap_runs_its_items_off_the_loop() -> None:
    # backend="serial" runs items where the core runs: for amap that is a
    # driver thread, so an item may wait for a coroutine on the same loop.
    release = threading.Event()
    threads: list[str] = []

    def wait_then_name(x: int) -> int:
        threads.append(threading.current_thread().name)
        assert release.wait(BOUND_S)
        return x

    async def main() -> list[int]:
        work = asyncio.ensure_future(parkit.amap(wait_then_name, [1, 2], backend="serial"))
        await until(lambda: bool(threads))
        release.set()
        return await work

    assert run(main()) == [1, 2]
    assert threads == ["parkit-async-driver"] * 2


def test_amap_sees_the_callers_context_variables() -> None:
    # The driver thread runs the call in a copy of the awaiting task's context,
    # as the blocking map runs it in the caller's.
    async def main() -> list[str]:
        token = _REQUEST.set("req-7")
        try:
            return await parkit.amap(_request_and, ["a", "b"], backend="serial")
        finally:
            _REQUEST.reset(token)

    assert run(main()) == ["req-7:a", "req-7:b"]


def test_concurrent_amaps_on_one_pool_each_progress() -> None:
    # Each awaiting call has a driver of its own: a call whose items wait does
    # not hold up another one on the same pool.
    async def main() -> tuple[list[bool], list[int]]:
        release = threading.Event()
        with parkit.Pool(3, backend="thread") as pool:
            waiting = asyncio.ensure_future(pool.amap(release.wait, [BOUND_S] * 2))
            other = await pool.amap(square, [1, 2, 3])
            release.set()
            return await waiting, other

    assert run(main()) == ([True, True], [1, 4, 9])


def test_a_progress_callable_is_called_on_the_loops_thread() -> None:
    calls: list[tuple[int, int | None, str]] = []

    def report(done: int, total: int | None) -> None:
        calls.append((done, total, threading.current_thread().name))

    async def main() -> list[int]:
        return await parkit.amap(square, [1, 2, 3], backend="thread", chunksize=1, progress=report)

    assert run(main()) == [1, 4, 9]
    assert [(d, t) for d, t, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert {name for _, _, name in calls} == {threading.main_thread().name}


def test_idle_driver_threads_exit() -> None:
    from parkit._pool import _async

    assert run(parkit.amap(square, [2], backend="serial")) == [4]
    drivers = [t for t in threading.enumerate() if t.name == "parkit-async-driver"]
    assert len(drivers) == 1
    drivers[0].join(timeout=_async._IDLE_S + BOUND_S)
    assert not drivers[0].is_alive()


# --------------------------------------------------------------------- cancellation


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _cancel_running(
    folder: Path, start: Callable[[parkit.Pool], Awaitable[Any]], context: str
) -> int:
    """Start ``start(pool)`` on one worker, cancel it once item 0 runs; its pid."""

    async def main() -> int:
        pool = parkit.Pool(1, context=context)
        try:
            task = asyncio.ensure_future(start(pool))
            await until((folder / "started-0").exists)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert task.cancelled()
            # The pool goes on with a fresh worker.
            assert await pool.amap(square, [3, 4]) == [9, 16]
        finally:
            # Waits for running work: an item that was not stopped would
            # finish now (after WAIT_S) and write its finished- file.
            pool.shutdown(wait=True)
        return int((folder / "started-0").read_text())

    pid = run(main())
    assert _files(folder) == ["started-0"]  # 1 and 2 never started; 0 never finished
    assert _gone(pid)
    return pid


def test_cancelling_amap_stops_the_running_item_and_drops_the_rest(
    context: str, tmp_path: Path
) -> None:
    never = parkit.Event(context=context)
    items = [(i, str(tmp_path), never) for i in range(3)]
    _cancel_running(tmp_path, lambda pool: pool.amap(start_then_block, items), context)


def test_cancelling_aimap_stops_the_running_item(context: str, tmp_path: Path) -> None:
    never = parkit.Event(context=context)
    items = [(i, str(tmp_path), never) for i in range(3)]

    async def consume(pool: parkit.Pool) -> list[int]:
        return [r async for r in pool.aimap(start_then_block, items)]

    _cancel_running(tmp_path, consume, context)


def test_cancelling_asubmit_stops_the_running_task(context: str, tmp_path: Path) -> None:
    never = parkit.Event(context=context)
    _cancel_running(
        tmp_path, lambda pool: pool.asubmit(start_then_block, (0, str(tmp_path), never)), context
    )


def test_cancelling_a_one_shot_amap_stops_it(context: str, tmp_path: Path) -> None:
    never = parkit.Event(context=context)
    items = [(i, str(tmp_path), never) for i in range(3)]

    async def main() -> None:
        task = asyncio.ensure_future(
            parkit.amap(start_then_block, items, workers=1, context=context)
        )
        await until((tmp_path / "started-0").exists)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    parkit.shutdown()  # waits for the kept pool's running work
    assert _files(tmp_path) == ["started-0"]
    assert _gone(int((tmp_path / "started-0").read_text()))


def test_cancelling_asubmit_before_it_starts_cancels_it() -> None:
    release = parkit.Event()

    async def main() -> tuple[bool, int]:
        with parkit.Pool(1, backend="thread") as pool:
            busy = asyncio.ensure_future(pool.asubmit(wait_for, release))
            queued = asyncio.ensure_future(pool.asubmit(square, 5))
            await asyncio.sleep(0)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
            release.set()
            return await busy, await pool.asubmit(square, 6)

    assert run(main()) == (True, 36)


def test_cancelling_on_the_thread_backend_drops_what_has_not_started(tmp_path: Path) -> None:
    # Threads can't be stopped: the running item finishes (once released), the
    # items after it never start.
    release = parkit.Event()
    items = [(i, str(tmp_path), release) for i in range(4)]

    async def main() -> None:
        with parkit.Pool(1, backend="thread") as pool:
            task = asyncio.ensure_future(pool.amap(start_then_block, items))
            await until((tmp_path / "started-0").exists)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            release.set()

    run(main())
    assert _files(tmp_path) == ["finished-0", "started-0"]


def test_leaving_aimap_early_drops_the_pending_work(context: str) -> None:
    async def main() -> tuple[list[int], list[int]]:
        with parkit.Pool(2, context=context) as pool:
            firsts: list[int] = []
            async with contextlib.aclosing(pool.aimap(square, range(10_000))) as it:
                async for r in it:
                    firsts.append(r)
                    if len(firsts) == 3:
                        break
            return firsts, await pool.amap(square, [7])

    assert run(main()) == ([0, 1, 4], [49])


# ----------------------------------------------------------- results and exceptions


def test_amap_raises_the_lowest_failure_with_the_worker_traceback_and_note(
    context: str,
) -> None:
    async def main() -> None:
        with parkit.Pool(2, context=context) as pool:
            await pool.amap(poly, [1, 2, -3, 4, -5], chunksize=1)

    with pytest.raises(ItemError) as info:
        run(main())
    err = info.value
    assert type(err) is ItemError
    assert err.args == (-3,)
    notes = err.__notes__
    assert len(notes) == 1
    assert notes[0].startswith("[parkit] raised by tasks.poly on item 2 in worker ")
    frames = [f.name for f in traceback.extract_tb(err.__traceback__)]
    assert "poly" in frames  # the worker's frame
    assert "main" in frames  # and the awaiting coroutine's


def test_asubmit_raises_with_the_worker_traceback(context: str) -> None:
    async def main() -> int:
        with parkit.Pool(1, context=context) as pool:
            return await pool.asubmit(poly, -7)

    with pytest.raises(ItemError) as info:
        run(main())
    assert info.value.args == (-7,)
    assert "poly" in [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert info.value.__notes__[0].startswith("[parkit] raised by tasks.poly")


def test_aimap_yields_the_results_before_the_failure() -> None:
    got: list[int] = []

    async def main() -> None:
        async for r in parkit.aimap(poly, [1, 2, -3, 4], backend="thread", chunksize=1):
            got.append(r)

    with pytest.raises(ItemError) as info:
        run(main())
    assert info.value.args == (-3,)
    assert got == [2, 5]


def test_errors_return_puts_exceptions_in_place(context: str) -> None:
    async def main() -> tuple[list[int | BaseException], list[int | BaseException]]:
        with parkit.Pool(2, context=context) as pool:
            listed = await pool.amap(poly, [1, -2, 3], errors="return")
            lazily = [r async for r in pool.aimap(poly, [-1, 2], errors="return")]
            return listed, lazily

    listed, lazily = run(main())
    assert [type(r) for r in listed] == [int, ItemError, int]
    assert listed[0] == 2
    assert listed[2] == 10
    assert isinstance(listed[1], ItemError)
    assert listed[1].args == (-2,)
    assert [type(r) for r in lazily] == [ItemError, int]
    assert lazily[1] == 5


def test_unordered_aimap_is_a_permutation(context: str) -> None:
    async def main() -> list[int]:
        return [
            r
            async for r in parkit.aimap(
                square, range(50), ordered=False, workers=2, context=context
            )
        ]

    got = run(main())
    assert sorted(got) == [x * x for x in range(50)]


def test_an_input_that_raises_propagates_after_its_items() -> None:
    got: list[int] = []

    async def main() -> None:
        async for r in parkit.aimap(
            square, gen_then_raise([1, 2, 3], InputError("bad input")), backend="thread"
        ):
            got.append(r)

    with pytest.raises(InputError, match="bad input"):
        run(main())
    assert got == [1, 4, 9]


def test_starmap_twins_and_options() -> None:
    done: list[tuple[int, int | None]] = []

    async def main() -> tuple[list[int], list[int], list[int]]:
        with parkit.Pool(2, backend="thread", chunksize=2) as pool:
            a = await pool.astarmap(pow, [(2, 3), (3, 2)])
            b = await parkit.astarmap(pow, [(2, 5)], backend="serial")
            c = await pool.amap(
                square, range(6), chunksize=1, progress=lambda d, t: done.append((d, t))
            )
            return a, b, c

    assert run(main()) == ([8, 9], [32], [0, 1, 4, 9, 16, 25])
    assert done[-1] == (6, 6)
    assert [d for d, _ in done] == sorted(d for d, _ in done)


def test_per_item_timeout(context: str) -> None:
    never = parkit.Event(context=context)

    async def main() -> list[bool | BaseException]:
        with parkit.Pool(1, context=context) as pool:
            return await pool.amap(wait_for, [never], timeout=0.5, errors="return")

    (got,) = run(main())
    assert type(got) is parkit.TaskTimeout
    assert got.timeout == 0.5


def test_bad_options_raise_clear_errors() -> None:
    async def main() -> None:
        with parkit.Pool(1, backend="serial") as pool:
            with pytest.raises(ValueError, match="chunksize must be a positive int"):
                pool.aimap(square, [1], chunksize=0)  # at the call, as imap
            with pytest.raises(ValueError, match='errors must be "raise" or "return"'):
                await pool.amap(square, [1], errors="ignore")  # type: ignore[call-overload]
            with pytest.raises(TypeError, match="fn must be callable, not int"):
                await pool.asubmit(3)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="cannot use a pool after shutdown"):
            await pool.amap(square, [1])
        with pytest.raises(ValueError, match="workers must be a positive int"):
            await parkit.amap(square, [1], workers=0)

    run(main())


# ------------------------------------------------------------------- async with Pool


def test_async_with_pool_waits_for_its_work_without_blocking_the_loop(context: str) -> None:
    # The exit waits for the submitted item, which waits for the ticker, a
    # coroutine on the same loop: a blocking exit would stall both.
    release = parkit.Event(context=context)
    ticks: list[int] = []

    async def main() -> tuple[list[int], bool]:
        async with parkit.Pool(1, context=context) as pool:
            first = await pool.amap(square, [2, 3])
            pending = pool.submit(wait_for, release)
            ticker = asyncio.ensure_future(_ticker(release, ticks, 20))
        await ticker
        return first, pending.result(timeout=0)

    assert run(main()) == ([4, 9], True)
    assert ticks == list(range(20))


def test_async_with_pool_stops_the_workers_on_an_exception(context: str, tmp_path: Path) -> None:
    never = parkit.Event(context=context)

    async def main() -> None:
        async with parkit.Pool(1, context=context) as pool:
            pool.submit(start_then_block, (0, str(tmp_path), never))
            await until((tmp_path / "started-0").exists)
            raise ItemError(7)

    with pytest.raises(ItemError) as info:
        run(main())
    assert info.value.args == (7,)
    assert _files(tmp_path) == ["started-0"]
    assert _gone(int((tmp_path / "started-0").read_text()))


def test_cancelled_while_async_with_pool_waits_stops_the_workers(
    context: str, tmp_path: Path
) -> None:
    never = parkit.Event(context=context)

    async def use_pool() -> None:
        async with parkit.Pool(1, context=context) as pool:
            pool.submit(start_then_block, (0, str(tmp_path), never))

    async def main() -> None:
        task = asyncio.ensure_future(use_pool())
        await until((tmp_path / "started-0").exists)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    assert _files(tmp_path) == ["started-0"]
    assert _gone(int((tmp_path / "started-0").read_text()))


# ------------------------------------------------------------------------ property


def test_amap_equals_the_serial_loop(context: str) -> None:
    with parkit.Pool(2, context=context) as pool:

        @settings(max_examples=15, deadline=None)
        @given(
            xs=st.lists(st.integers(-3, 50), max_size=30), chunksize=st.none() | st.integers(1, 4)
        )
        def check(xs: list[int], chunksize: int | None) -> None:
            expected, error = serial_outcome(poly, xs)
            if error is None:
                assert run(pool.amap(poly, xs, chunksize=chunksize)) == expected
            else:
                with pytest.raises(type(error)) as info:
                    run(pool.amap(poly, xs, chunksize=chunksize))
                assert info.value.args == error.args

        check()
