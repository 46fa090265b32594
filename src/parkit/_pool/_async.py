"""The asyncio twins: ``parkit.amap``/``aimap``/``astarmap`` and the ``Pool.a*`` methods.

They run the mapping layer's core (:func:`parkit._pool._mapping.map_core`),
the same one ``map``/``imap`` run, so the options and semantics are those of the
blocking calls, and a cancelled task does what Ctrl-C does to a blocking call:
the work not started is dropped and the running items are stopped where the
backend can (:meth:`Backend.interrupt`). Two drivers wait for the finished
batch futures without blocking the loop:

* ``aimap`` streams: the futures' done callbacks (in the backend's threads)
  hand each finished batch to the loop with ``call_soon_threadsafe``, and the
  core runs on the loop's thread (pulling the input, pickling the function,
  and with ``backend="serial"`` running the items there);
* ``amap``/``astarmap`` need only the whole list, so the core runs in a
  driver thread under the blocking driver, and the loop is woken once, with
  the list: a wake-up of the loop per batch cost about 30 µs each, 15% of an
  8-item call on a warm pool (docs/performance.md). The driver threads are
  kept for reuse and exit after :data:`_IDLE_S` idle. A ``progress``
  callable keeps the loop driver, so that it is called on the loop's thread.

This module imports asyncio; ``import parkit`` does not load it (it is loaded
on first use of an async call).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from concurrent.futures import Future
from typing import Any, Literal, TypeAlias, TypeVar, overload

from .._backends._batch import BatchResult, Call
from .._backends._protocol import Backend
from .._backends._registry import BackendLike
from .._core import _context, _platform
from ._default import _backend_for
from ._mapping import Core, Errors, Progress, _drive, map_core

__all__ = [
    "aimap", "amap", "astarmap", "await_item", "close_pool", "gather", "gather_list", "iterate",
    "off_loop", "start",
]  # fmt: skip

T = TypeVar("T")
R = TypeVar("R")


class _Arrivals:
    """Finished batch futures, handed from the backend's threads to the loop.

    A burst of batches finishing together wakes the loop once: a wake-up is
    scheduled only when none is pending (each costs the loop an iteration).
    """

    __slots__ = ("_loop", "_ready", "_signalled", "_waiter")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: deque[Future[BatchResult]] = deque()  # appended from any thread
        self._signalled = False  # a _wake is scheduled and has not run yet
        self._waiter: asyncio.Future[None] | None = None

    def notify(self, future: Future[BatchResult]) -> None:
        """A batch future's done callback; any thread."""
        loop = self._loop
        assert loop is not None, "the core submits only once the driver has a loop"
        # Append before looking at the flag: a _wake that is pending (flag set)
        # runs after this append, and get() finds the future.
        self._ready.append(future)
        if self._signalled:
            return
        self._signalled = True
        # A closed loop raises RuntimeError: nobody awaits this batch any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self._signalled = False  # first: a later append schedules a new wake
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Future[BatchResult]:
        while not self._ready:
            assert self._loop is not None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._ready.popleft()


class _AsyncRun:
    """Drives one map call's core on the running loop, a segment at a time."""

    __slots__ = ("_arrivals", "_core")

    def __init__(self, core: Core, arrivals: _Arrivals) -> None:
        self._core = core
        self._arrivals = arrivals

    async def segment(self) -> list[Any] | None:
        """The next segment of results; ``None`` at the end."""
        arrivals, core = self._arrivals, self._core
        if arrivals._loop is None:
            # Bound here, not when the call was made: aimap() may be called
            # outside the coroutine that iterates it.
            arrivals._loop = asyncio.get_running_loop()
        try:
            step = next(core)  # starts the core, or resumes it after a segment
            while step is None:
                try:
                    finished = await arrivals.get()
                except BaseException as e:
                    # Cancelled (or interrupted) while waiting: the core stops
                    # the call's work, then re-raises.
                    step = core.throw(e)
                else:
                    step = core.send(finished)
            return step
        except StopIteration:
            return None

    def close(self) -> None:
        self._core.close()  # the consumer stopped early: the core drops the rest


def start(
    backend: Backend,
    fn: Callable[..., Any],
    iterable: Iterable[Any],
    *,
    star: bool,
    chunksize: int | None,
    timeout: float | None,
    errors: Errors,
    ordered: bool,
    progress: Progress,
) -> _AsyncRun:
    """Check the options (raising now) and set up one call's async driver."""
    arrivals = _Arrivals()
    core = map_core(
        backend, fn, iterable, star=star, chunksize=chunksize, timeout=timeout,
        errors=errors, ordered=ordered, progress=progress, notify=arrivals.notify,
        interrupting=(asyncio.CancelledError,),
    )  # fmt: skip
    return _AsyncRun(core, arrivals)


