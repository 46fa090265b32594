"""Bad input at every public entry point (issue 17): a TypeError or ValueError at the call.

Each case calls one entry point with one bad value and asserts the exact exception
type and that the message says what is allowed. A wrong type is a ``TypeError``, a
value out of range a ``ValueError``; the rules are those of ``parkit._core._checks``
and docs/reliability.md ("Bad input"). Calls that would run something use the serial
or thread backend; ``test_the_process_backend_refuses_before_starting_anything``
checks once per option that the process backend refuses before any process starts.

The Hypothesis properties at the end feed generated junk to the options of every
public callable: each call either works (and returns what it should) or raises one
of those two errors at once, as the documented rule for that option says.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import math
import pickle
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

import parkit
from parkit._core._checks import MAX_SECONDS, WORD_MAX, UsedAfterClose
from parkit._core._segments import SegmentGone

#: parkit, untyped: the calls here pass what the types forbid, on purpose.
pk: Any = parkit

NAN = float("nan")
INF = float("inf")

COUNT = r"must be a positive int or None, not "
LIMIT = r"must be a positive number of seconds \(at most \d+\) or None for no limit, not "
WAIT = r"must be None or a number of seconds >= 0 \(0: don't wait\), not "
WAIT_TYPE = r"must be None or a number of seconds, not "
SHAPE = r"^shape must be an int or a tuple of ints >= 0, not "


def _children() -> set[int]:
    """This process's descendants, by pid: none may be new after a refused call."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


def square(x: int) -> int:
    return x * x


def add(a: int, b: int) -> int:
    return a + b


# --------------------------------------------------------------- the mapping calls


def _run(result: Any) -> Any:
    """What a call gives: an awaited coroutine, a drained iterator, or the value."""
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    if hasattr(result, "__aiter__"):

        async def drain() -> list[Any]:
            return [x async for x in result]

        return asyncio.run(drain())
    if isinstance(result, Iterator):
        return list(result)
    return result


#: The one-shot calls and their Pool twins, called with the options under test.
#: The lazy ones (imap, aimap) are not iterated: the error comes from the call.
MAPPERS: dict[str, Callable[..., Any]] = {
    "map": lambda **kw: pk.map(square, [1, 2], **kw),
    "imap": lambda **kw: pk.imap(square, [1, 2], **kw),
    "starmap": lambda **kw: pk.starmap(add, [(1, 2)], **kw),
    "amap": lambda **kw: _run(pk.amap(square, [1, 2], **kw)),
    "aimap": lambda **kw: pk.aimap(square, [1, 2], **kw),
    "astarmap": lambda **kw: _run(pk.astarmap(add, [(1, 2)], **kw)),
}


def _pool_method(name: str) -> Callable[..., Any]:
    def call(backend: str = "serial", **kw: Any) -> Any:
        with pk.Pool(1, backend=backend) as pool:
            method = getattr(pool, name)
            items = [(1, 2)] if "star" in name else [1, 2]
            fn = add if "star" in name else square
            return (
                _run(method(fn, items, **kw)) if name.startswith("a") else method(fn, items, **kw)
            )

    return call


POOL_METHODS = {
    f"Pool.{name}": _pool_method(name)
    for name in ("map", "imap", "starmap", "amap", "aimap", "astarmap")
}

#: (option, value, error, message) for every mapping call; ``backend="serial"`` is
#: added where the option is not the backend or the start method.
CALL_OPTIONS: list[tuple[str, Any, type[Exception], str]] = [
    ("workers", 0, ValueError, "workers " + COUNT + "0$"),
    ("workers", -1, ValueError, "workers " + COUNT + "-1$"),
    ("workers", True, TypeError, "workers " + COUNT + "True$"),
    ("workers", "2", TypeError, "workers " + COUNT + "'2'$"),
    ("workers", 1.5, TypeError, "workers " + COUNT + "1.5$"),
    ("chunksize", 0, ValueError, "chunksize " + COUNT + "0$"),
    ("chunksize", -2, ValueError, "chunksize " + COUNT + "-2$"),
    ("chunksize", 2.0, TypeError, "chunksize " + COUNT + "2.0$"),
    ("chunksize", False, TypeError, "chunksize " + COUNT + "False$"),
    ("timeout", 0, ValueError, "timeout " + LIMIT + "0$"),
    ("timeout", -1, ValueError, "timeout " + LIMIT + "-1$"),
    ("timeout", -0.0, ValueError, "timeout " + LIMIT + "-0.0$"),
    ("timeout", NAN, ValueError, "timeout " + LIMIT + "nan$"),
    ("timeout", INF, ValueError, "timeout " + LIMIT + "inf$"),
    ("timeout", MAX_SECONDS * 2, ValueError, "timeout " + LIMIT),
    ("timeout", "1", TypeError, "timeout " + LIMIT + "'1'$"),
    ("timeout", True, TypeError, "timeout " + LIMIT + "True$"),
    ("errors", "ignore", ValueError, '^errors must be "raise" or "return", not \'ignore\'$'),
    ("errors", None, ValueError, '^errors must be "raise" or "return", not None$'),
    ("backend", "gpu", ValueError, "^backend must be one of 'process', 'thread', 'serial', "),
    ("backend", 3, TypeError, "^backend must be one of .* or a backend object, not 3$"),
    ("context", "threads", ValueError, "^unknown start method 'threads'; this platform has: "),
    ("context", 3, TypeError, "^context must be None, a start-method name "),
    ("progress", "yes", TypeError, r"^progress must be True, False or a callable"),
]


