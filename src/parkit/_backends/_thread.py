"""The ``"thread"`` backend: items run in a pool of threads of this process.

Good for functions that release the GIL (I/O, NumPy) and for objects that can't
be pickled. Nothing is pickled. A thread can't be stopped from outside, so a
per-item ``timeout`` gives :class:`parkit.TaskTimeout` on time while the item
keeps running in the background; its thread is replaced so the pool keeps its
size, and leaves once the item returns. With a timeout the mapping layer sends
one item per batch (``stops_tasks`` is false), so the deadline is per item.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import queue
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING

from .._core._worker import describe_callable
from ..errors import TaskTimeout
from ._batch import NOT_RUN, Batch, BatchResult, Call
from ._serial import run_batch, zero_stats

if TYPE_CHECKING:
    from ._stats import PoolStats

__all__ = ["ThreadBackend"]

_names = itertools.count(1)
_Job = tuple[Batch, "Future[BatchResult]"]


class ThreadBackend:
    """The ``"thread"`` backend: items run in a pool of threads of this process.

    Good for functions that release the GIL (I/O, NumPy) and for objects that
    can't be pickled: nothing is pickled. A thread can't be stopped from
    outside, so a per-item ``timeout`` gives :class:`parkit.TaskTimeout` on
    time while the item keeps running in the background; its thread is
    replaced so the pool keeps its size.

    Args:
        workers: the most threads at once.
        idle_timeout: a thread with no work for this many seconds exits
            (``None``: threads stay until shutdown).
    """

    stops_tasks = False
    shares_memory = True

    def __init__(self, workers: int, idle_timeout: float | None = None) -> None:
        self._workers = workers
        self._idle_timeout = idle_timeout
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._name = f"parkit-thread{next(_names)}"
        self._forgotten: dict[int, int] = {}
        self._closing = False
        # Timed items running now: (deadline, seq, future, batch); a watchdog
        # thread resolves the future at the deadline.
        self._deadlines: list[tuple[float, int, Future[BatchResult], Batch]] = []
        self._seq = itertools.count()
        self._watchdog: threading.Thread | None = None
        self._wake = threading.Condition(self._lock)

    @property
    def workers(self) -> int:
        """The most items that run at once (threads)."""
        return self._workers

    def submit_batch(
        self, batch: Batch, future: Future[BatchResult] | None = None
    ) -> Future[BatchResult]:
        """Start ``batch``; see :meth:`parkit.backends.Backend.submit_batch`.

        Args:
            batch: the items to run.
            future: the future to resolve, or ``None`` for a new one.

        Returns:
            The future that resolves with the batch's ``BatchResult``.

        Raises:
            RuntimeError: the backend was shut down.
        """
        if future is None:
            future = Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("cannot schedule new work after the pool was shut down")
            # Put the job first: a thread deciding to leave for idleness checks
            # the queue under this lock, so the job is never stranded.
            self._jobs.put((batch, future))
            if len(self._threads) < self._workers:
                self._start_thread()
        return future

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    if not self._jobs.empty():
                        continue
                    self._threads.discard(me)
                    return
            if job is None:
                with self._lock:
                    self._threads.discard(me)
                return
            batch, future = job
            after = self._forgotten.get(batch.call.id)
            if after is not None and batch.start > after and future.cancel():
                future.set_running_or_notify_cancel()  # counts as done for wait()
                continue
            if not future.set_running_or_notify_cancel():
                continue
            timed = batch.call.timeout is not None
            if timed:
                self._watch(batch, future)
            try:
                result = run_batch(batch)
            except BaseException as e:  # KeyboardInterrupt can't reach a thread; be safe
                result = BatchResult(
                    [None] * len(batch.items), dict.fromkeys(range(len(batch.items)), e)
                )
            with self._lock:
                if future.done():
                    # Timed out: a replacement thread took this one's place.
                    self._threads.discard(me)
                    return
                future.set_result(result)

    def _watch(self, batch: Batch, future: Future[BatchResult]) -> None:
        assert batch.call.timeout is not None
        with self._lock:
            deadline = time.monotonic() + batch.call.timeout
            heapq.heappush(self._deadlines, (deadline, next(self._seq), future, batch))
            if self._watchdog is None:
                self._watchdog = threading.Thread(
                    target=self._watch_loop, name=f"{self._name}-watchdog", daemon=True
                )
                self._watchdog.start()
            self._wake.notify()

    def _watch_loop(self) -> None:
        with self._lock:
            while self._deadlines:
                deadline, _, future, batch = self._deadlines[0]
                if future.done():
                    heapq.heappop(self._deadlines)
                    continue
                left = deadline - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                heapq.heappop(self._deadlines)
                call = batch.call
                assert call.timeout is not None
                values = [None] + [NOT_RUN] * (len(batch.items) - 1)
                err = TaskTimeout(
                    call.timeout, batch.start, describe_callable(call.fn), stopped=False
                )
                future.set_result(BatchResult(values, {0: err}))
                # Keep the pool's size: the stuck thread leaves when it returns.
                if not self._closing:
                    self._start_thread()
            self._watchdog = None

    def forget(self, call: Call, after: int) -> None:
        """The caller needs no item of ``call`` past ``after``: its batches not started are skipped.

        Args:
            call: the call concerned.
            after: the last input index the caller still needs.
        """
        self._forgotten[call.id] = after
        if len(self._forgotten) > 64:
            with contextlib.suppress(StopIteration, KeyError):
                del self._forgotten[next(iter(self._forgotten))]

    def interrupt(self, call: Call) -> None:
        """Stop ``call``'s running items, as far as threads allow.

        A thread can't be stopped: its item runs on while the caller stops waiting.

        Args:
            call: the call whose items to stop.
        """
        del call  # threads can't be stopped; the caller stops waiting

    def stats(self) -> PoolStats:
        """What the backend has done so far: zeros, the thread backend counts nothing.

        Returns:
            A :class:`parkit.PoolStats`.
        """
        return zero_stats()

    def terminate(self) -> None:
        """Cancel the batches not started; running items finish in the background."""
        # Threads can't be killed: what has not started is cancelled, the
        # running items finish in the background.
        self.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more batches; finish the submitted ones, then let the threads go.

        Args:
            wait: block until the backend's workers are gone.
            cancel_futures: cancel the batches that have not started.
        """
        with self._lock:
            self._closing = True
            threads = list(self._threads)
            if cancel_futures:
                while True:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is not None and job[1].cancel():
                        job[1].set_running_or_notify_cancel()
            for _ in threads:
                self._jobs.put(None)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()
            with self._lock:
                watchdog = self._watchdog
                # It sleeps until the next deadline (a call's timeout, maybe a
                # minute away) even when that item is done: wake it to see.
                self._wake.notify_all()
            if watchdog is not None:
                watchdog.join()
