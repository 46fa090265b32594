"""The ``"serial"`` backend: every item runs in the calling thread, in order.

It is the oracle the other backends are tested against (its results *are* the
serial loop's), and where a debugger works: ``pdb`` and breakpoints stop in the
caller. It cannot stop an item that runs too long: an item that took longer
than ``timeout`` gets :class:`parkit.TaskTimeout` once it has returned.
"""

from __future__ import annotations

import time

from .._core._worker import describe_callable
from ..errors import TaskTimeout
from ._batch import Batch, BatchResult, Call

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from concurrent.futures import Future
    from typing import Any

    from ._stats import PoolStats

__all__ = ["SerialBackend"]


def run_batch(batch: Batch) -> BatchResult:
    """Run ``batch`` here and now. ``KeyboardInterrupt`` is not caught."""
    call = batch.call
    fn = call.fn
    values: list[Any] = []
    errors: dict[int, BaseException] = {}
    started = time.perf_counter()
    for pos, item in enumerate(batch.items):
        t0 = time.monotonic()
        try:
            values.append(fn(*item) if call.star else fn(item))
        except KeyboardInterrupt:
            raise  # Ctrl-C in the caller's own thread stops the call
        except BaseException as e:
            if e.__traceback__ is not None:
                e = e.with_traceback(e.__traceback__.tb_next)  # start in the user's code
            errors[pos] = e
            values.append(None)
            if call.stop_on_error:
                break
            continue
        if call.timeout is not None and time.monotonic() - t0 > call.timeout:
            errors[pos] = TaskTimeout(
                call.timeout, batch.start + pos, describe_callable(fn), stopped=False
            )
            values[pos] = None
            if call.stop_on_error:
                break
    return BatchResult(values, errors, time.perf_counter() - started)


class SerialBackend:
    """The ``"serial"`` backend: every item runs in the calling thread, in order.

    The oracle the other backends are tested against (its results *are* the
    serial loop's), and where a debugger works: ``pdb`` and breakpoints stop in
    the caller. It cannot stop an item that runs too long: an item that took
    longer than ``timeout`` gets :class:`parkit.TaskTimeout` once it has
    returned. ``parkit.backends.Serial()`` takes no argument.
    """

    workers = 1
    stops_tasks = True  # nothing to stop: items never run in the background
    shares_memory = True

    def submit_batch(
        self, batch: Batch, future: Future[BatchResult] | None = None
    ) -> Future[BatchResult]:
        """Run ``batch`` now, in this thread; see :meth:`parkit.backends.Backend.submit_batch`.

        Args:
            batch: the items to run.
            future: the future to resolve, or ``None`` for a new one.

        Returns:
            The future that resolves with the batch's ``BatchResult``.
        """
        if future is None:
            # Loaded here: the map path passes its own future (_future.py).
            from concurrent.futures import Future  # noqa: PLC0415

            future = Future()
        if future.set_running_or_notify_cancel():
            future.set_result(run_batch(batch))
        return future

    def forget(self, call: Call, after: int) -> None:
        """The caller needs no item of ``call`` past ``after`` (nothing is ever pending here).

        Args:
            call: the call concerned.
            after: the last input index the caller still needs.
        """
        del call, after  # nothing is ever pending

    def interrupt(self, call: Call) -> None:
        """Stop ``call``'s running items: nothing to do here.

        Items run in the caller's thread, where Ctrl-C lands.

        Args:
            call: the call whose items to stop.
        """
        del call

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more batches; finish the submitted ones (nothing runs in the background).

        Args:
            wait: block until the backend's workers are gone.
            cancel_futures: cancel the batches that have not started.
        """
        del wait, cancel_futures  # nothing runs in the background

    def terminate(self) -> None:
        """Stop now: nothing to stop, as nothing runs in the background."""

    def stats(self) -> PoolStats:
        """What the backend has done so far: zeros, the serial backend counts nothing.

        Returns:
            A :class:`parkit.PoolStats`.
        """
        return zero_stats()


def zero_stats() -> PoolStats:
    """A backend's statistics when it counts nothing."""
    # Imported here: a dataclass, and dataclasses costs ~5 ms (_stats.py).
    from ._stats import PoolStats  # noqa: PLC0415

    return PoolStats(0, 0, 0, 0, 0, ())