def _refused(call: Callable[[], Any], error: type[Exception], message: str, case: str) -> None:
    """``call()`` raises exactly ``error`` with a message matching ``message``."""
    got = _outcome(call)
    assert type(got) is error, f"{case}: {got!r}"
    assert re.search(message, str(got)), f"{case}: {str(got)!r} !~ {message!r}"


# One test per entry point, its bad options in a loop: a test apiece would cost
# the suite's leak guard (~0.1 s per test) a few hundred times over.
@pytest.mark.parametrize("name", [*MAPPERS, *POOL_METHODS])
def test_a_mapping_call_refuses_every_bad_option(name: str) -> None:
    call = {**MAPPERS, **POOL_METHODS}[name]
    for option, value, error, message in CALL_OPTIONS:
        if name.startswith("Pool.") and option in ("workers", "backend", "context"):
            continue  # the pool's own, checked by its constructor below
        options = {option: value}
        if option not in ("backend", "context"):
            options["backend"] = "serial"
        _refused(functools.partial(call, **options), error, message, f"{name}({option}={value!r})")


@pytest.mark.parametrize("name", ["imap", "aimap", "Pool.imap", "Pool.aimap"])
def test_ordered_must_be_a_bool(name: str) -> None:
    call = {**MAPPERS, **POOL_METHODS}[name]
    with pytest.raises(TypeError, match=r"^ordered must be True or False, not 'yes'$"):
        call(ordered="yes", backend="serial")


NOT_CALLABLE: dict[str, Callable[[], Any]] = {
    "map": lambda: pk.map(3, [1], backend="serial"),
    "imap": lambda: pk.imap(3, [1], backend="serial"),
    "starmap": lambda: pk.starmap(3, [(1,)], backend="serial"),
    "amap": lambda: _run(pk.amap(3, [1], backend="serial")),
    "aimap": lambda: pk.aimap(3, [1], backend="serial"),
    "astarmap": lambda: _run(pk.astarmap(3, [(1,)], backend="serial")),
    "run": lambda: pk.run(3),
}


@pytest.mark.parametrize("name", NOT_CALLABLE)
def test_a_non_callable_fn_is_a_type_error(name: str) -> None:
    with pytest.raises(TypeError, match=r"^fn must be callable, not int$"):
        NOT_CALLABLE[name]()


@pytest.mark.parametrize("method", ["map", "imap", "starmap", "submit", "amap", "aimap", "asubmit"])
def test_a_pool_method_refuses_a_non_callable(method: str) -> None:
    with pk.Pool(1, backend="thread") as pool:
        args: tuple[Any, ...] = (3,) if "submit" in method else (3, [1])
        with pytest.raises(TypeError, match=r"^fn must be callable, not int$"):
            _run(getattr(pool, method)(*args))


def test_dask_decides_its_workers() -> None:
    # Refused before anything looks for a cluster: no client is needed here.
    message = (
        r"^workers= does not apply to the 'dask' backend, not 2: the cluster decides how "
        r"many items run at once \(its threads\); leave workers out$"
    )
    with pytest.raises(ValueError, match=message):
        pk.map(square, [1], backend="dask", workers=2)
    with pytest.raises(ValueError, match=message):
        pk.Pool(2, backend="dask")
    with pytest.raises(ValueError, match=message):
        _run(pk.amap(square, [1], backend="dask", workers=2))


# -------------------------------------------------------------------- constructors

POOL_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"workers": 0}, ValueError, "^workers " + COUNT + "0$"),
    ({"workers": "4"}, TypeError, "^workers " + COUNT + "'4'$"),
    ({"chunksize": 0}, ValueError, "^chunksize " + COUNT + "0$"),
    ({"timeout": 0}, ValueError, "^timeout " + LIMIT + "0$"),
    ({"timeout": "5"}, TypeError, "^timeout " + LIMIT + "'5'$"),
    ({"idle_timeout": 0}, ValueError, "^idle_timeout " + LIMIT + "0$"),
    ({"idle_timeout": INF}, ValueError, "^idle_timeout " + LIMIT + "inf$"),
    ({"idle_timeout": MAX_SECONDS * 2}, ValueError, "^idle_timeout " + LIMIT),
    ({"idle_timeout": True}, TypeError, "^idle_timeout " + LIMIT + "True$"),
    ({"max_tasks_per_worker": 0}, ValueError, "^max_tasks_per_worker " + COUNT + "0$"),
    ({"max_tasks_per_worker": 1.5}, TypeError, "^max_tasks_per_worker " + COUNT + "1.5$"),
    ({"initializer": 3}, TypeError, "^initializer must be callable, not int$"),
    ({"initargs": 3}, TypeError, r"^initargs must be an iterable of arguments \(a tuple\), not 3$"),
    ({"insights": 1}, TypeError, "^insights must be True or False, not 1$"),
    ({"profile": "yes"}, TypeError, "^profile must be True or False, not 'yes'$"),
    ({"worker_logging": None}, TypeError, "^worker_logging must be True or False, not None$"),
    ({"backend": "gpu"}, ValueError, "^backend must be one of "),
    ({"context": "threads"}, ValueError, "^unknown start method 'threads'"),
]