async def gather(run: _AsyncRun) -> list[Any]:
    """Every result of ``run``, in one list (``amap``, ``astarmap``)."""
    out: list[Any] = []
    try:
        while (segment := await run.segment()) is not None:
            out.extend(segment)
    finally:
        run.close()
    return out


async def iterate(run: _AsyncRun) -> AsyncGenerator[Any, None]:
    """The results of ``run`` one by one (``aimap``)."""
    try:
        while (segment := await run.segment()) is not None:
            for value in segment:
                yield value
    finally:
        # Reached when the consumer stops early too (aclose(), or the loop
        # finalizing an abandoned async generator).
        run.close()


# ------------------------------------------------- amap/astarmap: one wake-up per call

#: A driver thread with no call to drive for this long exits.
_IDLE_S = 0.25

_Job: TypeAlias = "Callable[[], None] | None"


class _Drivers:
    """Threads that run whole ``amap`` calls under the blocking driver.

    Kept for reuse (a thread start costs about as much as the wake-ups it
    saves); one exits after :data:`_IDLE_S` without a call, so none outlives
    its use by long. Concurrent calls each get a thread of their own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Job]] = []  # idle drivers' inboxes

    def run(self, job: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is not None:
            inbox.put(job)
            return
        inbox = queue.SimpleQueue()
        inbox.put(job)
        threading.Thread(
            target=self._serve, args=(inbox,), name="parkit-async-driver", daemon=True
        ).start()

    def _serve(self, inbox: queue.SimpleQueue[_Job]) -> None:
        while True:
            try:
                job = inbox.get(timeout=_IDLE_S)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                # Taken just now by run(), which is putting a job in.
                job = inbox.get()
            if job is None:
                return
            job()
            del job  # an idle driver holds nothing of the call (its input, say)
            with self._lock:
                self._idle.append(inbox)

    def forget(self) -> None:
        """In a forked child: the parent's driver threads are not here."""
        self._lock = threading.Lock()
        self._idle = []


_drivers = _Drivers()
_platform.after_fork_in_child(_drivers.forget)


class _Cancelled(Exception):
    """Raised in the driver thread when the awaiting task was cancelled."""


async def gather_list(
    backend: Backend,
    fn: Callable[..., Any],
    iterable: Iterable[Any],
    *,
    star: bool,
    chunksize: int | None,
    timeout: float | None,
    errors: Errors,
    progress: Progress,
) -> list[Any]:
    """Every result of one map call, in input order (``amap``, ``astarmap``).

    Bad options raise here, before anything is submitted.
    """
    if callable(progress):
        # A progress callable is called where the core runs: on the loop.
        return await gather(
            start(
                backend, fn, iterable, star=star, chunksize=chunksize, timeout=timeout,
                errors=errors, ordered=True, progress=progress,
            )
        )  # fmt: skip
    done_q: queue.SimpleQueue[Future[BatchResult] | None] = queue.SimpleQueue()
    core = map_core(
        backend, fn, iterable, star=star, chunksize=chunksize, timeout=timeout,
        errors=errors, ordered=True, progress=progress, notify=done_q.put,
        interrupting=(_Cancelled,),
    )  # fmt: skip

    def wait() -> Future[BatchResult]:
        finished = done_q.get()
        if finished is None:
            raise _Cancelled  # the core stops the call's work, then re-raises
        return finished

    # The first batches are submitted here, on the loop's thread (submitting
    # never blocks): they run while the driver thread wakes up to wait for them.
    def collect() -> list[Any]:
        out: list[Any] = []
        for segment in _drive(core, wait):
            out.extend(segment)
        return out

    # Cancelled: the driver interrupts the backend and ends; a cancelled amap
    # leaves nothing running once it has raised, as the loop driver does.
    return await off_loop(collect, lambda: done_q.put(None))


async def off_loop(fn: Callable[[], R], stop: Callable[[], object] | None = None) -> R:
    """``fn()``, run in a driver thread in a copy of the current context.

    Cancelled while ``fn`` runs: ``stop()`` (which must make ``fn`` end soon),
    then wait until ``fn`` has ended, however often cancelled again, and let the
    cancellation propagate; ``fn``'s own outcome is dropped. Without ``stop``
    the wait is for ``fn`` to end by itself.
    """
    loop = asyncio.get_running_loop()
    settled: asyncio.Future[R] = loop.create_future()
    # Touched on the loop's thread only (settle runs there): no lock.
    state: dict[str, Any] = {"ended": False, "waiter": None}
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        state["ended"] = True
        waiter = state["waiter"]
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if settled.done():
            return  # cancelled: nobody wants the outcome
        if error is not None:
            settled.set_exception(error)
        else:
            settled.set_result(result)

    def job() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = context.run(fn)
        except BaseException as e:  # handed to the awaiting task
            error = e
        # A closed loop raises RuntimeError: nobody awaits this call any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)
        del result, error  # no reference cycle through the traceback

    _drivers.run(job)
    try:
        # Awaited directly, not through asyncio.shield: a shield costs the
        # loop one more iteration per call, about 5% of an 8-item amap.
        return await settled
    except asyncio.CancelledError:
        if not state["ended"]:
            if stop is not None:
                stop()
            waiter = state["waiter"] = loop.create_future()
            while not waiter.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([waiter])  # cancels nothing, raises nothing
        raise


