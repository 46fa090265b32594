"""Failures around user code, driven through the pool by the hostile catalogue.

Each case puts one hostile item among ordinary ones, in batches of several
items, under every start method, and asserts: the exact parkit error for that
item only (type, item index, attributes) within a bound; every other item's
value (``errors="return"``); and that the same pool then still works (SPEC §3).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

import hostile
import parkit
from tasks import act, pid_of, script, tag

#: Every case resolves well within this (worker restarts included).
BOUND_S = 10.0
N = 12
BAD = 5  # the hostile item's index; it sits mid-batch with chunksize=4
CHUNK = 4


@pytest.fixture
def pool(context: str) -> Iterator[parkit.Pool]:
    with parkit.Pool(2, context=context) as p:
        yield p


def _run(pool: parkit.Pool, items: list[Any], **options: Any) -> tuple[list[Any], float]:
    t0 = time.monotonic()
    out = pool.map(act, items, chunksize=CHUNK, errors="return", **options)
    elapsed = time.monotonic() - t0
    assert elapsed < BOUND_S
    return out, elapsed


def _others_ok(out: list[Any], bad: int = BAD) -> None:
    assert [v for i, v in enumerate(out) if i != bad] == [
        i * 10 for i in range(len(out)) if i != bad
    ]


def _still_works(pool: parkit.Pool) -> None:
    assert pool.map(tag, range(20), chunksize=3) == [i * 10 for i in range(20)]


@pytest.mark.parametrize(
    ("action", "exitcode", "sig"),
    [
        (("os_exit", (3,)), 3, None),
        (("sigkill_self", ()), -signal.SIGKILL, signal.SIGKILL),
        (("segfault", ()), -signal.SIGSEGV, signal.SIGSEGV),
    ],
    ids=["os_exit", "sigkill", "segfault"],
)
def test_a_dying_worker_fails_only_its_item(
    pool: parkit.Pool,
    action: tuple[str, tuple[Any, ...]],
    exitcode: int,
    sig: signal.Signals | None,
) -> None:
    out, _ = _run(pool, script({BAD: action}, N))
    err = out[BAD]
    assert type(err) is parkit.WorkerCrashed
    assert err.item_index == BAD
    assert err.exitcode == exitcode
    assert err.signal == sig
    assert isinstance(err.pid, int)
    assert err.pid != os.getpid()
    assert f"(item {BAD})" in str(err)
    _others_ok(out)  # items of the same batch before and after ran (again)
    stats = pool.stats()
    assert stats.crashed == 1
    assert stats.worker_restarts == 1
    assert stats.tasks_done >= N - 1
    _still_works(pool)


def test_a_crash_with_errors_raise_raises_worker_crashed(pool: parkit.Pool) -> None:
    with pytest.raises(parkit.WorkerCrashed) as info:
        pool.map(act, script({BAD: ("os_exit", (4,))}, N), chunksize=CHUNK)
    assert info.value.item_index == BAD
    assert info.value.exitcode == 4
    _still_works(pool)


def test_two_crashes_in_one_batch(pool: parkit.Pool) -> None:
    out, _ = _run(pool, script({1: ("os_exit", (5,)), 2: ("os_exit", (6,))}, 8))
    assert [type(e) for e in out[1:3]] == [parkit.WorkerCrashed, parkit.WorkerCrashed]
    assert [e.exitcode for e in out[1:3]] == [5, 6]
    assert out[0] == 0
    assert out[3:] == [30, 40, 50, 60, 70]


def test_a_stuck_item_times_out_and_only_its_worker_is_replaced(pool: parkit.Pool) -> None:
    t0 = time.monotonic()
    out = pool.map(
        act, script({BAD: ("sleep_forever", ())}, N), chunksize=CHUNK, timeout=0.5, errors="return"
    )
    elapsed = time.monotonic() - t0
    err = out[BAD]
    assert type(err) is parkit.TaskTimeout
    assert isinstance(err, TimeoutError)
    assert err.item_index == BAD
    assert err.timeout == 0.5
    assert 0.5 <= elapsed < 0.5 + BOUND_S
    _others_ok(out)
    assert pool.stats().timed_out == 1
    _still_works(pool)


def test_pool_timeout_applies_to_submit(context: str) -> None:
    with parkit.Pool(1, context=context, timeout=0.3) as pool:
        future = pool.submit(hostile.sleep_forever)
        with pytest.raises(parkit.TaskTimeout) as info:
            future.result(timeout=BOUND_S)
        assert info.value.timeout == 0.3
        assert pool.submit(pow, 2, 5).result(timeout=BOUND_S) == 32


@pytest.mark.parametrize(
    ("item", "stage"),
    [
        (hostile.ErrorAtPickle(), "pickle"),
        (hostile.ErrorAtUnpickle(), "unpickle"),
        (hostile.ExitAtUnpickle(), "unpickle"),
    ],
    ids=["error-at-pickle", "error-at-unpickle", "exit-at-unpickle"],
)
def test_an_argument_that_cannot_travel_fails_only_its_item(
    pool: parkit.Pool, item: Any, stage: str
) -> None:
    items: list[Any] = list(range(N))
    items[BAD] = item
    out = pool.map(tag, items, chunksize=CHUNK, errors="return")
    err = out[BAD]
    assert type(err) is parkit.SerializationError
    assert (err.direction, err.stage, err.item_index) == ("argument", stage, BAD)
    assert err.__cause__ is not None
    _others_ok(out)
    assert pool.stats().worker_restarts == 0  # nobody died
    _still_works(pool)


@pytest.mark.parametrize(
    ("action", "stage"),
    [(("return_unpicklable", ()), "pickle"), (("return_error_at_unpickle", ()), "unpickle")],
    ids=["unpicklable", "error-at-unpickle"],
)
def test_a_result_that_cannot_travel_fails_only_its_item(
    pool: parkit.Pool, action: tuple[str, tuple[Any, ...]], stage: str
) -> None:
    out, _ = _run(pool, script({BAD: action}, N))
    err = out[BAD]
    assert type(err) is parkit.SerializationError
    assert (err.direction, err.stage, err.item_index) == ("result", stage, BAD)
    _others_ok(out)
    _still_works(pool)


@pytest.mark.parametrize(
    "action",
    [("raise_custom_init", ()), ("raise_unpicklable_attr", ()), ("raise_deep", ())],
    ids=["custom-init", "unpicklable-attr", "too-deep"],
)
def test_an_exception_that_cannot_be_rebuilt_is_a_remote_error(
    pool: parkit.Pool, action: tuple[str, tuple[Any, ...]]
) -> None:
    out, _ = _run(pool, script({BAD: action}, N))
    err = out[BAD]
    assert type(err) is parkit.RemoteError
    assert err.type_name.startswith("hostile.")
    assert "Traceback" in err.remote_traceback
    _others_ok(out)
    _still_works(pool)


@pytest.mark.parametrize(
    ("action", "exc_type"),
    [
        (("sys_exit", (7,)), SystemExit),
        (("raise_keyboard_interrupt", ()), KeyboardInterrupt),
        (("raise_base_exception", ()), hostile.MyBaseException),
    ],
    ids=["SystemExit", "KeyboardInterrupt", "BaseException"],
)
def test_base_exceptions_from_fn_are_item_errors_and_the_worker_survives(
    pool: parkit.Pool, action: tuple[str, tuple[Any, ...]], exc_type: type[BaseException]
) -> None:
    out, _ = _run(pool, script({BAD: action}, N))
    assert type(out[BAD]) is exc_type
    if exc_type is SystemExit:
        assert out[BAD].code == 7
    _others_ok(out)
    assert pool.stats().worker_restarts == 0


def test_the_exception_carries_the_worker_traceback_and_a_note(pool: parkit.Pool) -> None:
    with pytest.raises(hostile.WithAttrs) as info:
        pool.map(act, script({BAD: ("raise_with_attrs", (9,))}, N), chunksize=CHUNK)
    err = info.value
    assert err.code == 9
    notes = getattr(err, "__notes__", [])
    assert len(notes) == 1
    assert f"on item {BAD} in worker" in notes[0]
    assert "tasks.act" in notes[0]
    import traceback

    frames = [f.name for f in traceback.extract_tb(err.__traceback__)]
    assert "raise_with_attrs" in frames
    assert "act" in frames


def test_an_initializer_that_raises_breaks_the_pool_promptly(context: str) -> None:
    t0 = time.monotonic()
    with parkit.Pool(
        2, context=context, initializer=hostile.raise_given, initargs=(ValueError, ("bad setup",))
    ) as pool:
        with pytest.raises(parkit.PoolBroken) as info:
            pool.map(tag, range(10))
        assert time.monotonic() - t0 < BOUND_S
        cause = info.value.__cause__
        assert type(cause) is ValueError
        assert cause.args == ("bad setup",)
        assert "initializer" in str(info.value)
        # Broken for good: no endless respawn (gh-87472), later calls fail at once.
        with pytest.raises(parkit.PoolBroken):
            pool.map(tag, range(3))
        assert pool.stats().worker_restarts == 0


def test_an_initializer_that_exits_breaks_the_pool_after_two_tries(context: str) -> None:
    with parkit.Pool(1, context=context, initializer=hostile.os_exit, initargs=(2,)) as pool:
        with pytest.raises(parkit.PoolBroken) as info:
            pool.map(tag, range(4))
        assert "EXIT(2)" in str(info.value)
        assert pool.stats().worker_restarts == 1


def test_unpicklable_function_is_a_serialization_error_at_once(context: str) -> None:
    import threading

    lock = threading.Lock()
    with parkit.Pool(1, context=context) as pool:
        with pytest.raises(parkit.SerializationError) as info:
            pool.map(lambda x: (lock, x), range(3))
        assert info.value.item_index is None
        assert "function" in str(info.value)
        assert pool.map(pid_of, range(2)) == [pool.map(pid_of, [0])[0]] * 2


def test_quick_items_after_an_idle_pause_never_time_out(context: str) -> None:
    # The status slot keeps the last item's start time; a worker starting a new
    # job must never show the parent a current position with that stale time.
    with parkit.Pool(2, context=context, timeout=0.3) as pool:
        for _ in range(4):
            time.sleep(0.35)  # every slot's start time is now older than the timeout
            out = pool.map(tag, range(400), chunksize=1, errors="return")
            assert out == [i * 10 for i in range(400)]
        assert pool.stats().timed_out == 0