@pytest.mark.parametrize(("options", "error", "message"), POOL_OPTIONS)
def test_pool_refuses_a_bad_option(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        pk.Pool(**options)


EXECUTOR_OPTIONS: list[tuple[tuple[Any, ...], dict[str, Any], type[Exception], str]] = [
    ((0,), {}, ValueError, "^max_workers must be greater than 0$"),  # the stdlib's words
    ((-1,), {}, ValueError, "^max_workers must be greater than 0$"),
    (("2",), {}, TypeError, "^max_workers must be an int or None, not '2'$"),
    ((1.5,), {}, TypeError, "^max_workers must be an int or None, not 1.5$"),
    ((1, "threads"), {}, ValueError, "^unknown start method 'threads'"),
    ((1, 3), {}, TypeError, "^context must be None, a start-method name"),
    ((1, None, 3), {}, TypeError, "^initializer must be a callable$"),
    ((1, None, None, 3), {}, TypeError, r"^initargs must be an iterable of arguments"),
    ((1,), {"max_tasks_per_child": 0}, ValueError, "^max_tasks_per_child must be >= 1$"),
    ((1,), {"max_tasks_per_child": 1.5}, TypeError, "^max_tasks_per_child must be an integer$"),
    ((1,), {"worker_logging": "x"}, TypeError, "^worker_logging must be True or False"),
]


@pytest.mark.parametrize(("args", "kwargs", "error", "message"), EXECUTOR_OPTIONS)
def test_the_executor_refuses_a_bad_option(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        pk.ProcessPoolExecutor(*args, **kwargs)


EXECUTOR_CALLS: list[tuple[Callable[[Any], Any], type[Exception], str]] = [
    (lambda ex: ex.submit(3), TypeError, "^fn must be callable, not int$"),
    (lambda ex: ex.map(3, [1]), TypeError, "^fn must be callable, not int$"),
    (lambda ex: ex.map(square, [1], chunksize=0), ValueError, r"^chunksize must be >= 1\.$"),
    (
        lambda ex: ex.map(square, [1], chunksize="2"),
        TypeError,
        "^chunksize must be an int, not '2'$",
    ),
    (lambda ex: ex.map(square, [1], buffersize=0), ValueError, "^buffersize must be None or > 0$"),
    (lambda ex: ex.map(square, [1], timeout="1"), TypeError, "^timeout " + WAIT_TYPE + "'1'$"),
    (lambda ex: ex.map(square, [1], timeout=NAN), ValueError, "^timeout " + WAIT + "nan$"),
]


@pytest.mark.parametrize(("call", "error", "message"), EXECUTOR_CALLS)
def test_the_executor_methods_refuse_bad_input(
    call: Callable[[Any], Any], error: type[Exception], message: str
) -> None:
    before = _children()
    with pk.ProcessPoolExecutor(1) as ex:
        with pytest.raises(error, match=message):
            call(ex)
        assert _children() <= before  # refused before a worker started


def test_the_executor_map_keeps_the_stdlib_meaning_of_a_negative_timeout() -> None:
    with pk.ProcessPoolExecutor(1) as ex:
        results = ex.map(square, [1, 2], timeout=-1)  # expired already, as the stdlib's
        with pytest.raises(TimeoutError):
            next(results)


PROCESS_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"target": 3}, TypeError, "^target must be callable, not int$"),
    ({"args": 3}, TypeError, r"^args must be an iterable of arguments \(a tuple\), not 3$"),
    ({"kwargs": 3}, TypeError, "^kwargs must be a mapping of keyword arguments or None, not 3$"),
    ({"kwargs": {1: 2}}, TypeError, "^kwargs keys must be str, not 1$"),
    ({"name": 3}, TypeError, "^name must be a str or None, not 3$"),
    ({"daemon": "yes"}, TypeError, "^daemon must be True, False or None, not 'yes'$"),
    ({"worker_logging": 0}, TypeError, "^worker_logging must be True or False, not 0$"),
    ({"context": "threads"}, ValueError, "^unknown start method 'threads'"),
    ({"cpus": "0"}, TypeError, r"^cpus must be a set of CPU numbers \(ints\)"),
]


