"""What editors infer for the public API (read by mypy, not run by pytest)."""

from __future__ import annotations

import multiprocessing.context
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Future
from typing import Any, Literal, assert_type

import parkit
import parkit.backends


def number(x: int) -> float:
    return x / 2


def text() -> str:
    return "x"


def check_process() -> None:
    p = parkit.Process(number, (1,))
    assert_type(p, parkit.Process[float])
    assert_type(p.result(), float)
    assert_type(p.result(timeout=1.5), float)
    assert_type(p.exitcode, int | None)
    assert_type(p.pid, int | None)
    assert_type(p.join(1), None)
    with parkit.Process(text) as q:
        assert_type(q, parkit.Process[str])


def check_run() -> None:
    assert_type(parkit.run(number, 1), float)
    assert_type(parkit.run(text, timeout=2, context="spawn"), str)
    assert_type(parkit.run(lambda: [1], context=None), list[int])


def check_context() -> None:
    assert_type(parkit.default_context(), multiprocessing.context.BaseContext)


def check_errors(e: parkit.WorkerCrashed, t: parkit.TaskTimeout, w: parkit.TooManyWaiters) -> None:
    assert_type(e.exitcode, int | None)
    assert_type(e.item_index, int | None)
    assert_type(t.timeout, float)
    assert_type(w.limit, int)


def pair(a: int, b: str) -> bytes:
    return b"x" * a + b.encode()


def check_one_shot_calls(errors: Literal["raise", "return"]) -> None:
    assert_type(parkit.map(number, [1, 2]), list[float])
    assert_type(parkit.map(number, range(3), errors="raise", chunksize=2), list[float])
    assert_type(parkit.map(number, [1], errors="return"), list[float | BaseException])
    assert_type(parkit.map(number, [1], errors=errors), list[float | BaseException])
    assert_type(parkit.imap(number, iter([1])), Iterator[float])
    assert_type(
        parkit.imap(number, [1], ordered=False, errors="return"), Iterator[float | BaseException]
    )
    assert_type(parkit.starmap(pair, [(1, "a")]), list[bytes])
    assert_type(parkit.starmap(pair, [(1, "a")], errors="return"), list[bytes | BaseException])
    assert_type(parkit.map(lambda x: f"{x}", [1], backend="thread"), list[str])
    assert_type(parkit.shutdown(), None)
    # Only the backends that exist are in the type.
    parkit.map(number, [1], backend="dask")
    parkit.map(number, [1], backend="ray")  # type: ignore[call-overload]


async def check_async_calls(errors: Literal["raise", "return"]) -> None:
    # The asyncio twins infer what their blocking twins do.
    assert_type(await parkit.amap(number, [1, 2]), list[float])
    assert_type(await parkit.amap(number, [1], errors="return"), list[float | BaseException])
    assert_type(await parkit.amap(number, [1], errors=errors), list[float | BaseException])
    assert_type(await parkit.astarmap(pair, [(1, "a")]), list[bytes])
    assert_type(
        await parkit.astarmap(pair, [(1, "a")], errors="return"), list[bytes | BaseException]
    )
    assert_type(parkit.aimap(number, iter([1])), AsyncGenerator[float, None])
    assert_type(
        parkit.aimap(number, [1], ordered=False, errors="return"),
        AsyncGenerator[float | BaseException, None],
    )
    async for r in parkit.aimap(number, [1], workers=2, context="spawn"):
        assert_type(r, float)
    with parkit.Pool(2, timeout=3.0) as pool:
        assert_type(await pool.amap(number, [1]), list[float])
        assert_type(await pool.amap(number, [1], errors="return"), list[float | BaseException])
        assert_type(await pool.astarmap(pair, [(1, "a")]), list[bytes])
        assert_type(pool.aimap(number, [1]), AsyncGenerator[float, None])
        assert_type(await pool.asubmit(pair, 1, "a"), bytes)
        assert_type(await pool.asubmit(pair, 1, b="a"), bytes)
        await pool.asubmit(pair, "wrong", "a")  # type: ignore[arg-type]
    await parkit.amap(number, [1], backend="ray")  # type: ignore[call-overload]


def check_backends() -> None:
    # backend= takes a backend object: the shipped classes and anything that
    # implements the protocol.
    assert_type(parkit.map(number, [1], backend=parkit.backends.Thread(2)), list[float])
    assert_type(parkit.map(number, [1], backend=parkit.backends.Serial()), list[float])
    backend: parkit.backends.Backend = parkit.backends.Process(2, "spawn")
    with parkit.Pool(backend=backend) as pool:
        assert_type(pool.backend, parkit.backends.Backend)
        assert_type(pool.backend.shares_memory, bool)
        assert_type(pool.backend.stats(), parkit.PoolStats)


def check_pool() -> None:
    with parkit.Pool(2, context="spawn", timeout=3.0) as pool:
        assert_type(pool, parkit.Pool)
        assert_type(pool.map(number, [1]), list[float])
        assert_type(pool.map(number, [1], errors="return"), list[float | BaseException])
        assert_type(pool.imap(number, [1]), Iterator[float])
        assert_type(pool.starmap(pair, [(1, "a")]), list[bytes])
        assert_type(pool.submit(pair, 1, "a"), Future[bytes])
        assert_type(pool.submit(pair, 1, b="a"), Future[bytes])
        assert_type(pool.stats(), parkit.PoolStats)
        assert_type(pool.stats().busy, tuple[float, ...])
        pool.submit(pair, "wrong", "a")  # type: ignore[arg-type]


