"""What the mapping layer asks of a backend: run batches, report per item.

The mapping layer (``parkit._pool._mapping``) owns chunking, the in-flight
window, ordering and ``errors=``; a backend only runs :class:`Batch` es and
resolves one ``concurrent.futures.Future`` per batch with a :class:`BatchResult`
that has an outcome for every item. That is the whole contract, so a backend
can be a process pool, threads, the calling thread, or a Dask cluster (a batch
becomes one Dask future).

A future that fails (``set_exception``) means the backend itself failed (the
pool is broken, the cluster is gone): the mapping layer raises that exception
whatever ``errors=`` says. Failures of single items go in
:attr:`BatchResult.errors`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

__all__ = ["NOT_RUN", "Backend", "Batch", "BatchResult", "Call", "new_call_id"]

_ids = itertools.count(1)


def new_call_id() -> int:
    """A number unique to one map call in this process."""
    return next(_ids)


class _NotRun:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_RUN"


#: Placeholder value of an item that was not run: its batch stopped at an
#: earlier failure (``errors="raise"``) or its call was abandoned.
NOT_RUN: Final = _NotRun()


@dataclass(frozen=True, eq=False)
class Call:
    """What every batch of one ``map``/``imap``/``submit`` call shares."""

    id: int
    fn: Callable[..., Any]
    star: bool = False
    timeout: float | None = None
    stop_on_error: bool = False


@dataclass(eq=False)
class Batch:
    """Consecutive items of one call: ``items[k]`` is input item ``start + k``."""

    call: Call
    start: int
    items: list[Any]


@dataclass(eq=False)
class BatchResult:
    """Every item's outcome.

    ``values[k]`` is item ``k``'s return value, or ``NOT_RUN``, or ``None`` where
    ``errors`` has the item's exception (already rebuilt, with its note).
    ``busy`` is the seconds workers spent on the batch.
    """

    values: list[Any]
    errors: dict[int, BaseException]
    busy: float = 0.0


@runtime_checkable
class Backend(Protocol):
    """A place that runs batches."""

    @property
    def workers(self) -> int:
        """How many items can run at once; sizes the in-flight window."""
        ...

    @property
    def stops_tasks(self) -> bool:
        """Whether a timed-out item is really stopped (else it keeps running)."""
        ...

    def submit_batch(
        self, batch: Batch, future: Future[BatchResult] | None = None
    ) -> Future[BatchResult]:
        """Start ``batch``; the future resolves when every item has an outcome.

        ``future``, if given, is the one to resolve (``Pool.submit`` passes a
        future that turns the batch's one outcome into its own result). The
        backend calls its ``set_running_or_notify_cancel()`` when the batch
        starts, so a future cancelled before that is skipped.
        """
        ...

    def forget(self, call: Call, after: int) -> None:
        """The caller no longer needs items of ``call`` with index > ``after``.

        A hint: batches not started yet may be skipped (their futures cancelled
        or resolved with ``NOT_RUN``); running ones finish.
        """
        ...

    def interrupt(self, call: Call) -> None:
        """Stop ``call``'s running items now if the backend can (Ctrl-C)."""
        ...