@pytest.mark.parametrize(("options", "error", "message"), PROCESS_OPTIONS)
def test_process_refuses_a_bad_option(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    options = {"target": square, "args": (2,), **options}
    with pytest.raises(error, match=message):
        pk.Process(**options)


RUN_TIMEOUTS: list[tuple[Any, type[Exception]]] = [
    (0, ValueError), (-1, ValueError), (NAN, ValueError), (INF, ValueError),
    ("1", TypeError), (True, TypeError),
]  # fmt: skip


@pytest.mark.parametrize(("timeout", "error"), RUN_TIMEOUTS)
def test_run_refuses_a_bad_time_limit_before_starting_anything(
    timeout: Any, error: type[Exception]
) -> None:
    before = _children()
    with pytest.raises(error, match=r"^timeout " + LIMIT):
        pk.run(square, 2, timeout=timeout)
    assert _children() <= before


def test_process_waits_check_their_timeout_first() -> None:
    proc = pk.Process(square, (3,))
    # Checked before anything else: not "not started".
    with pytest.raises(ValueError, match=r"^timeout " + WAIT + "-1$"):
        proc.result(timeout=-1)
    with pytest.raises(TypeError, match=r"^timeout " + WAIT_TYPE + "'1'$"):
        proc.result(timeout="1")
    with pytest.raises(TypeError, match=r"^timeout " + WAIT_TYPE + "'1'$"):
        proc.join("1")
    with pytest.raises(ValueError, match=r"^timeout " + WAIT + "nan$"):
        proc.join(NAN)
    with proc:
        proc.start()
        proc.join(-1)  # the stdlib's meaning: does not wait
        assert proc.result(timeout=INF) == 9  # inf: as long as it takes
        proc.join(MAX_SECONDS * 10)


# ------------------------------------------------------------- communication, sync

QUEUE_SIZES: list[tuple[Any, type[Exception], str]] = [
    (-5, ValueError, r"^maxsize must be an int >= 0 \(0: unbounded\), not -5$"),
    (WORD_MAX + 1, ValueError, f"^maxsize must be at most {WORD_MAX}, not {WORD_MAX + 1}$"),
    ("3", TypeError, r"^maxsize must be an int >= 0 \(0: unbounded\), not '3'$"),
    (1.5, TypeError, r"^maxsize must be an int >= 0 \(0: unbounded\), not 1.5$"),
    (True, TypeError, r"^maxsize must be an int >= 0 \(0: unbounded\), not True$"),
    (None, TypeError, r"^maxsize must be an int >= 0 \(0: unbounded\), not None$"),
]


@pytest.mark.parametrize(("maxsize", "error", "message"), QUEUE_SIZES)
def test_queue_refuses_a_bad_maxsize(maxsize: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        pk.Queue(maxsize)


#: Bad waits, for every blocking call: (timeout, error, message tail).
BAD_WAITS: list[tuple[Any, type[Exception], str]] = [
    (-1.5, ValueError, WAIT + "-1.5$"),
    (NAN, ValueError, WAIT + "nan$"),
    ("1", TypeError, WAIT_TYPE + "'1'$"),
    (True, TypeError, WAIT_TYPE + "True$"),
    ([1], TypeError, WAIT_TYPE + r"\[1\]$"),
]


def _blocking_calls() -> dict[str, Callable[[Any], Any]]:
    """One-argument calls that take a wait timeout (each on a fresh object)."""

    def cond_wait(t: Any) -> Any:
        cond = pk.Condition()
        with cond:
            return cond.wait(t)

    def pipe(method: str) -> Callable[[Any], Any]:
        def call(t: Any) -> Any:
            a, b = pk.Pipe()
            with a, b:
                return getattr(a, method)(t)

        return call

    return {
        "Queue.get": lambda t: pk.Queue().get(timeout=t),
        "Queue.put": lambda t: pk.Queue().put(1, timeout=t),
        "Connection.recv": pipe("recv"),
        "Connection.recv_bytes": pipe("recv_bytes"),
        "Connection.poll": pipe("poll"),
        "Lock.acquire": lambda t: pk.Lock().acquire(timeout=t),
        "Lock.hold": lambda t: pk.Lock().hold(timeout=t),
        "RLock.acquire": lambda t: pk.RLock().acquire(timeout=t),
        "Semaphore.acquire": lambda t: pk.Semaphore().acquire(timeout=t),
        "BoundedSemaphore.hold": lambda t: pk.BoundedSemaphore().hold(timeout=t),
        "Event.wait": lambda t: pk.Event().wait(t),
        "Condition.wait": cond_wait,
        "Barrier.wait": lambda t: pk.Barrier(2).wait(t),
        "Lock(timeout=)": lambda t: pk.Lock(timeout=t),
        "RLock(timeout=)": lambda t: pk.RLock(timeout=t),
        "Semaphore(timeout=)": lambda t: pk.Semaphore(timeout=t),
        "Event(timeout=)": lambda t: pk.Event(timeout=t),
        "Condition(timeout=)": lambda t: pk.Condition(timeout=t),
        "Barrier(timeout=)": lambda t: pk.Barrier(2, timeout=t),
    }


BLOCKING = _blocking_calls()


@pytest.mark.parametrize("name", BLOCKING)
def test_a_blocking_call_refuses_every_bad_timeout(name: str) -> None:
    for timeout, error, message in BAD_WAITS:
        _refused(
            functools.partial(BLOCKING[name], timeout),
            error,
            "^timeout " + message,
            f"{name}({timeout!r})",
        )


def test_zero_polls_and_inf_waits_for_as_long_as_it_takes() -> None:
    q = pk.Queue[int]()
    q.put(1)
    assert q.get(timeout=INF) == 1  # there already: no wait, however long allowed
    with pytest.raises(__import__("queue").Empty):
        q.get(timeout=0)  # 0: one try, no wait
    a, b = pk.Pipe[int]()
    with a, b:
        assert a.poll(0) is False
        b.send(5)
        assert a.recv(timeout=MAX_SECONDS * 2) == 5  # beyond what the OS takes: for ever
    lock = pk.Lock(timeout=INF)
    assert lock.timeout is None  # stored as "as long as it takes"
    assert lock.acquire(timeout=0) is True
    assert lock.acquire(timeout=0) is False
    lock.release()


def test_a_non_blocking_acquire_takes_no_timeout_as_in_the_stdlib() -> None:
    lock = pk.Lock()
    with pytest.raises(ValueError, match=r"^can't specify a timeout for a non-blocking call$"):
        lock.acquire(False, timeout=1)
    assert lock.acquire(False, timeout=-1) is True  # -1 is the stdlib's "no timeout"
    lock.release()


SYNC_OPTIONS: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: pk.Lock(abandoned="ignore"), ValueError,
     "^abandoned must be \"raise\" or \"recover\", not 'ignore'$"),
    (lambda: pk.Semaphore(-1), ValueError, "^value must be an int >= 0, not -1$"),
    (lambda: pk.Semaphore("1"), TypeError, "^value must be an int >= 0, not '1'$"),
    (lambda: pk.BoundedSemaphore(WORD_MAX + 1), ValueError, "^value must be at most "),
    (lambda: pk.Semaphore().release(0), ValueError, "^n must be an int >= 1, not 0$"),
    (lambda: pk.Semaphore().release(True), TypeError, "^n must be an int >= 1, not True$"),
    (lambda: pk.Barrier(0), ValueError, "^parties must be a positive int, not 0$"),
    (lambda: pk.Barrier(2.0), TypeError, "^parties must be a positive int, not 2.0$"),
    (lambda: pk.Barrier(2, action=3), TypeError, "^action must be callable, not int$"),
    (lambda: pk.Condition(3), TypeError, "^lock must be a parkit.Lock or parkit.RLock"),
    (lambda: pk.Pipe("yes"), TypeError, "^duplex must be True or False, not 'yes'$"),
    (lambda: pk.Pipe(context="threads"), ValueError, "^unknown start method 'threads'"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "message"), SYNC_OPTIONS)
