"""The mapping layer: ``map``/``imap``/``starmap`` semantics on any backend.

It owns what makes a parallel map behave like the serial loop, and nothing
about processes:

* **chunking**: items travel in :class:`~parkit._backends._protocol.Batch` es;
  with ``chunksize=None`` the size adapts to how long items take (see
  :class:`_ChunkSizer`);
* **a bounded window**: at most ``2 * workers`` batches are in flight or
  finished-but-not-yet-consumed, so the input is pulled lazily and ``imap`` over
  an endless generator keeps memory flat (the stdlib's ``Pool.imap`` pulls the
  whole input first: gh-64192, gh-74028);
* **order**: results in input order, or as completed (``ordered=False``);
* **errors**: ``"raise"`` raises the exception of the lowest-index failing item
  (what the serial loop raises) after the results before it, and starts no new
  batches once a failure is known; ``"return"`` puts exceptions in place. An
  input iterable that raises propagates that exception after the results of the
  items it produced;
* **progress**: a tqdm bar or a ``(done, total)`` callback.

The backend resolves one future per batch. The logic above lives in one
driver-independent core (:func:`map_core`, a generator that never blocks: it
yields ``None`` when it needs the next finished batch future and is sent it);
a driver supplies the waiting. The blocking driver (:func:`run_map`) has the
futures' callbacks put them on a queue that the calling thread waits on, so
Ctrl-C reaches the caller at once and the backend is told to stop the call's
work (:meth:`Backend.interrupt`); the asyncio driver (``_async.py``) awaits
them on the event loop instead, and a cancelled task stops the work the same
way.
"""

from __future__ import annotations

import itertools
import math
import queue
from collections.abc import Callable, Generator, Iterable, Iterator, Sized

from .._backends._batch import Batch, BatchResult, Call, new_call_id
from .._backends._future import BatchFuture
from .._core._checks import check_bool, check_callable, check_choice, check_int, time_limit

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from concurrent.futures import Future
    from typing import Any, Literal, TypeAlias

    from .._backends._protocol import Backend

__all__ = ["Core", "Errors", "Progress", "check_options", "map_core", "map_list", "run_map"]

Errors: TypeAlias = 'Literal["raise", "return"]'
Progress: TypeAlias = "bool | Callable[[int, int | None], object]"
#: The core of one map call: yields a segment of results, or ``None`` to be
#: sent the next finished batch future (see :func:`map_core`).
Core: TypeAlias = "Generator[list[Any] | None, Future[BatchResult], None]"

#: Aim for batches that keep a worker busy this long: long enough that the
#: per-batch cost (a pipe round trip, ~0.1 ms) is noise, short enough that
#: the last batches don't leave workers idle.
_TARGET_BATCH_SECONDS = 0.01
#: A batch is at most this many times the previous size: few round trips to reach
#: the target size (each step waits for one), yet one fast item does not make the
#: next batch huge.
_GROWTH = 16
#: Without a length to divide, batches start capped at this size. The input is
#: pulled a batch at a time as window slots free up, so at most ``2 * workers``
#: batches are taken from the input ahead of the results the consumer has had:
#: a small cap keeps that to about a thousand items on two workers, which
#: matters when producing an item costs something (a file reader, a database
#: cursor). The time target still sizes slower items below it.
_UNSIZED_CAP = 256
#: ... and the cap grows with the results that came back, so that what is pulled
#: ahead stays at most about half of what came back: ``results // (2 * window)``
#: items per batch, up to this ceiling. A long run of cheap items reaches big
#: batches (fewer round trips) without a short one pulling far ahead.
_UNSIZED_MAX = 4096


def check_options(
    *,
    chunksize: int | None,
    timeout: float | None,
    errors: str,
    workers: int | None = None,
) -> None:
    """Reject bad option values with a message that says what is allowed.

    The rules are those of :mod:`parkit._core._checks` (one per kind of
    option, the same everywhere): a wrong type is a ``TypeError``, a value out
    of range a ``ValueError``.
    """
    check_int(chunksize, "chunksize", none=True)
    time_limit(timeout)
    check_choice(errors, "errors", ("raise", "return"))
    check_int(workers, "workers", none=True)