async def close_pool(shutdown: Callable[[], None], terminate: Callable[[], None]) -> None:
    """``async with Pool``'s exit: ``shutdown()`` off the loop; cancelled, ``terminate()``."""
    await off_loop(shutdown, terminate)


async def await_item(backend: Backend, future: Future[Any], call: Call) -> Any:
    """Await ``future`` of a one-item ``call``; cancelled, stop it (``asubmit``)."""
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        # wrap_future has cancelled a task that had not started; one that
        # runs is stopped where the backend can.
        if not future.cancel():
            backend.interrupt(call)
        raise


@overload
async def amap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    workers: int | None = ...,
    backend: BackendLike | None = ...,
    context: _context.ContextLike = ...,
    chunksize: int | None = ...,
    timeout: float | None = ...,
    errors: Literal["raise"] = ...,
    progress: Progress = ...,
) -> list[R]: ...
@overload
async def amap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    workers: int | None = ...,
    backend: BackendLike | None = ...,
    context: _context.ContextLike = ...,
    chunksize: int | None = ...,
    timeout: float | None = ...,
    errors: Literal["return"],
    progress: Progress = ...,
) -> list[R | BaseException]: ...
@overload
async def amap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    workers: int | None = ...,
    backend: BackendLike | None = ...,
    context: _context.ContextLike = ...,
    chunksize: int | None = ...,
    timeout: float | None = ...,
    errors: Errors,
    progress: Progress = ...,
) -> list[R | BaseException]: ...
async def amap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    workers: int | None = None,
    backend: BackendLike | None = None,
    context: _context.ContextLike = None,
    chunksize: int | None = None,
    timeout: float | None = None,
    errors: Errors = "raise",
    progress: Progress = False,
) -> list[R] | list[R | BaseException]:
    """:func:`parkit.map` for asyncio: awaits the results without blocking the loop.

    Same options, results and exceptions as :func:`parkit.map`. Cancelling the
    awaiting task drops the items not started and stops the running ones where
    the backend can (the process backend does), then raises
    ``asyncio.CancelledError``. The input is pulled on the loop's thread.

    Args:
        fn: any callable, lambdas and closures included.
        iterable: the items, consumed lazily (a bounded number ahead).
        workers: how many; default: the CPUs this process may use.
        backend: ``"process"`` (default), ``"thread"``, ``"serial"``, ``"dask"`` or a
            backend object.
        context: start method (see :func:`parkit.default_context`).
        chunksize: items per batch; ``None`` adapts to how long items take.
        timeout: seconds per item: a longer item gets :class:`parkit.TaskTimeout`.
        errors: ``"raise"`` raises the lowest-index item's exception, as the serial loop
            would; ``"return"`` puts exceptions in the results.
        progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

    Returns:
        The results, in input order.

    Raises:
        BaseException: as :func:`parkit.map` raises.
        asyncio.CancelledError: the awaiting task was cancelled.
    """
    return await gather_list(
        _backend_for(backend, context, workers, chunksize, timeout, errors),
        fn, iterable, star=False,
        chunksize=chunksize, timeout=timeout, errors=errors, progress=progress,
    )  # fmt: skip