def test_sync_objects_refuse_bad_options(
    call: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call()


# ------------------------------------------------------------------- shared state

SHARED: list[tuple[Callable[[], Any], type[Exception], str]] = [
    (lambda: pk.Value(complex), TypeError, "^kind must be int, float, bool, bytes, str or a"),
    (lambda: pk.Value(None), TypeError, "^kind must be int, float, bool, bytes, str or a"),
    (lambda: pk.Value("z"), ValueError, "^typecode must be one of 'cubBhHiIlLqQfd\\?', not 'z'$"),
    (lambda: pk.Value("i", "x"), TypeError, r"^value 'x' does not fit typecode 'i' \(c_int\)$"),
    (lambda: pk.Value("i", 2**40), ValueError, "^value 1099511627776 is out of range"),
    (lambda: pk.Value("i", lock="x"), TypeError, "^lock must be True, False, or a parkit"),
    (lambda: pk.Array("d", -1), ValueError, "^size must not be negative, not -1$"),
    (lambda: pk.Array("d", 1.5), TypeError, "^size_or_items must be a length or an iterable"),
    (lambda: pk.Array("z", 3), ValueError, "^typecode must be one of"),
    (lambda: pk.SharedArray.zeros(-1), ValueError, r"^shape must not be negative, not \(-1,\)$"),
    (lambda: pk.SharedArray.zeros((2, -3)), ValueError, r"^shape must not be negative, not \(2,"),
    (lambda: pk.SharedArray.zeros("x"), TypeError, SHAPE + "'x'$"),
    (lambda: pk.SharedArray.zeros((1.5,)), TypeError, SHAPE + r"\(1.5,\)$"),
    (lambda: pk.SharedArray.zeros(None), TypeError, "^shape must be an int or a tuple of ints"),
    (lambda: pk.SharedArray.zeros(True), TypeError, "^shape must be an int or a tuple of ints"),
    (lambda: pk.SharedArray.zeros((10**30,)), ValueError, r"^shape \(10{30},\) of float64 is too"),
    (lambda: pk.SharedArray.zeros((2**62, 2**62)), ValueError, "is too large"),
    (lambda: pk.SharedArray.zeros(2, object), TypeError, r"^a SharedArray can't hold Python"),
    (lambda: pk.SharedArray.zeros(2, "bogus"), TypeError, "data type 'bogus' not understood"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "message"), SHARED)
def test_shared_state_refuses_bad_input(
    call: Callable[[], Any], error: type[Exception], message: str
) -> None:
    pytest.importorskip("numpy")
    with pytest.raises(error, match=message):
        call()


# ------------------------------------------------------------------------ managers


MANAGER_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"context": "threads"}, ValueError, "^unknown start method 'threads'"),
    ({"authkey": b"short"}, ValueError, "^authkey has 5 bytes; at least 32 are required"),
    ({"authkey": "x" * 32}, TypeError, "^authkey must be bytes, not str$"),
    ({"address": 3}, TypeError, "^address must be None, a Unix socket path"),
    ({"types": [3]}, TypeError, "^types must hold classes, not 3$"),
    ({"allow_remote": "yes"}, TypeError, "^allow_remote must be True or False, not 'yes'$"),
]