class _ChunkSizer:
    """Chooses the size of the next batch.

    It starts at one item (the first result comes back at once) and follows the
    workers' measured time per item from completed batches towards
    :data:`_TARGET_BATCH_SECONDS` of work, growing at most :data:`_GROWTH` times
    per step, capped by the input's length when it has one, else by
    :data:`_UNSIZED_CAP`, which grows with the results that came back (up to
    :data:`_UNSIZED_MAX`).
    """

    def __init__(self, chunksize: int | None, workers: int, total: int | None) -> None:
        self.fixed = chunksize
        # The stdlib Pool's rule for a sized input: about four batches per
        # worker, so the tail is balanced.
        self.cap = _UNSIZED_CAP if total is None else max(1, math.ceil(total / (4 * workers)))
        self.size = chunksize or 1
        self._unsized = total is None
        # Batches in flight at most (the mapping layer's window): 2 per worker.
        self.window = 2 * max(1, workers)
        self._results = 0  # items whose outcome came back

    def observe(self, items: int, busy: float) -> None:
        if self.fixed is not None or items <= 0:
            return
        if self._unsized:
            self._results += items
            self.cap = min(_UNSIZED_MAX, max(_UNSIZED_CAP, self._results // (2 * self.window)))
        per_item = busy / items
        wanted = int(_TARGET_BATCH_SECONDS / per_item) if per_item > 0 else self.size * _GROWTH
        self.size = max(1, min(wanted, self.size * _GROWTH, self.cap))


class _Guard:
    """Wraps the input iterator; keeps the exception it raises for later."""

    def __init__(self, iterable: Iterable[Any]) -> None:
        self.error: BaseException | None = None
        self.it = self._guarded(iter(iterable))

    def _guarded(self, it: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from it
        except BaseException as e:
            self.error = e


def _progress_callback(
    progress: Progress, total: int | None
) -> tuple[Callable[[int], None] | None, Any]:
    if progress is False or progress is None:
        return None, None
    if progress is True:
        try:
            from tqdm.auto import tqdm  # noqa: PLC0415 - optional dependency
        except ImportError as e:
            raise ImportError(
                "progress=True needs tqdm: pip install 'parkit[progress]', "
                "or pass a callable progress=(done, total) -> None"
            ) from e
        bar = tqdm(total=total)
        return bar.update, bar
    if not callable(progress):
        raise TypeError(
            f"progress must be True, False or a callable (done, total), not {progress!r}"
        )
    done = 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)

    return report, None


def run_map(
    backend: Backend,
    fn: Callable[..., Any],
    iterable: Iterable[Any],
    *,
    star: bool,
    chunksize: int | None,
    timeout: float | None,
    errors: Errors,
    ordered: bool,
    progress: Progress = False,
) -> Iterator[list[Any]]:
    """Run ``fn`` over ``iterable`` on ``backend``; yield results in segments.

    Each yielded list holds consecutive results (input order when ``ordered``),
    with exceptions in place when ``errors="return"``. ``map`` extends a list
    with them; ``imap`` yields their items one by one. The calling thread
    blocks while it waits for a batch.
    """
    done_q: queue.SimpleQueue[Future[BatchResult]] = queue.SimpleQueue()
    core = map_core(
        backend, fn, iterable, star=star, chunksize=chunksize, timeout=timeout,
        errors=errors, ordered=ordered, progress=progress, notify=done_q.put,
    )  # fmt: skip
    return _drive(core, done_q.get)


def map_core(
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
    notify: Callable[[Future[BatchResult]], object],
    interrupting: tuple[type[BaseException], ...] = (),
) -> Core:
    """Check the options (raising now) and return the call's :data:`Core`.

    The core submits batches and registers ``notify`` as each batch future's
    done callback (called in whichever thread resolves it); it yields ``None``
    when it needs a finished future, which its driver waits for and sends in.
    An exception the driver throws in while waiting propagates after the
    call's work is dropped; ``KeyboardInterrupt`` and the ``interrupting``
    types also stop its running items (:meth:`Backend.interrupt`). Closing the
    core drops what has not started.
    """
    check_options(chunksize=chunksize, timeout=timeout, errors=errors)
    check_callable(fn)
    check_bool(ordered, "ordered")
    total = len(iterable) if isinstance(iterable, Sized) else None
    call = Call(new_call_id(), fn, star=star, timeout=timeout, stop_on_error=errors == "raise")
    if timeout is not None and not backend.stops_tasks:
        chunksize = 1  # the backend can time out only whole batches
    report, bar = _progress_callback(progress, total)
    return _core(
        backend, call, iterable, total, chunksize, errors, ordered, report, bar,
        notify, (KeyboardInterrupt, *interrupting),
    )  # fmt: skip


def _drive(core: Core, wait: Callable[[], Future[BatchResult]]) -> Iterator[list[Any]]:
    """The blocking driver: waits for finished futures in the calling thread."""
    try:
        step = next(core)
        while True:
            if step is not None:
                yield step
                step = next(core)
                continue
            try:
                finished = wait()
            except BaseException as e:
                # Ctrl-C while waiting: the core stops the work, then re-raises.
                step = core.throw(e)
            else:
                step = core.send(finished)
    except StopIteration:
        return
    finally:
        core.close()  # the consumer stopped early: the core drops the rest


def map_list(
    backend: Backend,
    fn: Callable[..., Any],
    iterable: Iterable[Any],
    *,
    star: bool,
    chunksize: int | None,
    timeout: float | None,
    errors: Errors,
    progress: Progress = False,
) -> list[Any]:
    """:func:`run_map` in input order, gathered into one list (``map``, ``starmap``)."""
    out: list[Any] = []
    for segment in run_map(
        backend, fn, iterable, star=star, chunksize=chunksize, timeout=timeout,
        errors=errors, ordered=True, progress=progress,
    ):  # fmt: skip
        out.extend(segment)
    return out


def _core(
    backend: Backend,
    call: Call,
    iterable: Iterable[Any],
    total: int | None,
    chunksize: int | None,
    errors: Errors,
    ordered: bool,
    report: Callable[[int], None] | None,
    bar: Any,
    notify: Callable[[Future[BatchResult]], object],
    interrupting: tuple[type[BaseException], ...],
) -> Core:
    sizer = _ChunkSizer(chunksize, backend.workers, total)
    window = sizer.window
    sequence = iterable if isinstance(iterable, list | tuple | range) else None
    guard = None if sequence is not None else _Guard(iterable)
    batches: dict[Future[BatchResult], Batch] = {}
    finished: dict[int, tuple[Batch, BatchResult]] = {}  # start -> outcome, not yet yielded
    pulled = 0  # items taken from the input
    cursor = 0  # next input index to yield (ordered)
    exhausted = False
    failed_at: int | None = None  # lowest failing index seen (errors="raise")
    try:
        while True:
            # Fill the window: pull the next items only when a slot is free.
            while not exhausted and failed_at is None and len(batches) + len(finished) < window:
                size = sizer.size
                if sequence is not None:
                    items = list(sequence[pulled : pulled + size])
                    exhausted = len(items) < size or pulled + size >= len(sequence)
                else:
                    assert guard is not None
                    items = list(itertools.islice(guard.it, size))
                    exhausted = len(items) < size
                if not items:
                    break
                batch = Batch(call, pulled, items)
                pulled += len(items)
                # parkit's own future: concurrent.futures (with logging) stays
                # unloaded on the map path (_backends/_future.py).
                future = backend.submit_batch(batch, BatchFuture())
                batches[future] = batch
                future.add_done_callback(notify)
            if not batches and not finished:
                break
            if batches:
                future = yield None  # the driver waits and sends it in
                batch = batches.pop(future)
                if future.cancelled():
                    continue  # only batches past a known failure are cancelled
                outcome = future.result()  # a backend failure raises here
                sizer.observe(len(batch.items), outcome.busy)
                if report is not None:
                    report(len(batch.items))
                if outcome.errors and errors == "raise":
                    first = batch.start + min(outcome.errors)
                    if failed_at is None or first < failed_at:
                        failed_at = first
                        # Batches after the failure need not run.
                        backend.forget(call, first)
                if not ordered:
                    if outcome.errors and errors == "raise":
                        raise outcome.errors[min(outcome.errors)]
                    yield _merged(outcome, errors)
                    continue
                finished[batch.start] = (batch, outcome)
            # Yield what is ready, in order.
            while cursor in finished:
                batch, outcome = finished.pop(cursor)
                cursor += len(batch.items)
                if outcome.errors and errors == "raise":
                    pos = min(outcome.errors)
                    if pos:
                        yield outcome.values[:pos]
                    raise outcome.errors[pos]
                yield _merged(outcome, errors)
        if guard is not None and guard.error is not None:
            raise guard.error  # the input raised after the items it produced
    except interrupting:
        # Ctrl-C, or the awaiting task was cancelled: stop the workers running
        # this call now (SPEC §1).
        backend.interrupt(call)
        raise
    finally:
        if bar is not None:
            bar.close()
        if batches:
            # Raised, or the consumer stopped early: what has not started need
            # not run; what runs finishes and is dropped.
            backend.forget(call, -1)


def _merged(outcome: BatchResult, errors: Errors) -> list[Any]:
    if not outcome.errors:
        return outcome.values
    assert errors == "return", "a failed batch is merged only with errors='return'"
    values = outcome.values
    for pos, exc in outcome.errors.items():
        values[pos] = exc
    return values
