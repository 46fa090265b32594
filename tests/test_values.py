"""parkit.Value and parkit.Array: typed shared data, atomic helpers, task arguments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

import parkit
from parkit._core._segments import SegmentGone
from value_tasks import (
    add_many,
    crash_after_add,
    fill,
    hold_until,
    increment_under_lock,
    square_at,
)


def test_add_from_pool_tasks_is_exact(context: str) -> None:
    counter = parkit.Value(int, 0, context=context)
    with parkit.Pool(2, context=context) as pool:
        assert pool.starmap(add_many, [(counter, 250)] * 8) == [250] * 8
    assert counter.value == 2000


def test_get_lock_increment_from_processes_is_exact(context: str) -> None:
    counter = parkit.Value("i", 5, context=context)
    procs = [
        parkit.Process(increment_under_lock, (counter, 100), context=context) for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert counter.value == 305


def test_tutorial_array_squares_through_starmap(context: str) -> None:
    # multiprocessing: RuntimeError: SynchronizedArray objects should only be
    # shared between processes through inheritance.
    numbers = parkit.Array("i", range(10), context=context)
    with parkit.Pool(2, context=context) as pool:
        pool.starmap(square_at, [(i, numbers) for i in range(10)])
    assert numbers[:] == [i * i for i in range(10)]


def test_value_and_array_to_a_process(context: str) -> None:
    value = parkit.Value(float, context=context)
    numbers = parkit.Array(int, 4, context=context)
    pid = parkit.run(fill, value, numbers, context=context)
    assert pid != os.getpid()
    assert value.value == 3.5
    assert list(numbers) == [0, 10, 20, 30]


def test_a_worker_crash_loses_nothing_and_leaves_nothing(context: str) -> None:
    counter = parkit.Value(int, 0, context=context)
    with parkit.Pool(1, context=context) as pool:
        with pytest.raises(parkit.WorkerCrashed) as info:
            pool.submit(crash_after_add, counter).result(timeout=60)
        assert info.value.exitcode == 3
        assert pool.submit(add_many, counter, 2).result(timeout=60) == 2
    assert counter.value == 3
    # The autouse fixture checks that /dev/shm holds nothing new.


def test_owner_sigkilled_segments_are_swept(context: str) -> None:
    code = f"""
        import sys, parkit
        v = parkit.Value(int, 1, context={context!r})
        a = parkit.Array("d", 3, context={context!r})
        pool = parkit.Pool(1, context={context!r})
        pool.map(abs, [1])
        print(v._name, a._name, v.lock._segment.name, flush=True)
        sys.stdin.read()
    """
    owner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        names = owner.stdout.readline().split()
        assert len(names) == 3
        assert all(os.path.exists(f"/dev/shm/{n}") for n in names)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(30)
        deadline = time.monotonic() + 30
        while any(os.path.exists(f"/dev/shm/{n}") for n in names):
            assert time.monotonic() < deadline, f"left behind: {names}"
            time.sleep(0.05)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        assert owner.stdin is not None
        assert owner.stdout is not None
        owner.stdin.close()
        owner.stdout.close()


def test_update_and_add_return_the_new_value() -> None:
    v = parkit.Value(float, 1.5)
    assert v.add(2.0) == 3.5
    assert v.update(lambda x: x * 2) == 7.0
    assert v.value == 7.0
    with v.get_lock():  # an RLock: the helpers work inside the caller's block
        assert v.add(1.0) == 8.0
    assert repr(v) == "<parkit.Value 'd' 8.0>"


@pytest.mark.parametrize(
    ("kind", "value", "code", "expected"),
    [
        (int, None, "q", 0),
        (int, -(2**63), "q", -(2**63)),
        (float, 2.5, "d", 2.5),
        (bool, True, "?", True),
        (bytes, b"x", "c", b"x"),
        (str, "é", "u", "é"),
        ("i", 7, "i", 7),
        ("B", 255, "B", 255),
        ("f", 0.5, "f", 0.5),
    ],
)
def test_kinds(kind: Any, value: Any, code: str, expected: Any) -> None:
    v = parkit.Value(kind, value)
    assert (v.typecode, v.value) == (code, expected)


def test_array_indexing_and_slices() -> None:
    a = parkit.Array("d", [1.0, 2.0, 3.0])
    assert (len(a), a[0], a[-1], a[1:], a.tolist()) == (3, 1.0, 3.0, [2.0, 3.0], [1.0, 2.0, 3.0])
    a[1:] = [5.0, 6.0]
    a[0] = 4.0
    assert list(a) == [4.0, 5.0, 6.0]
    assert repr(a) == "<parkit.Array 'd' len=3 [4.0, 5.0, 6.0]>"
    assert parkit.Array(int, 0).tolist() == []
    with pytest.raises(IndexError):
        a[3]


def test_shared_lock_and_no_lock() -> None:
    lock = parkit.Lock()
    a, b = parkit.Value(int, 0, lock=lock), parkit.Array(int, 2, lock=lock)
    assert a.lock is lock
    assert b.get_lock() is lock
    bare = parkit.Value(int, 0, lock=False)
    bare.value = 4
    with pytest.raises(AttributeError, match="made with lock=False"):
        bare.add(1)
    assert isinstance(parkit.Value(int).lock, parkit.RLock)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: parkit.Value(list), TypeError, "kind must be int, float, bool, bytes, str"),
        (lambda: parkit.Value("z"), ValueError, "typecode must be one of 'cubBhHiIlLqQfd\\?'"),
        (lambda: parkit.Value(int, "1"), TypeError, "value '1' does not fit typecode 'q'"),
        (lambda: parkit.Value("b", 300), ValueError, "value 300 is out of range for typecode"),
        (lambda: parkit.Array(int, -1), ValueError, "size must not be negative, not -1"),
        (lambda: parkit.Array(int, "abc"), TypeError, "size_or_items must be a length"),
        (lambda: parkit.Array("i", [1, "x"]), TypeError, "item 'x' does not fit typecode 'i'"),
        (
            lambda: parkit.Value(int, lock="yes"),  # type: ignore[call-overload]
            TypeError,
            "lock must be True, False",
        ),
        (lambda: parkit.Value(int, context="nope"), ValueError, "unknown start method 'nope'"),
    ],
)
def test_bad_input(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    ("write", "what", "bad"),
    [
        (lambda v, a: setattr(v, "value", 2**31), "value", 2**31),
        (lambda v, a: setattr(v, "value", -(2**31) - 1), "value", -(2**31) - 1),
        (lambda v, a: a.__setitem__(0, 2**40), "item", 2**40),
        (lambda v, a: a.__setitem__(slice(0, 2), [1, 2**31]), "item", 2**31),
        (lambda v, a: v.add(1), "result", 2**31),
        (lambda v, a: v.update(lambda x: x * 2), "result", 2**32 - 2),
    ],
    ids=["value-high", "value-low", "item", "slice", "add", "update"],
)
def test_writes_out_of_range_raise_instead_of_wrapping(write: Any, what: str, bad: int) -> None:
    # ctypes stores 2**31 in a c_int as -2**31, silently; parkit checks every write,
    # not only the initial values, and leaves the data as it was.
    v = parkit.Value("i", 2**31 - 1)
    a = parkit.Array("i", [5, 6])
    with pytest.raises(ValueError, match=rf"^{what} {bad} is out of range for typecode 'i' "):
        write(v, a)
    assert (v.value, a[:]) == (2**31 - 1, [5, 6])


def test_writes_in_range_of_every_integer_typecode() -> None:
    for code, low, high in [("b", -128, 127), ("B", 0, 255), ("H", 0, 65535), ("Q", 0, 2**64 - 1)]:
        a = parkit.Array(code, 2)
        a[:] = [low, high]
        assert a[:] == [low, high]
        with pytest.raises(ValueError, match=f"{low} to {high}"):
            a[0] = high + 1
    flag = parkit.Value(bool)
    flag.value = True
    with pytest.raises(ValueError, match="out of range for typecode '\\?'"):
        flag.value = 2  # type: ignore[assignment]
    f = parkit.Value(float, 0.0)
    f.value = 1e300  # floats are not range-checked: a double holds it
    assert f.value == 1e300


def test_closed_owner_refuses_late_attach() -> None:
    import pickle

    v = parkit.Value(int, 1)
    handle = pickle.dumps(v)
    v.close()
    with pytest.raises(SegmentGone, match=r"the parkit.Value .* no longer exists"):
        pickle.loads(handle)


def test_add_waits_for_another_holder(context: str) -> None:
    # The fast path runs only when nobody else holds the lock: with the lock
    # held by another process, add() waits for it like `with v.lock:` (here it
    # times out after the lock's own timeout) and changes nothing.
    lock = parkit.Lock(timeout=0.3, context=context)
    counter = parkit.Value(int, 7, lock=lock, context=context)
    ready, done = parkit.Event(context=context), parkit.Event(context=context)
    with parkit.Process(hold_until, (lock, ready, done), context=context) as holder:
        holder.start()
        assert ready.wait(60)
        with pytest.raises(parkit.LockTimeout) as info:
            counter.add(1)
        assert info.value.holder_pid == holder.pid
        assert counter.value == 7
        done.set()
    assert counter.add(1) == 8