@pytest.mark.parametrize(("options", "error", "message"), MANAGER_OPTIONS)
def test_manager_refuses_a_bad_option(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        pk.Manager(**options)


def test_manager_methods_refuse_bad_input_in_the_client() -> None:
    with pk.Manager(context="fork") as m:
        cases: list[tuple[Callable[[], Any], type[Exception], str]] = [
            (lambda: m.Queue(-5), ValueError, r"^maxsize must be an int >= 0 \(0: unbounded\)"),
            (lambda: m.Queue("x"), TypeError, r"^maxsize must be an int >= 0"),
            (lambda: m.Value("i", "x"), TypeError, r"^value 'x' does not fit typecode 'i'"),
            (lambda: m.Value("i", 2**40), ValueError, "is out of range for typecode 'i'"),
            (lambda: m.Value("z", 1), ValueError, "^typecode must be one of"),
            (lambda: m.Value(int, "x"), TypeError, "^value must be a int, not str$"),
            (
                lambda: m.dict(3),
                TypeError,
                r"^data must be a mapping, an iterable of \(key, value\)",
            ),
            (lambda: m.list(3), TypeError, "^data must be an iterable, not 3$"),
            (lambda: m.get(3), TypeError, "^name must be a str, not int$"),
            (lambda: m.create(3), TypeError, "^cls must be a class, not 3$"),
            (lambda: m.shutdown(-1), ValueError, "^timeout " + WAIT + "-1$"),
        ]
        for call, error, message in cases:
            with pytest.raises(error, match=message):
                call()
        assert m.dict({"a": 1})["a"] == 1  # still serving


# ------------------------------------------------------------- used after close


def test_a_closed_connection_is_an_os_error_and_a_value_error() -> None:
    a, b = pk.Pipe[int]()
    a.close()
    for call in (lambda: a.send(1), lambda: a.recv(timeout=0), a.poll, a.fileno):
        with pytest.raises(UsedAfterClose, match=r"^the connection is closed$") as info:
            call()
        assert isinstance(info.value, OSError)
        assert isinstance(info.value, ValueError)
    b.close()


def test_a_closed_queue_refuses_puts() -> None:
    q = pk.Queue[int]()
    q.close()
    with pytest.raises(ValueError, match=r"^put on a closed Queue$"):
        q.put(1)
    with pytest.raises(pk.QueueClosed):
        q.get(timeout=0)


def test_a_closed_shared_array_refuses_use() -> None:
    pytest.importorskip("numpy")
    sa = pk.SharedArray.zeros(3)
    sa.close()
    with pytest.raises(ValueError, match=r"^the SharedArray is closed$"):
        sa.array  # noqa: B018
    with pytest.raises(ValueError, match=r"^a closed SharedArray can't be sent$"):
        pickle.dumps(sa)


def _owned() -> dict[str, Callable[[], Any]]:
    made: dict[str, Callable[[], Any]] = {
        "Lock": pk.Lock,
        "RLock": pk.RLock,
        "Semaphore": pk.Semaphore,
        "BoundedSemaphore": pk.BoundedSemaphore,
        "Event": pk.Event,
        "Condition": pk.Condition,
        "Barrier": lambda: pk.Barrier(2),
        "Queue": pk.Queue,
        "Value": lambda: pk.Value("i", 1),
        "Array": lambda: pk.Array("d", 3),
    }
    return made


@pytest.mark.parametrize("kind", [*_owned(), "SharedArray"])
def test_a_handle_sent_after_its_owner_closed_it_is_a_value_error(kind: str) -> None:
    # What a child that unpickles the handle late meets (docs/sync.md): the owner
    # has released the object, so it is gone, and the error says who to keep alive.
    if kind == "SharedArray":
        pytest.importorskip("numpy")
        obj: Any = pk.SharedArray.zeros(2)
    else:
        obj = _owned()[kind]()
    blob = pickle.dumps(obj)
    if hasattr(obj, "close"):
        obj.close()
    del obj
    gc.collect()
    # A Condition, Value or Array carries its lock: the first segment found gone.
    with pytest.raises(
        SegmentGone, match=r"^the parkit\.(\w+) parkit-\d+-.* no longer exists: "
    ) as info:
        pickle.loads(blob)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, FileNotFoundError)


def test_a_closed_pool_or_executor_raises_runtime_error_as_the_stdlib_executor() -> None:
    pool = pk.Pool(1, backend="thread")
    pool.shutdown()
    with pytest.raises(
        RuntimeError, match=r"^cannot use a pool after shutdown\(\) or terminate\(\)$"
    ):
        pool.map(square, [1])
    ex = pk.ProcessPoolExecutor(1)
    ex.shutdown()
    with pytest.raises(RuntimeError, match=r"^cannot schedule new futures after shutdown$"):
        ex.submit(square, 1)


def test_a_proxy_of_a_shut_down_manager_raises_manager_gone() -> None:
    with pk.Manager(context="fork") as m:
        d = m.dict({"a": 1})
        assert d["a"] == 1
    with pytest.raises(pk.ManagerGone, match=r"^the manager's server .*is gone") as info:
        d["a"]
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value, EOFError)
    assert isinstance(info.value.__cause__, OSError | EOFError)


# ---------------------------------------- the process backend, once per option


