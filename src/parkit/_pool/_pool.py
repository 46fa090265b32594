"""``parkit.Pool``: the mapping layer on a backend that the caller owns."""

from __future__ import annotations

import enum
import functools
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from types import TracebackType

from .._backends._batch import Batch, Call, new_call_id
from .._backends._registry import BackendLike, make_backend, refuse_workers
from .._core._checks import check_bool, check_callable, check_int, time_limit, to_tuple
from .._core._context import ContextLike
from .._core._cpus import check_cpus, usable_cpus
from ._mapping import Errors, Progress, check_options, map_list, run_map

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    import pstats

    # Loaded by the first submit() (_submit.py): concurrent.futures imports logging.
    from concurrent.futures import Future
    from typing import Any, Literal, ParamSpec, TypeVar, overload

    from .._backends._protocol import Backend

    # Loaded by stats(): a dataclass, and dataclasses costs ~5 ms (_stats.py).
    from .._backends._stats import Insights, PoolStats

__all__ = ["Pool"]

if TYPE_CHECKING:
    T = TypeVar("T")
    R = TypeVar("R")
    P = ParamSpec("P")


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "<the pool's setting>"


UNSET: Literal[_Unset.UNSET] = _Unset.UNSET


class Pool:
    """Workers that run functions over data; SPEC §1-§2.

    Args:
        workers: how many; default: the CPUs this process may use.
        backend: ``"process"`` (default), ``"thread"`` or ``"serial"``, or a
            backend object.
        context: start method for the process backend (see
            :func:`parkit.default_context`).
        initializer: called as ``initializer(*initargs)`` in each worker process
            when it starts. If it raises, calls fail with
            :class:`parkit.PoolBroken` chaining its exception.
        initargs: arguments for ``initializer``.
        max_tasks_per_worker: a worker process is replaced after this many
            items (leaky libraries).
        chunksize: default items per batch; ``None`` adapts to how long items
            take.
        timeout: default seconds per item.
        idle_timeout: workers exit after this many seconds without work and
            start again when needed; ``None`` keeps them until shutdown.
        insights: the workers count how their time splits between the
            function, (un)pickling, sending and waiting (:meth:`insights`);
            process backend only.
        profile: the workers run the function under ``cProfile``
            (:meth:`profile`); process backend only.
        cpus: the CPU numbers every worker process may run on (its
            affinity), set first thing in the worker, before the initializer
            and any task. With ``cpus`` and no ``workers``, the pool has
            ``len(cpus)`` workers. Process backend only.
        worker_logging: forward what the workers log with :mod:`logging` to
            this process's handlers, with this process's levels (if it set up
            logging; docs/observability.md). ``False`` if the initializer
            configures logging in the workers itself.

    Raises:
        ValueError: an option has a bad value.
        TypeError: an option has the wrong type.
        NotImplementedError: ``cpus`` on a platform without
            ``os.sched_setaffinity``.
        SerializationError: ``initializer``/``initargs`` can't be pickled.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        backend: BackendLike = "process",
        context: ContextLike = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        chunksize: int | None = None,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        insights: bool = False,
        profile: bool = False,
        cpus: Iterable[int] | None = None,
        worker_logging: bool = True,
    ) -> None:
        check_options(chunksize=chunksize, timeout=timeout, errors="raise", workers=workers)
        refuse_workers(backend, workers)
        if initializer is not None:
            check_callable(initializer, "initializer")
        initargs = to_tuple(initargs, "initargs")
        check_int(max_tasks_per_worker, "max_tasks_per_worker", none=True)
        time_limit(idle_timeout, "idle_timeout")
        for flag, value in (
            ("insights", insights),
            ("profile", profile),
            ("worker_logging", worker_logging),
        ):
            check_bool(value, flag)
        cpu_set = check_cpus(cpus)
        if workers is None:
            # Pinned to n CPUs, more than n workers would only take turns.
            workers = len(cpu_set) if cpu_set is not None else usable_cpus()
        self._workers = workers
        self._backend = make_backend(
            backend,
            self._workers,
            context=context,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=max_tasks_per_worker,
            idle_timeout=idle_timeout,
            # None, not False: the other backends refuse any value (_registry.py).
            insights=insights or None,
            profile=profile or None,
            cpus=cpu_set,
            worker_logging=worker_logging,
        )
        if backend == "dask" or not isinstance(backend, str):
            self._workers = self._backend.workers  # a cluster's threads, an object's own
        self._chunksize = chunksize
        self._timeout = timeout
        self._closed = False
        if isinstance(backend, str):
            # Dropped without shutdown(): its workers go once their work is done.
            # (A backend object the caller passed is the caller's to stop.)
            weakref.finalize(self, self._backend.shutdown, wait=False)

    @property
    def workers(self) -> int:
        """The number of workers."""
        return self._workers

    @property
    def backend(self) -> Backend:
        """The backend object the pool runs on."""
        return self._backend

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<parkit.Pool workers={self._workers} backend={type(self._backend).__name__} {state}>"
        )

    def _options(
        self, chunksize: int | _Unset | None, timeout: float | _Unset | None
    ) -> tuple[int | None, float | None]:
        if self._closed:
            raise RuntimeError("cannot use a pool after shutdown() or terminate()")
        return (
            self._chunksize if chunksize is UNSET else chunksize,
            self._timeout if timeout is UNSET else timeout,
        )

    if TYPE_CHECKING:

        @overload
        def map(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["raise"] = ...,
            progress: Progress = ...,
        ) -> list[R]: ...
        @overload
        def map(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["return"],
            progress: Progress = ...,
        ) -> list[R | BaseException]: ...
        @overload
        def map(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Errors,
            progress: Progress = ...,
        ) -> list[R | BaseException]: ...

    def map(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        *,
        chunksize: int | _Unset | None = UNSET,
        timeout: float | _Unset | None = UNSET,
        errors: Errors = "raise",
        progress: Progress = False,
    ) -> list[R] | list[R | BaseException]:
        """``fn`` over ``iterable``: a list in input order (see :func:`parkit.map`).

        Args:
            fn: any callable, lambdas and closures included.
            iterable: the items, consumed lazily (a bounded number ahead).
            chunksize: items per batch; default: the pool's ``chunksize``.
            timeout: seconds per item; default: the pool's ``timeout``.
            errors: ``"raise"`` raises the lowest-index item's exception, as the serial loop
                would; ``"return"`` puts exceptions in the results.
            progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

        Returns:
            The results, in input order.

        Raises:
            BaseException: as :func:`parkit.map` raises.
            RuntimeError: the pool was shut down.
        """
        size, limit = self._options(chunksize, timeout)
        return map_list(
            self._backend,
            fn,
            iterable,
            star=False,
            chunksize=size,
            timeout=limit,
            errors=errors,
            progress=progress,
        )

    if TYPE_CHECKING:

        @overload
        def starmap(
            self,
            fn: Callable[..., R],
            iterable: Iterable[Iterable[Any]],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["raise"] = ...,
            progress: Progress = ...,
        ) -> list[R]: ...
        @overload
        def starmap(
            self,
            fn: Callable[..., R],
            iterable: Iterable[Iterable[Any]],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["return"],
            progress: Progress = ...,
        ) -> list[R | BaseException]: ...
        @overload
        def starmap(
            self,
            fn: Callable[..., R],
            iterable: Iterable[Iterable[Any]],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Errors,
            progress: Progress = ...,
        ) -> list[R | BaseException]: ...

    def starmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        *,
        chunksize: int | _Unset | None = UNSET,
        timeout: float | _Unset | None = UNSET,
        errors: Errors = "raise",
        progress: Progress = False,
    ) -> list[R] | list[R | BaseException]:
        """``fn(*args)`` for each ``args`` of ``iterable``, as a list in input order.

        Args:
            fn: any callable, lambdas and closures included; called as ``fn(*args)``.
            iterable: argument tuples (any iterables), consumed lazily.
            chunksize: items per batch; default: the pool's ``chunksize``.
            timeout: seconds per item; default: the pool's ``timeout``.
            errors: ``"raise"`` raises the lowest-index item's exception, as the serial loop
                would; ``"return"`` puts exceptions in the results.
            progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

        Returns:
            The results, in input order.

        Raises:
            BaseException: as :func:`parkit.map` raises.
            RuntimeError: the pool was shut down.
        """
        size, limit = self._options(chunksize, timeout)
        return map_list(
            self._backend,
            fn,
            iterable,
            star=True,
            chunksize=size,
            timeout=limit,
            errors=errors,
            progress=progress,
        )

    if TYPE_CHECKING:

        @overload
        def imap(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            ordered: bool = ...,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["raise"] = ...,
            progress: Progress = ...,
        ) -> Iterator[R]: ...
        @overload
        def imap(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            ordered: bool = ...,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["return"],
            progress: Progress = ...,
        ) -> Iterator[R | BaseException]: ...
        @overload
        def imap(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            ordered: bool = ...,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Errors,
            progress: Progress = ...,
        ) -> Iterator[R | BaseException]: ...

    def imap(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        *,
        ordered: bool = True,
        chunksize: int | _Unset | None = UNSET,
        timeout: float | _Unset | None = UNSET,
        errors: Errors = "raise",
        progress: Progress = False,
    ) -> Iterator[R] | Iterator[R | BaseException]:
        """Lazily yield ``fn(item)``; see :func:`parkit.imap`.

        Args:
            fn: any callable, lambdas and closures included.
            iterable: the items, consumed lazily (a bounded number ahead).
            ordered: ``True`` yields in input order; ``False`` as results complete.
            chunksize: items per batch; default: the pool's ``chunksize``.
            timeout: seconds per item; default: the pool's ``timeout``.
            errors: ``"raise"`` raises the lowest-index item's exception, as the serial loop
                would; ``"return"`` puts exceptions in the results.
            progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

        Returns:
            An iterator of the results.

        Raises:
            BaseException: while iterating, as :func:`parkit.map` raises.
            RuntimeError: the pool was shut down.
        """
        size, limit = self._options(chunksize, timeout)
        segments = run_map(
            self._backend,
            fn,
            iterable,
            star=False,
            chunksize=size,
            timeout=limit,
            errors=errors,
            ordered=ordered,
            progress=progress,
        )
        return _flatten(segments)

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run ``fn(*args, **kwargs)`` in a worker; its future.

        The future's ``result()`` returns the value or raises what ``fn``
        raised (with the worker's traceback), :class:`parkit.WorkerCrashed`,
        :class:`parkit.TaskTimeout` (the pool's ``timeout``) or
        :class:`parkit.SerializationError`. ``cancel()`` succeeds until the
        task is sent to a worker.

        Args:
            fn: any callable, lambdas and closures included.
            *args: its positional arguments.
            **kwargs: its keyword arguments.

        Returns:
            A ``concurrent.futures.Future`` of the result.

        Raises:
            RuntimeError: the pool was shut down.
            TypeError: ``fn`` is not callable.
        """
        if self._closed:
            raise RuntimeError("cannot use a pool after shutdown() or terminate()")
        return submit_call(self._backend, fn, args, kwargs, self._timeout)

    # ------------------------------------------------------------------ asyncio
    # The twins of map/starmap/imap/submit for asyncio (see parkit._pool._async,
    # imported on first use: ``import parkit`` does not load asyncio).

    if TYPE_CHECKING:

        @overload
        async def amap(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["raise"] = ...,
            progress: Progress = ...,
        ) -> list[R]: ...
        @overload
        async def amap(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["return"],
            progress: Progress = ...,
        ) -> list[R | BaseException]: ...
        @overload
        async def amap(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Errors,
            progress: Progress = ...,
        ) -> list[R | BaseException]: ...

    async def amap(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        *,
        chunksize: int | _Unset | None = UNSET,
        timeout: float | _Unset | None = UNSET,
        errors: Errors = "raise",
        progress: Progress = False,
    ) -> list[R] | list[R | BaseException]:
        """:meth:`map` for asyncio; see :func:`parkit.amap`.

        Args:
            fn: any callable, lambdas and closures included.
            iterable: the items, consumed lazily (a bounded number ahead).
            chunksize: items per batch; default: the pool's ``chunksize``.
            timeout: seconds per item; default: the pool's ``timeout``.
            errors: ``"raise"`` raises the lowest-index item's exception, as the serial loop
                would; ``"return"`` puts exceptions in the results.
            progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

        Returns:
            The results, in input order.

        Raises:
            BaseException: as :func:`parkit.map` raises.
            RuntimeError: the pool was shut down.
        """
        from ._async import gather_list  # noqa: PLC0415 - asyncio on first use

        size, limit = self._options(chunksize, timeout)
        return await gather_list(
            self._backend, fn, iterable, star=False, chunksize=size, timeout=limit,
            errors=errors, progress=progress,
        )  # fmt: skip

    if TYPE_CHECKING:

        @overload
        async def astarmap(
            self,
            fn: Callable[..., R],
            iterable: Iterable[Iterable[Any]],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["raise"] = ...,
            progress: Progress = ...,
        ) -> list[R]: ...
        @overload
        async def astarmap(
            self,
            fn: Callable[..., R],
            iterable: Iterable[Iterable[Any]],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["return"],
            progress: Progress = ...,
        ) -> list[R | BaseException]: ...
        @overload
        async def astarmap(
            self,
            fn: Callable[..., R],
            iterable: Iterable[Iterable[Any]],
            *,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Errors,
            progress: Progress = ...,
        ) -> list[R | BaseException]: ...

    async def astarmap(
        self,
        fn: Callable[..., R],
        iterable: Iterable[Iterable[Any]],
        *,
        chunksize: int | _Unset | None = UNSET,
        timeout: float | _Unset | None = UNSET,
        errors: Errors = "raise",
        progress: Progress = False,
    ) -> list[R] | list[R | BaseException]:
        """:meth:`starmap` for asyncio; see :func:`parkit.amap`.

        Args:
            fn: any callable, lambdas and closures included; called as ``fn(*args)``.
            iterable: argument tuples (any iterables), consumed lazily.
            chunksize: items per batch; default: the pool's ``chunksize``.
            timeout: seconds per item; default: the pool's ``timeout``.
            errors: ``"raise"`` raises the lowest-index item's exception, as the serial loop
                would; ``"return"`` puts exceptions in the results.
            progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

        Returns:
            The results, in input order.

        Raises:
            BaseException: as :func:`parkit.map` raises.
            RuntimeError: the pool was shut down.
        """
        from ._async import gather_list  # noqa: PLC0415 - asyncio on first use

        size, limit = self._options(chunksize, timeout)
        return await gather_list(
            self._backend, fn, iterable, star=True, chunksize=size, timeout=limit,
            errors=errors, progress=progress,
        )  # fmt: skip

    if TYPE_CHECKING:

        @overload
        def aimap(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            ordered: bool = ...,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["raise"] = ...,
            progress: Progress = ...,
        ) -> AsyncGenerator[R, None]: ...
        @overload
        def aimap(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            ordered: bool = ...,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Literal["return"],
            progress: Progress = ...,
        ) -> AsyncGenerator[R | BaseException, None]: ...
        @overload
        def aimap(
            self,
            fn: Callable[[T], R],
            iterable: Iterable[T],
            *,
            ordered: bool = ...,
            chunksize: int | _Unset | None = ...,
            timeout: float | _Unset | None = ...,
            errors: Errors,
            progress: Progress = ...,
        ) -> AsyncGenerator[R | BaseException, None]: ...

    def aimap(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        *,
        ordered: bool = True,
        chunksize: int | _Unset | None = UNSET,
        timeout: float | _Unset | None = UNSET,
        errors: Errors = "raise",
        progress: Progress = False,
    ) -> AsyncGenerator[R, None] | AsyncGenerator[R | BaseException, None]:
        """:meth:`imap` for asyncio: ``async for r in pool.aimap(fn, items)``.

        Args:
            fn: any callable, lambdas and closures included.
            iterable: the items, consumed lazily (a bounded number ahead).
            ordered: ``True`` yields in input order; ``False`` as results complete.
            chunksize: items per batch; default: the pool's ``chunksize``.
            timeout: seconds per item; default: the pool's ``timeout``.
            errors: ``"raise"`` raises the lowest-index item's exception, as the serial loop
                would; ``"return"`` puts exceptions in the results.
            progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

        Returns:
            An async generator of the results.

        Raises:
            BaseException: while iterating, as :func:`parkit.map` raises.
            RuntimeError: the pool was shut down.
        """
        from ._async import iterate, start  # noqa: PLC0415 - asyncio on first use

        size, limit = self._options(chunksize, timeout)
        return iterate(
            start(
                self._backend, fn, iterable, star=False, chunksize=size, timeout=limit,
                errors=errors, ordered=ordered, progress=progress,
            )
        )  # fmt: skip

    async def asubmit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` in a worker and await its result.

        Returns or raises what :meth:`submit`'s future would. Cancelling the
        awaiting task cancels the task if it has not started, and stops it
        where the backend can if it runs (the process backend replaces the
        worker); ``asyncio.CancelledError`` propagates.

        Args:
            fn: any callable, lambdas and closures included.
            *args: its positional arguments.
            **kwargs: its keyword arguments.

        Returns:
            What ``fn`` returned.

        Raises:
            BaseException: what ``fn`` raised, or a parkit error for the task
                (as :meth:`submit`'s future).
            RuntimeError: the pool was shut down.
            TypeError: ``fn`` is not callable.
        """
        from ._async import await_item  # noqa: PLC0415 - asyncio on first use

        if self._closed:
            raise RuntimeError("cannot use a pool after shutdown() or terminate()")
        future, call = submit_item(self._backend, fn, args, kwargs, self._timeout)
        result: R = await await_item(self._backend, future, call)
        return result

    def stats(self) -> PoolStats:
        """What the pool has done (process backend; zeros elsewhere).

        Returns:
            A :class:`parkit.PoolStats` snapshot.
        """
        return self._backend.stats()

    def insights(self) -> Insights:
        """How the workers' time has split so far (docs/observability.md).

        Cumulative since the pool started; ``pool.insights() - before`` is
        what happened since an earlier reading ``before`` (one call's share).
        The figures of a task are complete once its results have been
        received, but for the few microseconds of its send.

        Returns:
            A :class:`parkit.Insights` snapshot.

        Raises:
            RuntimeError: the pool was made without ``insights=True``.
        """
        insights = self._backend.stats().insights
        if insights is None:
            raise RuntimeError("this pool does not measure insights: make it with insights=True")
        return insights

    def profile(self) -> pstats.Stats:
        """The workers' ``cProfile`` statistics, merged (docs/observability.md).

        A worker writes its statistics when it exits, so this waits for the
        workers of a pool that was shut down; workers that crashed or were
        killed (``terminate()``, a timeout) are missing.

        Returns:
            One ``pstats.Stats`` of every worker's profile.

        Raises:
            RuntimeError: the pool was made without ``profile=True``, or it is
                still open (call it after ``shutdown()`` or the ``with`` block).
        """
        profile = getattr(self._backend, "profile", None)
        if profile is None:
            raise RuntimeError("this pool does not profile its workers: make it with profile=True")
        if not self._closed:
            raise RuntimeError(
                "the workers' profiles are written when they exit: call profile() after "
                "shutdown() (or the end of the with block)"
            )
        self._backend.shutdown(wait=True)  # a shutdown(wait=False) may still be stopping them
        stats: pstats.Stats = profile()
        return stats

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; finish what was submitted, then stop the workers.

        Args:
            wait: block until the workers have exited.
            cancel_futures: cancel submitted work that has not started.
        """
        self._closed = True
        self._backend.shutdown(wait=wait, cancel_futures=cancel_futures)

    def terminate(self) -> None:
        """Stop the workers now; pending work fails with :class:`parkit.PoolBroken`."""
        self._closed = True
        self._backend.terminate()

    def __enter__(self) -> Pool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Normal exit waits for submitted work; an exception (Ctrl-C included)
        # stops the workers so that none outlives the block (SPEC §2).
        if exc_type is None:
            self.shutdown(wait=True)
        else:
            self.terminate()

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """``async with Pool(...)``: as ``with``, without blocking the loop.

        A normal exit waits (in a driver thread) for the submitted work and the
        workers' exit; an exception, or the task cancelled while it waits,
        stops the workers now.
        """
        from ._async import close_pool, off_loop  # noqa: PLC0415 - asyncio on first use

        if exc_type is None:
            await close_pool(lambda: self.shutdown(wait=True), self.terminate)
        else:
            await off_loop(self.terminate)


def submit_call(
    backend: Backend,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
) -> Future[Any]:
    """Submit ``fn(*args, **kwargs)`` as a one-item batch."""
    return submit_item(backend, fn, args, kwargs, timeout)[0]


def submit_item(
    backend: Backend,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
) -> tuple[Future[Any], Call]:
    """:func:`submit_call`, and the call (to interrupt it: ``asubmit``).

    Raises:
        TypeError: ``fn`` is not callable (here, not later in a worker).
    """
    check_callable(fn)
    target = functools.partial(fn, **kwargs) if kwargs else fn
    call = Call(new_call_id(), target, star=True, timeout=timeout, stop_on_error=True)
    from ._submit import ItemFuture  # noqa: PLC0415  (see the TYPE_CHECKING import)

    future = ItemFuture()
    try:
        backend.submit_batch(Batch(call, 0, [args]), future)
    except Exception as e:
        # parkit.errors loaded here (the backend has, to raise it): a pool
        # whose calls all succeed does without it.
        from ..errors import SerializationError  # noqa: PLC0415

        if not isinstance(e, SerializationError):
            raise
        # The function can't be pickled: the future fails, as with the stdlib
        # executor (map, which has no future to carry it, raises at once).
        if future.set_running_or_notify_cancel():
            future.set_exception(e)
    return future, call


def _flatten(segments: Iterator[list[Any]]) -> Iterator[Any]:
    try:
        for segment in segments:
            yield from segment
    finally:
        # Closing this generator (the consumer stopped early) closes the
        # mapping layer's, which tells the backend to drop the call's work.
        close = getattr(segments, "close", None)
        if close is not None:
            close()
