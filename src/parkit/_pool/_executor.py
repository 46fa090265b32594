"""``parkit.ProcessPoolExecutor``: the stdlib executor's contract on parkit's engine.

Same constructor, ``submit``, ``map`` (input consumed at once, results lazily,
one overall ``timeout``, ``chunksize``) and ``shutdown(wait, cancel_futures)`` as
``concurrent.futures.ProcessPoolExecutor``, so code written for it works
unchanged. What differs is what parkit exists for: a worker that dies fails only
the future it was running (:class:`parkit.WorkerCrashed`, which is also a
``BrokenProcessPool``) and the executor goes on, where the stdlib breaks the
whole pool; exceptions arrive with the worker's traceback; functions may be
lambdas or closures.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from itertools import islice
from multiprocessing.context import BaseContext
from typing import Any, ParamSpec, TypeVar

from .._backends._protocol import Batch, BatchResult, Call, new_call_id
from .._core._cpus import usable_cpus
from ._engine import ProcessEngine
from ._pool import submit_call

__all__ = ["ProcessPoolExecutor"]

P = ParamSpec("P")
R = TypeVar("R")

_live: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()


def _at_exit() -> None:
    # Like the stdlib executor: work submitted before exit still runs.
    for executor in list(_live):
        executor.shutdown(wait=True)


# Runs before atexit handlers and before the interpreter stops threads, as the
# stdlib executor's own exit hook does.
threading._register_atexit(_at_exit)  # type: ignore[attr-defined]


def _forget_after_fork() -> None:
    # A forked child (under fork, this executor's own workers) inherits copies
    # of the parent's executors, with their locks as the parent's threads held
    # them at that instant: the main thread inside submit() or shutdown() holds
    # _shutdown_lock while the I/O thread forks a worker. Those executors are
    # not the child's to shut down, yet multiprocessing's children run the
    # threading exit hooks (threading._shutdown) when they end: _at_exit would
    # wait on a lock that no thread of the child will release, and shutdown()
    # in the parent would wait out the worker's exit grace and then kill it.
    _live.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


class ProcessPoolExecutor(Executor):
    """A drop-in ``concurrent.futures.ProcessPoolExecutor`` on parkit's engine.

    Args:
        max_workers: number of worker processes; default: the CPUs this
            process may use.
        mp_context: a ``multiprocessing`` context or start-method name;
            default :func:`parkit.default_context`.
        initializer: called as ``initializer(*initargs)`` in each worker. If it
            raises, pending and later futures fail with :class:`parkit.PoolBroken`
            (a ``BrokenProcessPool``).
        initargs: arguments for ``initializer``.
        max_tasks_per_child: a worker is replaced after this many tasks.

    Raises:
        ValueError: ``max_workers`` or ``max_tasks_per_child`` is not positive.
        TypeError: ``initializer`` is not callable or ``max_tasks_per_child``
            not an int.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: BaseContext | str | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
    ) -> None:
        if max_workers is None:
            max_workers = usable_cpus()
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
        self._max_workers = max_workers
        self._engine = ProcessEngine(
            max_workers,
            mp_context,
            initializer=initializer,
            initargs=tuple(initargs),
            max_tasks_per_worker=max_tasks_per_child,
        )
        self._shutdown_lock = threading.Lock()
        self._shutdown = False
        _live.add(self)
        # Dropped without shutdown(): finish the work and let the workers go, as
        # the stdlib executor does when it is garbage-collected.
        weakref.finalize(self, self._engine.shutdown, wait=False)

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)``; its future.

        Raises:
            RuntimeError: after ``shutdown()``.
            BrokenProcessPool: the pool is broken (:class:`parkit.PoolBroken`).
        """
        with self._shutdown_lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            return submit_call(self._engine, fn, args, kwargs, None)

    def map(
        self,
        fn: Callable[..., R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[R]:
        """``fn`` over the zipped iterables; the stdlib's semantics.

        The iterables are consumed now; results are yielded in order as they
        arrive. ``timeout`` counts from this call: ``TimeoutError`` if a result
        is not there in time. Closing the iterator early cancels what has not
        started.

        Raises:
            ValueError: ``chunksize`` < 1.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end = None if timeout is None else timeout + time.monotonic()
        call = Call(new_call_id(), fn, star=True, stop_on_error=True)
        args = zip(*iterables, strict=False)
        futures: list[Future[BatchResult]] = []
        start = 0
        with self._shutdown_lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            while chunk := list(islice(args, chunksize)):
                futures.append(self._engine.submit_batch(Batch(call, start, chunk)))
                start += len(chunk)
        return self._results(futures, end)

    @staticmethod
    def _results(futures: list[Future[BatchResult]], end: float | None) -> Iterator[Any]:
        # Nothing here keeps a yielded result alive once the consumer drops it
        # (as the stdlib): futures and values are popped, not iterated.
        futures.reverse()
        try:
            while futures:
                outcome = futures[-1].result(None if end is None else end - time.monotonic())
                futures.pop()
                values, errors = outcome.values, outcome.errors
                del outcome
                first = min(errors) if errors else len(values)
                del values[first:]
                values.reverse()
                while values:
                    yield values.pop()
                if errors:
                    raise errors[first]
        finally:
            for future in futures:
                future.cancel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; finish (or cancel) what was submitted.

        Args:
            wait: block until the workers have exited.
            cancel_futures: cancel submitted work that has not started.
        """
        with self._shutdown_lock:
            self._shutdown = True
        self._engine.shutdown(wait=wait, cancel_futures=cancel_futures)
        _live.discard(self)