PROCESS_BACKEND: dict[str, Callable[[], Any]] = {
    "workers": lambda: pk.map(square, [1], workers=0),
    "chunksize": lambda: pk.map(square, [1], chunksize=0),
    "timeout": lambda: pk.map(square, [1], timeout=-1),
    "errors": lambda: pk.map(square, [1], errors="ignore"),
    "context": lambda: pk.map(square, [1], context="threads"),
    "fn": lambda: pk.map(3, [1]),
    "ordered": lambda: pk.imap(square, [1], ordered="yes"),
    "progress": lambda: pk.map(square, [1], progress="yes"),
    "Pool.initializer": lambda: pk.Pool(1, initializer=3),
    "Pool.idle_timeout": lambda: pk.Pool(1, idle_timeout=INF),
    "Pool.max_tasks_per_worker": lambda: pk.Pool(1, max_tasks_per_worker=0),
    "Process.args": lambda: pk.Process(square, 3),
    "run.timeout": lambda: pk.run(square, 1, timeout=0),
}


@pytest.mark.parametrize("option", PROCESS_BACKEND)
def test_the_process_backend_refuses_before_starting_anything(option: str) -> None:
    before = _children()
    with pytest.raises((ValueError, TypeError)):
        PROCESS_BACKEND[option]()
    assert _children() <= before


# ============================================================ Hypothesis: junk


