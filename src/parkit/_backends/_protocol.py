"""The backend protocol: everything ``Pool``, the executor and the one-shot calls ask.

The mapping layer (``parkit._pool._mapping``) owns chunking, the in-flight
window, ordering and ``errors=``; a backend only runs :class:`Batch` es and
resolves one future per batch with a :class:`BatchResult` that has an outcome
for every item. Besides that it says what it can do (:attr:`Backend.workers`,
:attr:`Backend.stops_tasks`, :attr:`Backend.shares_memory`), stops
(``shutdown``, ``terminate``) and counts (``stats``). That is the whole
contract, so a backend can be a process pool, threads, the calling thread, or
a Dask cluster (a batch becomes one Dask future), and a third party can write
one (docs/backends.md).

The future is a ``concurrent.futures.Future`` to mypy; at run time the map
path hands over its own (``_future.BatchFuture``: the same methods, without
importing ``concurrent.futures``). So a backend uses only what
``concurrent.futures.Future`` has (``set_running_or_notify_cancel``,
``set_result``, ``set_exception``, ``cancel``, ``done``, ``result``,
``exception``, ``add_done_callback``), never its concrete class.

A future that fails (``set_exception``) means the backend itself failed (the
pool is broken, the cluster is gone): the mapping layer raises that exception
whatever ``errors=`` says. Failures of single items go in
:attr:`BatchResult.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    # Not at run time: concurrent.futures imports logging (~3-5 ms of a cold
    # start), and the map path's futures are parkit's own (_future.py).
    from concurrent.futures import Future

    from ._batch import Batch, BatchResult, Call

    # Loaded by stats(): a dataclass, and dataclasses costs ~5 ms (_stats.py).
    from ._stats import PoolStats

__all__ = ["Backend"]


@runtime_checkable
class Backend(Protocol):
    """A place that runs batches."""

    @property
    def workers(self) -> int:
        """How many items can run at once; sizes the in-flight window."""
        ...

    @property
    def stops_tasks(self) -> bool:
        """Whether a timed-out or interrupted running item is really stopped.

        When false, the item keeps running after its ``TaskTimeout`` was
        reported, and the mapping layer sends one item per batch when a
        ``timeout`` is set, so that each deadline is an item's own.
        """
        ...

    @property
    def shares_memory(self) -> bool:
        """Whether items run on this machine, where the caller's ``SharedArray``,
        parkit locks, ``Queue`` and ``Pipe`` work (true for process, thread and
        serial; false for a cluster)."""
        ...

    def submit_batch(
        self, batch: Batch, future: Future[BatchResult] | None = None
    ) -> Future[BatchResult]:
        """Start ``batch``; the future resolves when every item has an outcome.

        ``future``, if given, is the one to resolve (``Pool.submit`` passes a
        future that turns the batch's one outcome into its own result). The
        backend calls its ``set_running_or_notify_cancel()`` when the batch
        starts, so a future cancelled before that is skipped.

        Args:
            batch: the items to run.
            future: the future to resolve, or ``None`` for a new one.

        Returns:
            The future that resolves with the batch's :class:`BatchResult`.
        """
        ...

    def forget(self, call: Call, after: int) -> None:
        """The caller no longer needs items of ``call`` with index > ``after``.

        A hint: batches not started yet may be skipped (their futures cancelled
        or resolved with ``NOT_RUN``); running ones finish.

        Args:
            call: the call concerned.
            after: the last input index the caller still needs.
        """
        ...

    def interrupt(self, call: Call) -> None:
        """Stop ``call``'s running items now if the backend can (Ctrl-C).

        Args:
            call: the call whose items to stop.
        """
        ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more batches; finish the submitted ones, then release the workers.

        Args:
            wait: block until the backend's workers are gone.
            cancel_futures: cancel the batches that have not started.

        Later :meth:`submit_batch` calls raise ``RuntimeError``. Calling it
        twice is harmless.
        """
        ...

    def terminate(self) -> None:
        """Stop now: running items are stopped where the backend can, and the
        futures of batches not finished fail (``parkit.PoolBroken``) or are
        cancelled. Returns once nothing of the backend runs any more (threads
        that can't be stopped excepted)."""
        ...

    def stats(self) -> PoolStats:
        """What the backend has done so far; zeros for what it does not count.

        Returns:
            A :class:`parkit.PoolStats` snapshot.
        """
        ...
