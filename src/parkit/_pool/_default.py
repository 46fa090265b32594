"""The one-shot calls ``parkit.map``/``imap``/``starmap`` and the pools they keep.

Each (backend, start method, workers) gets one pool, made on first use and
reused, so the second call pays no start-up. Its workers leave after
:data:`IDLE_TIMEOUT` seconds without work and come back on the next call;
``parkit.shutdown()`` releases everything now, and an ``atexit`` hook does at
interpreter exit. Inside a pool worker the calls run serially (nested
parallelism would multiply the processes), and so they do in a daemonic
process (which may not start children), unless ``backend=`` says otherwise.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from collections.abc import Callable, Iterable, Iterator

from .._backends._process import _loop
from .._backends._registry import BackendLike, make_backend, refuse_workers
from .._core import _context, _platform
from .._core._cpus import usable_cpus
from ._mapping import Errors, Progress, check_options, map_list, run_map
from ._pool import _flatten

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from typing import Any, Literal, TypeVar, overload

    from .._backends._protocol import Backend

    T = TypeVar("T")
    R = TypeVar("R")

__all__ = ["IDLE_TIMEOUT", "imap", "map", "shutdown", "starmap"]

#: Seconds a kept pool's workers stay without work before they exit.
IDLE_TIMEOUT = 30.0

_lock = threading.Lock()
_kept: dict[tuple[str, str | None, int], Backend] = {}


def _backend_for(
    backend: BackendLike | None,
    context: _context.ContextLike,
    workers: int | None,
    chunksize: int | None = None,
    timeout: float | None = None,
    errors: str = "raise",
) -> Backend:
    """The backend a one-shot call runs on, its options checked first (nothing made yet)."""
    check_options(chunksize=chunksize, timeout=timeout, errors=errors, workers=workers)
    refuse_workers(backend, workers)
    if backend is None:
        if _loop.in_pool_worker() or multiprocessing.current_process().daemon:
            # A pool worker (nested parallelism would multiply the processes),
            # or a daemonic process, which may not start children at all.
            from .._backends._serial import SerialBackend  # noqa: PLC0415 - workers only

            return SerialBackend()  # nested call: no oversubscription
        backend = "process"
    if not isinstance(backend, str):
        return make_backend(backend, 1)
    n = workers if workers is not None else usable_cpus()
    method = _context.resolve_context(context).get_start_method() if backend == "process" else None
    if backend != "process" and context is not None:
        raise ValueError(f"context= applies to the 'process' backend only, not {backend!r}")
    if backend == "dask":
        # Not kept: the active client may change between calls.
        return make_backend(backend, n)
    key = (backend, method, n)
    with _lock:
        found = _kept.get(key)
        if found is None:
            found = make_backend(backend, n, context=method, idle_timeout=IDLE_TIMEOUT)
            _kept[key] = found
        return found


def shutdown() -> None:
    """Stop every pool that the one-shot calls keep; the next call starts afresh."""
    with _lock:
        pools = list(_kept.values())
        _kept.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown)


def _forget_after_fork() -> None:
    # A forked process has copies of the kept pools (and of _lock, perhaps
    # held by another thread at the fork): none of them is its own to stop.
    global _lock
    _lock = threading.Lock()
    _kept.clear()


_platform.after_fork_in_child(_forget_after_fork)


if TYPE_CHECKING:

    @overload
    def map(
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
    def map(
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
    def map(
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


def map(
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
    """``[fn(x) for x in iterable]``, in parallel; results in input order.

    Args:
        fn: any callable, lambdas and closures included.
        iterable: consumed lazily, a bounded number of items ahead.
        workers: how many; default: the CPUs this process may use.
        backend: ``"process"`` (default), ``"thread"``, ``"serial"`` or a
            backend object. Inside a pool worker the default is serial.
        context: start method (see :func:`parkit.default_context`).
        chunksize: items per batch; ``None`` adapts to how long items take.
        timeout: seconds per item: a longer item gets :class:`parkit.TaskTimeout`
            and its worker is replaced.
        errors: ``"raise"`` raises the lowest-index item's exception, as the
            serial loop would; ``"return"`` puts exceptions in the list.
        progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

    Returns:
        The results, in input order.

    Raises:
        BaseException: with ``errors="raise"``, what ``fn`` raised for the
            lowest failing index (same type and args, the worker's traceback, a
            note naming worker, function and item), or
            :class:`parkit.WorkerCrashed`, :class:`parkit.TaskTimeout`,
            :class:`parkit.SerializationError` for that item; whatever the
            input iterable raised, after the items before it ran.
        PoolBroken: the pool cannot run anything.
    """
    return map_list(
        _backend_for(backend, context, workers, chunksize, timeout, errors),
        fn,
        iterable,
        star=False,
        chunksize=chunksize,
        timeout=timeout,
        errors=errors,
        progress=progress,
    )


if TYPE_CHECKING:

    @overload
    def starmap(
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
    def starmap(
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
    def starmap(
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


def starmap(
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
    """``[fn(*args) for args in iterable]``, in parallel; see :func:`map`.

    Args:
        fn: any callable, lambdas and closures included.
        iterable: argument tuples (any iterables), consumed lazily.
        workers: how many; default: the CPUs this process may use.
        backend: ``"process"`` (default), ``"thread"``, ``"serial"``,
            ``"dask"`` or a backend object.
        context: start method (see :func:`parkit.default_context`).
        chunksize: items per batch; ``None`` adapts to how long items take.
        timeout: seconds per item (:class:`parkit.TaskTimeout`).
        errors: ``"raise"`` or ``"return"``, as for :func:`map`.
        progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

    Returns:
        The results, in input order.

    Raises:
        BaseException: as for :func:`map`.
        PoolBroken: the pool cannot run anything.
    """
    return map_list(
        _backend_for(backend, context, workers, chunksize, timeout, errors),
        fn,
        iterable,
        star=True,
        chunksize=chunksize,
        timeout=timeout,
        errors=errors,
        progress=progress,
    )


if TYPE_CHECKING:

    @overload
    def imap(
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
    ) -> Iterator[R]: ...
    @overload
    def imap(
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
    ) -> Iterator[R | BaseException]: ...
    @overload
    def imap(
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
    ) -> Iterator[R | BaseException]: ...


def imap(
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
) -> Iterator[R] | Iterator[R | BaseException]:
    """Lazily yield ``fn(x)`` for ``x`` in ``iterable``; see :func:`map`.

    The input is pulled only as workers need it (at most about
    ``2 * workers`` batches ahead of the consumer), so an endless generator
    works with flat memory. ``ordered=False`` yields results as they complete;
    with ``errors="raise"`` it raises the first failure to complete. Breaking
    out of the loop (or closing the iterator) drops the call's pending work.

    Args:
        fn: any callable, lambdas and closures included.
        iterable: consumed lazily, as the workers need items.
        ordered: ``True`` yields in input order; ``False`` as results complete.
        workers: how many; default: the CPUs this process may use.
        backend: ``"process"`` (default), ``"thread"``, ``"serial"``,
            ``"dask"`` or a backend object.
        context: start method (see :func:`parkit.default_context`).
        chunksize: items per batch; ``None`` adapts to how long items take.
        timeout: seconds per item (:class:`parkit.TaskTimeout`).
        errors: ``"raise"`` or ``"return"``, as for :func:`map`.
        progress: ``True`` for a tqdm bar, or a callable ``(done, total)``.

    Returns:
        An iterator of the results (exceptions too, with ``errors="return"``).

    Raises:
        BaseException: while iterating, as :func:`map` raises.
        PoolBroken: the pool cannot run anything.
    """
    return _flatten(
        run_map(
            _backend_for(backend, context, workers, chunksize, timeout, errors),
            fn,
            iterable,
            star=False,
            chunksize=chunksize,
            timeout=timeout,
            errors=errors,
            ordered=ordered,
            progress=progress,
        )
    )