#: Junk for any option: ints small, negative and huge, floats special, strings,
#: None, bools, lists and plain objects.
JUNK = st.one_of(
    st.integers(min_value=-3, max_value=4),
    st.sampled_from([2**31, 2**63, 10**30, -(10**30)]),
    st.sampled_from([0.0, -0.0, NAN, INF, -INF, 1e-300, 0.5, 2.0, -1.5, 1e30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["raise", "return", "serial", "thread", "spawn", "fork", "forkserver"]),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.builds(object),
)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# The documented rules (docs/reliability.md, "Bad input"), as predicates.
def count_ok(v: Any) -> bool:
    return v is None or (_is_int(v) and v >= 1)


def limit_ok(v: Any) -> bool:
    return v is None or (_is_number(v) and 0 < v <= MAX_SECONDS)


def wait_ok(v: Any) -> bool:
    return v is None or (_is_number(v) and not math.isnan(v) and v >= 0)


#: Words every refusal's message has: it says what is allowed.
RULE_WORDS = r"must be|must not be|unknown start method|not understood|too large|applies to the"


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except (ValueError, TypeError) as e:
        return e


def _check(valid: bool, got: Any, want: Any, tiny_limit: bool = False) -> None:
    if valid:
        if tiny_limit and isinstance(got, list):
            # A valid limit too short for the item: the item's TaskTimeout, in place.
            got = [want[i] if isinstance(g, pk.TaskTimeout) else g for i, g in enumerate(got)]
        assert not isinstance(got, ValueError | TypeError), repr(got)
        assert got == want
    else:
        assert isinstance(got, ValueError | TypeError), repr(got)
        assert re.search(RULE_WORDS, str(got)), str(got)


MAP_OPTIONS: dict[str, Callable[[Any], bool]] = {
    "workers": count_ok,
    "chunksize": count_ok,
    "timeout": limit_ok,
    "errors": lambda v: v in ("raise", "return"),
}


@pytest.mark.parametrize("entry", ["map", "imap", "starmap", "amap", "aimap", "astarmap"])
@pytest.mark.parametrize("option", MAP_OPTIONS)
@given(value=JUNK, backend=st.sampled_from(["serial", "thread"]))
def test_junk_options_to_a_mapping_call_work_or_are_refused_at_once(
    entry: str, option: str, value: Any, backend: str
) -> None:
    call = MAPPERS[entry]
    want = [3] if "star" in entry else [1, 4]
    # errors="return" where the option is another: a valid but tiny time limit
    # then shows as TaskTimeout in place, not as an exception of the call.
    options: dict[str, Any] = {option: value, "backend": backend}
    if option != "errors":
        options["errors"] = "return"
    got = _outcome(lambda: _run(call(**options)))
    tiny = option == "timeout" and limit_ok(value) and value is not None and value < 1
    _check(MAP_OPTIONS[option](value), got, want, tiny_limit=tiny)


@pytest.mark.parametrize("option", ["workers", "chunksize", "timeout", "idle_timeout"])
@given(value=JUNK)
def test_junk_options_to_a_pool_work_or_are_refused_at_once(option: str, value: Any) -> None:
    valid = limit_ok(value) if "timeout" in option else count_ok(value)

    def use() -> Any:
        with pk.Pool(backend="thread", **{option: value}) as pool:
            return pool.map(square, [1, 2], errors="return")

    _check(valid, _outcome(use), [1, 4], tiny_limit=option == "timeout" and valid)


@given(value=JUNK)
def test_junk_max_tasks_per_worker_is_checked_before_the_backend_refuses_it(value: Any) -> None:
    # Only the process backend takes it: a valid value is refused as not applicable
    # to the serial backend, an invalid one for what it is.
    got = _outcome(lambda: pk.Pool(1, backend="serial", max_tasks_per_worker=value))
    if value is None:
        assert isinstance(got, pk.Pool)
        got.shutdown()
    elif count_ok(value):
        assert isinstance(got, ValueError), repr(got)
        assert "applies to the 'process'" in str(got), got
    else:
        assert isinstance(got, ValueError | TypeError), repr(got)
        assert str(got).startswith("max_tasks_per_worker must be a positive int or None")


#: Blocking calls set up so that the wait is never needed: a valid timeout returns at once.
def _ready_calls() -> dict[str, tuple[Callable[[Any], Any], Any]]:
    def queue_get(t: Any) -> Any:
        q = pk.Queue[int]()
        q.put(7)
        return q.get(timeout=t)

    def queue_put(t: Any) -> Any:
        q = pk.Queue[int](maxsize=1)
        q.put(7, timeout=t)
        return q.get_nowait()

    def recv(t: Any) -> Any:
        a, b = pk.Pipe[int]()
        with a, b:
            b.send(7)
            return a.recv(timeout=t)

    def poll(t: Any) -> Any:
        a, b = pk.Pipe[int]()
        with a, b:
            b.send(7)
            return a.poll(t)

    def acquire(t: Any) -> Any:
        lock = pk.Lock()
        return lock.acquire(timeout=t)

    def hold(t: Any) -> Any:
        sem = pk.Semaphore(2)
        with sem.hold(timeout=t):
            return sem.get_value()

    def event(t: Any) -> Any:
        e = pk.Event()
        e.set()
        return e.wait(t)

    def lock_default(t: Any) -> Any:
        lock = pk.RLock(timeout=t)
        with lock:
            return True

    return {
        "Queue.get": (queue_get, 7),
        "Queue.put": (queue_put, 7),
        "Connection.recv": (recv, 7),
        "Connection.poll": (poll, True),
        "Lock.acquire": (acquire, True),
        "Semaphore.hold": (hold, 1),
        "Event.wait": (event, True),
        "RLock(timeout=)": (lock_default, True),
    }


READY: dict[str, tuple[Callable[[Any], Any], Any]] = _ready_calls()


@pytest.mark.parametrize("name", READY)
@given(value=JUNK)
def test_junk_timeouts_to_a_blocking_call_work_or_are_refused_at_once(
    name: str, value: Any
) -> None:
    call, want = READY[name]
    valid = wait_ok(value) or (name == "Lock.acquire" and value == -1)  # the stdlib's "no limit"
    _check(valid, _outcome(lambda: call(value)), want)


@given(value=JUNK)
def test_junk_maxsize_to_a_queue_works_or_is_refused_at_once(value: Any) -> None:
    def use() -> Any:
        q = pk.Queue[int](value)
        q.put(3)
        return q.get(timeout=1)

    _check(_is_int(value) and 0 <= value <= WORD_MAX, _outcome(use), 3)


@given(value=JUNK)
def test_junk_shape_to_a_shared_array_works_or_is_refused_at_once(value: Any) -> None:
    pytest.importorskip("numpy")
    dims = value if isinstance(value, list) else [value]
    small = all(_is_int(n) and 0 <= n <= 4 for n in dims)
    fits = all(_is_int(n) and n >= 0 for n in dims) and math.prod(dims) * 8 <= 2**63 - 1
    if fits and not small:
        return  # a valid shape too big for this machine's /dev/shm: OSError, not our point

    def use() -> Any:
        with pk.SharedArray.zeros(tuple(dims) if isinstance(value, list) else value) as sa:
            return sa.array.shape

    _check(small, _outcome(use), tuple(dims))


PROCESS_RULES: dict[str, Callable[[Any], bool]] = {
    "target": callable,
    # Any iterable is the arguments (a string's characters, as in the stdlib).
    "args": lambda v: isinstance(v, str | list),
    # A mapping, or an iterable of pairs: of the junk, only the empty ones.
    "kwargs": lambda v: v is None or (isinstance(v, str | list) and len(v) == 0),
    "name": lambda v: v is None or isinstance(v, str),
    "daemon": lambda v: v is None or isinstance(v, bool),
}


@given(value=JUNK, option=st.sampled_from(sorted(PROCESS_RULES)))
def test_junk_to_a_process_is_refused_at_once_or_makes_one(option: str, value: Any) -> None:
    before = _children()
    options = {"target": square, "args": (2,), option: value}
    got = _outcome(lambda: pk.Process(**options))
    if PROCESS_RULES[option](value):
        assert isinstance(got, pk.Process), repr(got)  # made, not started
    else:
        assert isinstance(got, ValueError | TypeError), repr(got)
        assert re.search(RULE_WORDS, str(got)), str(got)
    assert _children() <= before


NAMES = {
    "context": ("fork", "forkserver", "spawn"),
    "backend": ("serial", "thread"),
    "errors": ("raise", "return"),
    "abandoned": ("raise", "recover"),
}


@given(value=JUNK, option=st.sampled_from(sorted(NAMES)))
def test_junk_names_are_refused_unless_they_are_the_documented_ones(
    option: str, value: Any
) -> None:
    if value is None or (option == "backend" and value in ("process", "dask")):
        return  # the default (a process pool), or a cluster: not junk
    want: Any = [1]
    if option == "context":
        want = "made"
        got = _outcome(lambda: pk.Lock(context=value) and "made")
    elif option == "abandoned":
        want = True
        got = _outcome(lambda: pk.Lock(abandoned=value).acquire(timeout=0))
    elif option == "backend":
        got = _outcome(lambda: pk.map(square, [1], backend=value))
    else:
        got = _outcome(lambda: pk.map(square, [1], backend="serial", errors=value))
    _check(value in NAMES[option], got, want)


def test_junk_checks_leave_no_thread_running() -> None:
    # The thread pools the properties made are the one-shot calls' kept pools:
    # pk.shutdown() (the leak guard calls it too) releases them all.
    pk.shutdown()
    assert [t for t in threading.enumerate() if t.name.startswith("parkit-thread")] == []
