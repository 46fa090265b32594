"""``parkit.ProcessPoolExecutor``: the stdlib executor's contract on parkit's engine.

Same constructor, ``submit``, ``map`` (results lazily, one overall ``timeout``,
``chunksize``, and 3.14's ``buffersize`` on every Python) and
``shutdown(wait, cancel_futures)`` as ``concurrent.futures.ProcessPoolExecutor``,
so code written for it works unchanged. What differs is what parkit exists for: a
worker that dies fails only the future it was running (:class:`parkit.WorkerCrashed`,
which is also a ``BrokenProcessPool``) and the executor goes on, where the stdlib
breaks the whole pool; exceptions arrive with the worker's traceback; functions may
be lambdas or closures; an input without a ``len()`` is taken lazily (an endless
one works); leaving the ``with`` block by Ctrl-C stops at once instead of waiting
for every queued task.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import Executor, Future
from itertools import islice
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from .._backends._batch import Batch, BatchResult, Call, new_call_id
from .._backends._process._engine import ProcessEngine
from .._core import _platform
from .._core._checks import check_bool, check_callable, show, to_tuple, wait_timeout
from .._core._cpus import check_cpus, usable_cpus
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


_platform.after_fork_in_child(_forget_after_fork)


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
        cpus: (parkit only) the CPU numbers every worker may run on, set
            before the initializer; with no ``max_workers``, ``len(cpus)``
            workers.
        worker_logging: (parkit only) forward the workers' log records to this
            process's handlers (docs/observability.md); ``False`` if the
            initializer configures logging itself.

    Raises:
        ValueError: ``max_workers`` or ``max_tasks_per_child`` is not positive.
        TypeError: ``initializer`` is not callable, ``max_workers`` or
            ``max_tasks_per_child`` not an int, ``initargs`` not iterable.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: BaseContext | str | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
        cpus: Iterable[int] | None = None,
        worker_logging: bool = True,
    ) -> None:
        cpu_set = check_cpus(cpus)
        # The stdlib's checks and messages (a bool is an int there); a type it
        # would fail on later, in its own machinery, is a TypeError here.
        if max_workers is None:
            max_workers = len(cpu_set) if cpu_set is not None else usable_cpus()
        elif not isinstance(max_workers, int):
            raise TypeError(f"max_workers must be an int or None, not {show(max_workers)}")
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        initargs = to_tuple(initargs, "initargs")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
        check_bool(worker_logging, "worker_logging")
        self._max_workers = max_workers
        self._engine = ProcessEngine(
            max_workers,
            mp_context,
            initializer=initializer,
            initargs=initargs,
            max_tasks_per_worker=max_tasks_per_child,
            cpus=cpu_set,
            worker_logging=worker_logging,
        )
        self._shutdown_lock = threading.Lock()
        self._shutdown = False
        _live.add(self)
        # Dropped without shutdown(): finish the work and let the workers go, as
        # the stdlib executor does when it is garbage-collected.
        weakref.finalize(self, self._engine.shutdown, wait=False)

    def submit(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)``; its future.

        Args:
            fn: any callable, lambdas and closures included.
            *args: its positional arguments.
            **kwargs: its keyword arguments.

        Returns:
            A ``concurrent.futures.Future`` of the result.

        Raises:
            TypeError: ``fn`` is not callable (at once; the stdlib's future
                would fail later).
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
        buffersize: int | None = None,
    ) -> Iterator[R]:
        """``fn`` over the zipped iterables; the stdlib's semantics.

        Results are yielded in order as they arrive. ``timeout`` counts from
        this call: ``TimeoutError`` if a result is not there in time. Closing
        the iterator early cancels what has not started.

        What is taken from the input when: with ``buffersize`` (Python 3.14's
        meaning, on every Python), ``buffersize`` chunks are submitted now and
        one more each time the iterator is asked for the next chunk's results.
        Without it, an input with a ``len()`` (one of the iterables has one) is
        consumed now, as the stdlib does; an input without one (a generator,
        ``itertools.count()``) is taken lazily as with ``buffersize=2 *
        max_workers``, so an endless one works. When the input is taken lazily,
        an exception it raises comes from the iterator after the results of
        the items before it, as with the built-in ``map``.

        Args:
            fn: called as ``fn(*args)`` for each tuple of the zipped iterables.
            *iterables: the argument iterables, zipped (shortest wins).
            timeout: seconds from this call until each result must be there.
            chunksize: items sent to a worker at a time.
            buffersize: chunks submitted ahead of the consumer (``None``: see
                above).

        Returns:
            An iterator of the results, in input order; it raises a task's
            exception when it reaches that task, ``TimeoutError`` past
            ``timeout``.

        Raises:
            ValueError: ``chunksize`` < 1 or ``buffersize`` < 1, ``timeout`` NaN.
            TypeError: ``fn`` is not callable; ``chunksize`` or ``buffersize``
                is not an int, ``timeout`` not a number.
            RuntimeError: after ``shutdown()``.
        """
        check_callable(fn)
        if not isinstance(chunksize, int):
            raise TypeError(f"chunksize must be an int, not {show(chunksize)}")
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        # The messages and checks of the 3.14 stdlib (a bool is an int there too).
        if buffersize is not None and not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        # As the stdlib's: counted from now, and a negative one has expired already.
        wait = wait_timeout(timeout, negative_waits_not=True)
        end = None if wait is None else wait + time.monotonic()
        call = Call(new_call_id(), fn, star=True, stop_on_error=True)
        chunks = _Chunks(zip(*iterables, strict=False), chunksize)
        if buffersize is None and (not iterables or any(isinstance(i, Sized) for i in iterables)):
            # The stdlib's map: the (finite) input is consumed at call time.
            futures = deque(self._submit_chunk(call, chunk, start) for chunk, start in chunks)
            if chunks.error is not None:
                for future in futures:
                    future.cancel()
                raise chunks.error
            return _results(futures, end, None, None)
        ahead = buffersize if buffersize is not None else _WINDOW * self._max_workers
        futures = deque(
            self._submit_chunk(call, chunk, start) for chunk, start in islice(chunks, ahead)
        )
        # The iterator holds the executor (the stdlib's holds a weak reference
        # and silently stops submitting once the executor is collected, which
        # would cut an endless map short): dropping the iterator releases it.
        return _results(futures, end, chunks, functools.partial(self._submit_chunk, call))

    def _submit_chunk(self, call: Call, chunk: list[Any], start: int) -> Future[BatchResult]:
        with self._shutdown_lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            return self._engine.submit_batch(Batch(call, start, chunk))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; finish (or cancel) what was submitted.

        Args:
            wait: block until the workers have exited.
            cancel_futures: cancel submitted work that has not started.
        """
        with self._shutdown_lock:
            self._shutdown = True
        try:
            self._engine.shutdown(wait=wait, cancel_futures=cancel_futures)
        except BaseException as e:
            if not isinstance(e, Exception):
                # Ctrl-C (or SystemExit) while waiting for the work: nobody
                # waits for the rest any more, so it must not run on (nor be
                # waited for again at exit).
                self._abort(e)
            raise
        _live.discard(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # Leaving the block normally or by an Exception waits for the submitted
        # work, as the stdlib does. KeyboardInterrupt and the other
        # BaseExceptions mean "stop": waiting for every queued task first
        # (minutes, maybe) would keep the interrupt from the caller.
        if exc_val is not None and not isinstance(exc_val, Exception):
            self._abort(exc_val)
        else:
            self.shutdown(wait=True)

    def _abort(self, why: BaseException) -> None:
        """Cancel what has not started, kill the workers, wait for nothing else."""
        with self._shutdown_lock:
            self._shutdown = True
        self._engine.terminate(
            cancel_queued=True,
            reason=f"the executor was stopped by {type(why).__name__} while the task ran",
        )
        _live.discard(self)


#: Without ``buffersize``, an input without a ``len()`` is taken this many chunks
#: per worker ahead of the consumer (the window ``parkit.imap`` keeps).
_WINDOW = 2


class _Chunks:
    """The zipped input in chunks of ``size`` argument tuples, with their start index.

    An exception the input raises ends the chunks (after a last, partial one)
    and is kept in :attr:`error`: the caller decides when to raise it.
    """

    def __init__(self, args: Iterator[tuple[Any, ...]], size: int) -> None:
        self._args = args
        self._size = size
        self._start = 0
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[tuple[list[Any], int]]:
        return self

    def __next__(self) -> tuple[list[Any], int]:
        chunk: list[Any] = []
        if self.error is None:
            try:
                for args in islice(self._args, self._size):
                    chunk.append(args)
            except Exception as e:
                self.error = e
        if not chunk:
            raise StopIteration
        start = self._start
        self._start += len(chunk)
        return chunk, start


def _results(
    futures: deque[Future[BatchResult]],
    end: float | None,
    chunks: _Chunks | None,
    submit: Callable[[list[Any], int], Future[BatchResult]] | None,
) -> Iterator[Any]:
    """Yield the values of ``futures``, oldest first.

    With ``chunks``, one more chunk is submitted each time the next chunk's
    results are waited for (as the 3.14 stdlib does with ``buffersize``), and
    what the input raised is raised after the results of the items before it.
    """
    # Nothing here keeps a yielded result alive once the consumer drops it
    # (as the stdlib): futures and values are popped, not iterated.
    try:
        while futures:
            if chunks is not None and submit is not None:
                for chunk, start in chunks:
                    futures.append(submit(chunk, start))
                    break
            outcome = futures[0].result(None if end is None else end - time.monotonic())
            futures.popleft()
            values, errors = outcome.values, outcome.errors
            del outcome
            first = min(errors) if errors else len(values)
            del values[first:]
            values.reverse()
            while values:
                yield values.pop()
            if errors:
                raise errors[first]
        if chunks is not None and chunks.error is not None:
            raise chunks.error
    finally:
        for future in futures:
            future.cancel()