@overload
async def astarmap(
    fn: Callable[..., R],
    iterable: Iterable[Iterable[Any]],
    *,
    workers: int | None = ...,
    backend: BackendLike | None = ...,
    context: _context.ContextLike = ...,
    chunksize: int | None = ...,
    timeout: float | None = ...,
    errors: Literal["raise"] = ...,
    progress: Progress = ...,
) -> list[R]: ...
@overload
async def astarmap(
    fn: Callable[..., R],
    iterable: Iterable[Iterable[Any]],
    *,
    workers: int | None = ...,
    backend: BackendLike | None = ...,
    context: _context.ContextLike = ...,
    chunksize: int | None = ...,
    timeout: float | None = ...,
    errors: Literal["return"],
    progress: Progress = ...,
) -> list[R | BaseException]: ...
@overload
async def astarmap(
    fn: Callable[..., R],
    iterable: Iterable[Iterable[Any]],
    *,
    workers: int | None = ...,
    backend: BackendLike | None = ...,
    context: _context.ContextLike = ...,
    chunksize: int | None = ...,
    timeout: float | None = ...,
    errors: Errors,
    progress: Progress = ...,
) -> list[R | BaseException]: ...
async def astarmap(
    fn: Callable[..., R],
    iterable: Iterable[Iterable[Any]],
    *,
    workers: int | None = None,
    backend: BackendLike | None = None,
    context: _context.ContextLike = None,
    chunksize: int | None = None,
    timeout: float | None = None,
    errors: Errors = "raise",
    progress: Progress = False,
) -> list[R] | list[R | BaseException]:
    """:func:`parkit.starmap` for asyncio; see :func:`amap`.

    Args:
        fn: any callable, lambdas and closures included; called as ``fn(*args)``.
        iterable: argument tuples (any iterables), consumed lazily.
        workers: how many; default: the CPUs this process may use.
        backend: ``"process"`` (default), ``"thread"``, ``"serial"``, ``"dask"`` or a
            backend object.
        context: start method (see :func:`parkit.default_context`).
        chunksize: items per batch; ``None`` adapts to how long items take.
        timeout: seconds per item: a longer item gets :class:`parkit.TaskTimeout`.
        errors: ``"raise"`` raises the lowest-index item's exception, as the serial loop
            would; ``"return"`` puts exceptions in the results.
        progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

    Returns:
        The results, in input order.

    Raises:
        BaseException: as :func:`parkit.map` raises.
        asyncio.CancelledError: the awaiting task was cancelled.
    """
    return await gather_list(
        _backend_for(backend, context, workers, chunksize, timeout, errors),
        fn, iterable, star=True,
        chunksize=chunksize, timeout=timeout, errors=errors, progress=progress,
    )  # fmt: skip


@overload
def aimap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    ordered: bool = ...,
    workers: int | None = ...,
    backend: BackendLike | None = ...,
    context: _context.ContextLike = ...,
    chunksize: int | None = ...,
    timeout: float | None = ...,
    errors: Literal["raise"] = ...,
    progress: Progress = ...,
) -> AsyncGenerator[R, None]: ...
@overload
def aimap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    ordered: bool = ...,
    workers: int | None = ...,
    backend: BackendLike | None = ...,
    context: _context.ContextLike = ...,
    chunksize: int | None = ...,
    timeout: float | None = ...,
    errors: Literal["return"],
    progress: Progress = ...,
) -> AsyncGenerator[R | BaseException, None]: ...
@overload
def aimap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    ordered: bool = ...,
    workers: int | None = ...,
    backend: BackendLike | None = ...,
    context: _context.ContextLike = ...,
    chunksize: int | None = ...,
    timeout: float | None = ...,
    errors: Errors,
    progress: Progress = ...,
) -> AsyncGenerator[R | BaseException, None]: ...
def aimap(
    fn: Callable[[T], R],
    iterable: Iterable[T],
    *,
    ordered: bool = True,
    workers: int | None = None,
    backend: BackendLike | None = None,
    context: _context.ContextLike = None,
    chunksize: int | None = None,
    timeout: float | None = None,
    errors: Errors = "raise",
    progress: Progress = False,
) -> AsyncGenerator[R, None] | AsyncGenerator[R | BaseException, None]:
    """:func:`parkit.imap` for asyncio: ``async for r in parkit.aimap(fn, items)``.

    Same options and semantics as :func:`parkit.imap` (bad options raise at the
    call). Leaving the loop early drops the call's pending work once the
    iterator is closed: wrap it in ``contextlib.aclosing`` to close it at once.

    Args:
        fn: any callable, lambdas and closures included.
        iterable: the items, consumed lazily (a bounded number ahead).
        ordered: ``True`` yields in input order; ``False`` as results complete.
        workers: how many; default: the CPUs this process may use.
        backend: ``"process"`` (default), ``"thread"``, ``"serial"``, ``"dask"`` or a
            backend object.
        context: start method (see :func:`parkit.default_context`).
        chunksize: items per batch; ``None`` adapts to how long items take.
        timeout: seconds per item: a longer item gets :class:`parkit.TaskTimeout`.
        errors: ``"raise"`` raises the lowest-index item's exception, as the serial loop
            would; ``"return"`` puts exceptions in the results.
        progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

    Returns:
        An async generator of the results.

    Raises:
        BaseException: while iterating, as :func:`parkit.map` raises.
    """
    return iterate(
        start(
            _backend_for(backend, context, workers, chunksize, timeout, errors),
            fn, iterable, star=False,
            chunksize=chunksize, timeout=timeout, errors=errors, ordered=ordered,
            progress=progress,
        )
    )  # fmt: skip