def check_executor() -> None:
    with parkit.ProcessPoolExecutor(max_workers=2) as ex:
        assert_type(ex.submit(number, 1), Future[float])
        assert_type(ex.map(number, [1, 2], timeout=1.0), Iterator[float])
        assert_type(ex.map(pair, [1], ["a"]), Iterator[bytes])


def check_shared_array() -> None:
    with parkit.SharedArray.zeros((2, 3), dtype="f8") as sa:
        assert_type(sa, parkit.SharedArray)
        assert_type(sa.shape, tuple[int, ...])
        assert_type(sa.nbytes, int)
    assert_type(parkit.SharedArray.copy_of([1, 2]), parkit.SharedArray)


def check_queue() -> None:
    q = parkit.Queue[int](maxsize=3)
    assert_type(q, parkit.Queue[int])
    assert_type(q.get(timeout=1.0), int)
    assert_type(q.get_nowait(), int)
    assert_type(q.put(1, timeout=1.0), None)
    assert_type(list(q), list[int])
    assert_type(q.qsize(), int)
    assert_type(q.statistics().size, int)
    q.put("wrong")  # type: ignore[arg-type]


def check_locks() -> None:
    lock = parkit.Lock(timeout=2.0)
    assert_type(lock.acquire(timeout=1.0), bool)
    assert_type(lock.statistics().holder_pid, int | None)
    with lock.hold(timeout=1.0):
        pass
    sem = parkit.BoundedSemaphore(2, abandoned="recover")
    assert_type(sem.acquire(block=False), bool)
    assert_type(sem.statistics().holder_pids, tuple[int, ...])
    cond = parkit.Condition(parkit.RLock())
    with cond:
        assert_type(cond.wait(1.0), bool)
        assert_type(cond.wait_for(lambda: 3, timeout=1.0), int)
    assert_type(parkit.Event().wait(1.0), bool)
    assert_type(parkit.Barrier(2).wait(1.0), int)
    parkit.Lock(abandoned="ignore")  # type: ignore[arg-type]


def check_context_on_shared_objects() -> None:
    fork = multiprocessing.get_context("fork")
    assert_type(parkit.Lock(timeout=0.5, context="forkserver").start_method, str)
    assert_type(parkit.RLock(context=fork).start_method, str)
    assert_type(parkit.Semaphore(2, context=None).start_method, str)
    assert_type(parkit.BoundedSemaphore(context="spawn").start_method, str)
    assert_type(parkit.Condition(context="spawn").start_method, str)
    assert_type(parkit.Event(context=fork).start_method, str)
    assert_type(parkit.Barrier(2, context="fork").start_method, str)
    assert_type(parkit.Queue[int](context="spawn").start_method, str)
    assert_type(parkit.Pipe[int](context="spawn")[0].start_method, str)
    assert_type(parkit.SharedArray.zeros(3, context="spawn").start_method, str)
    assert_type(parkit.SharedArray.copy_of([1], context=fork).start_method, str)
    parkit.Event(context=3)  # type: ignore[arg-type]


def check_pipe() -> None:
    a, b = parkit.Pipe[int]()
    assert_type(parkit.Pipe[int](), tuple[parkit.Connection[int], parkit.Connection[int]])
    assert_type(parkit.Pipe[str](duplex=False, context="spawn")[0], parkit.Connection[str])
    assert_type(parkit.Pipe(), tuple[parkit.Connection[Any], parkit.Connection[Any]])
    assert_type(a.recv(), int)
    assert_type(a.recv(timeout=1.5), int)
    assert_type(a.poll(), bool)
    assert_type(a.send(1), None)
    assert_type(b.recv_bytes(), bytes)
    assert_type(b.closed, bool)
    with a as c:
        assert_type(c, parkit.Connection[int])
    a.send("wrong")  # type: ignore[arg-type]


class Counter:
    def bump(self) -> int:
        return 1


def check_manager() -> None:
    from multiprocessing.managers import DictProxy, ListProxy, ValueProxy

    with parkit.Manager(types=[Counter]) as m:
        assert_type(m, parkit.Manager)
        assert_type(m.dict(), DictProxy[Any, Any])
        assert_type(m.dict({"a": 1}), DictProxy[str, int])
        assert_type(m.list([1.5]), ListProxy[float])
        assert_type(m.Value(int, 3), ValueProxy[int])
        assert_type(m.Value(int, 3).value, int)
        assert_type(m.Lock().acquire(timeout=1), bool)
        assert_type(m.create(Counter).bump(), int)
        assert_type(m.authkey, bytes)
    assert_type(parkit.Manager.connect(("127.0.0.1", 5000), authkey=b"k" * 32), parkit.Manager)


def check_values() -> None:
    v = parkit.Value(int, 0)
    assert_type(v, parkit.Value[int])
    assert_type(v.value, int)
    assert_type(v.add(1), int)
    assert_type(parkit.Value(float).update(lambda x: x * 2), float)
    assert_type(parkit.Value("i", 0), parkit.Value[Any])
    a = parkit.Array(float, 3)
    assert_type(a[0], float)
    assert_type(a[1:], list[float])
    assert_type(a.tolist(), list[float])
    assert_type(a.get_lock(), parkit.Lock | parkit.RLock)
    parkit.Value(str, "x").add("y")  # type: ignore[misc, call-overload]
