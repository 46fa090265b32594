"""``parkit.Queue[T]``: a FIFO queue between processes, in shared memory.

The items live in the queue's own shared-memory file, not in a pipe::

    put(item)                                                        get()
    ---------                                                        -----
    data = pickle(item)    (in the caller: errors raise here)
    with guard:            header page  | HEAD | TAIL | COUNT | ...   with guard:
      append [len|data] -> data area    |[len|data][len|data]...|  ->   copy out the frame at HEAD
      TAIL += size, COUNT += 1                                          HEAD += size, COUNT -= 1
      wake getters                                                      wake putters
                                                                     item = unpickle(data)

* ``put`` returns once the bytes are in shared memory. There is no feeder thread
  and no pipe to flush, so a process that put items and exits never blocks its
  parent's ``join()`` (the stdlib's "joining processes that use queues"
  deadlock, FAULTS F10), and an unpicklable item raises in ``put`` (gh-84376,
  F27).
* A frame becomes visible only when TAIL moves past it, after it was written
  whole; a producer killed half-way leaves nothing behind, so ``get`` never
  blocks on a truncated frame (F40).
* The data area is the region ``[HEAD, TAIL)``, grown on demand (the file is
  extended and every process remaps it); when the live region fits in the
  consumed half, it is moved to the front instead. An empty queue restarts at
  offset 0, and gives back memory once it maps over 4x what its last busy
  spell needed.
* ``close()`` by any process closes the queue for all of them.
"""

from __future__ import annotations

import pickle
import queue
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from .._core import _segments, _wire
from .._core._checks import check_maxsize
from .._core._context import ContextLike
from ..errors import QueueClosed
from . import _segment
from ._base import (
    FIRST_FREE,
    OPS,
    WAIT,
    WAITERS,
    SyncObject,
    check_timeout,
    reap_waiters,
    until,
)

__all__ = ["Queue", "QueueStats"]

T = TypeVar("T")

_SEQ: Final = _segment.SEQ
_HEAD: Final = FIRST_FREE
_TAIL: Final = FIRST_FREE + 1
_COUNT: Final = FIRST_FREE + 2
_MAXSIZE: Final = FIRST_FREE + 3
_CAPACITY: Final = FIRST_FREE + 4
_CLOSED: Final = FIRST_FREE + 5
_GETS: Final = FIRST_FREE + 6
_HIGH_WATER: Final = FIRST_FREE + 7  # most bytes live since the queue was last empty
_GEN: Final = FIRST_FREE + 8  # the data area's generation: every resize moves it on

_INITIAL_CAPACITY = 64 * 1024
_FRAME = struct.Struct("<Q")

# Items put() pickles directly (see _wire.ATOMS).
_ATOMS: Final = _wire.ATOMS
_SIZED: Final = _wire.SIZED
_SMALL: Final = _wire.SMALL
_PROTOCOL: Final = _wire.PROTOCOL
_dumps = pickle.dumps


@dataclass(frozen=True)
class QueueStats:
    """A snapshot of a :class:`Queue` (``statistics()``).

    Attributes:
        size: items in the queue.
        nbytes: bytes those items take in shared memory.
        capacity: bytes of shared memory the queue has mapped for them now.
        maxsize: the bound it was created with (0: unbounded).
        closed: whether it was closed.
        waiters: threads blocked in ``put`` or ``get``, in every process.
        puts: items put so far.
        gets: items taken so far.
    """

    size: int
    nbytes: int
    capacity: int
    maxsize: int
    closed: bool
    waiters: int
    puts: int
    gets: int


class Queue(SyncObject, Generic[T]):
    """A FIFO queue shared by processes: ``parkit.Queue[int]()``.

    The stdlib's surface (``put``, ``get``, ``put_nowait``, ``get_nowait``,
    ``qsize``, ``empty``, ``full``, ``close``) with these differences:

    * ``put`` pickles the item in the caller: an unpicklable item raises
      :class:`parkit.SerializationError` there (objects travel by cloudpickle
      where plain pickle can't, so lambdas work);
    * ``get(timeout=...)`` returns within its timeout, whatever producers died
      doing; a producer that exits never blocks a ``join()``;
    * ``close()`` closes the queue for every process: a later ``put`` raises
      ``ValueError``; ``get`` drains what is left, then raises
      :class:`parkit.QueueClosed` (``for item in q`` just ends);
    * ``qsize()`` is exact on every OS;
    * it can be passed to :class:`parkit.Process`, to pool tasks and through
      other queues, under every start method.

    Args:
        maxsize: at most this many items (``put`` blocks, then raises
            ``queue.Full``); 0 for no bound.
        context: start-method name or ``multiprocessing`` context, validated
            and recorded as :attr:`start_method`; the queue works with
            processes of every start method.

    Raises:
        TypeError: ``maxsize`` is not an int.
        ValueError: ``maxsize`` is negative.
    """

    _KIND = 8
    _WHAT = "Queue"
    _DATA_AREA = True

    def __init__(self, maxsize: int = 0, *, context: ContextLike = None) -> None:
        check_maxsize(maxsize)
        segment = self._create(None, context)
        segment.words[_MAXSIZE] = maxsize
        with segment.guard() as words:
            self._grow_to(words, _INITIAL_CAPACITY)

    # -- the data area --------------------------------------------------------------

    def _grow_to(self, words: memoryview, capacity: int) -> None:
        self._resize(words, capacity, keep=int(words[_TAIL]))

    def _resize(self, words: memoryview, capacity: int, keep: int) -> None:
        # A new generation of the data area, its first ``keep`` bytes kept. Every
        # process remaps it when it sees the new generation (Segment.data).
        segment = self._segment
        gen = int(words[_GEN]) + 1
        if _segments.FILES and capacity < words[_CAPACITY]:
            # Announce the smaller size before cutting the file: no process
            # then touches pages past its end (a SIGBUS).
            words[_CAPACITY], words[_GEN] = capacity, gen
        try:
            segment.resize_data(gen, capacity, keep)
        except OSError as e:
            raise OSError(
                e.errno,
                f"the Queue needs {capacity} bytes of shared memory and "
                f"could not get them: {e.strerror}",
            ) from None
        words[_CAPACITY], words[_GEN] = capacity, gen
        # Only now: a process killed before the announcement leaves the old
        # area in use, and its name to attach by.
        segment.drop_data(gen - 1)

    def _append(self, words: memoryview, data: bytes) -> None:
        # The hot path of put(): every word read once, the frame written whole
        # before TAIL moves past it.
        length = len(data)
        size = (_FRAME.size + length + 7) & ~7
        head, tail, capacity = words[_HEAD], words[_TAIL], words[_CAPACITY]
        if tail + size > capacity:
            live = tail - head
            if head >= live and live + size <= capacity:
                # Move the live region to the front; it does not overlap its
                # old place, so a process killed mid-copy corrupts nothing.
                area = self._segment.data(int(words[_GEN]), int(capacity))
                assert area is not None
                area[0:live] = area[head:tail]
                words[_HEAD] = head = 0
                words[_TAIL] = tail = live
            else:
                new = capacity
                while tail + size > new:
                    new *= 2
                self._grow_to(words, new)
                capacity = new
        segment = self._segment
        gen = words[_GEN]
        area = segment._data if segment.data_gen == gen else segment.data(gen, capacity)
        assert area is not None
        _FRAME.pack_into(area, tail, length)
        start = tail + _FRAME.size
        area[start : start + length] = data
        end = tail + size
        words[_TAIL] = end
        words[_COUNT] += 1
        words[OPS] += 1
        words[_HIGH_WATER] = max(words[_HIGH_WATER], end - head)

    def _take(self, words: memoryview) -> bytes:
        # The hot path of get(): one copy, out of shared memory into a bytes.
        segment = self._segment
        capacity, gen = words[_CAPACITY], words[_GEN]
        area = segment._data if segment.data_gen == gen else segment.data(gen, capacity)
        assert area is not None
        head = words[_HEAD]
        (length,) = _FRAME.unpack_from(area, head)
        start = head + _FRAME.size
        data = area[start : start + length]  # a slice of an mmap is a bytes
        head = (start + length + 7) & ~7
        if head >= words[_TAIL]:
            words[_HEAD] = words[_TAIL] = 0
            words[_COUNT] = 0
            # Give back memory only when far more is mapped than the last busy
            # spell needed: a queue that passes one big item at a time would
            # otherwise grow and shrink for every item.
            need = _INITIAL_CAPACITY
            while need < 2 * words[_HIGH_WATER]:
                need *= 2
            words[_HIGH_WATER] = 0
            if capacity > 4 * need:
                self._resize(words, need, keep=0)
        else:
            words[_HEAD] = head
            words[_COUNT] -= 1
        words[_GETS] += 1
        return data

    # -- put and get ----------------------------------------------------------------

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` at the end, waiting for room in a bounded queue.

        Args:
            item: any object cloudpickle can pickle; it is pickled now, in
                the caller.
            block: False to try once without waiting for room.
            timeout: seconds to wait for room at most (None: as long as it
                takes).

        Raises:
            SerializationError: ``item`` can't be pickled (nothing was put).
            queue.Full: no room within ``timeout`` (or at once, ``block=False``).
            ValueError: the queue was closed.
        """
        if not block:
            timeout = 0.0
        elif timeout is not None:
            timeout = check_timeout(timeout)
        kind = type(item)
        if kind in _ATOMS or (kind in _SIZED and len(item) <= _SMALL):  # type: ignore[arg-type]
            # What parkit's pickler would write for these, without building one
            # (three quarters of a small put's pickling cost). Not for large
            # strings and bytes: pickle.dumps() grows its own buffer (0.5 ms for
            # 1 MiB), where parkit's pickler writes them through to a BytesIO.
            data = _dumps(item, _PROTOCOL)
        else:
            data = _wire.dumps_or_raise(item, "the item put on the Queue")
        # The first try inline (until() would try the same way first): most
        # puts find room, and this is a hot path.
        segment = self._segment
        segment.lock()
        try:
            words = segment.words
            if words[_CLOSED]:
                raise ValueError("put on a closed Queue")
            maxsize = words[_MAXSIZE]
            if not maxsize or words[_COUNT] < maxsize:
                self._append(words, data)
                # segment.changed(), inline.
                words[_SEQ] = (words[_SEQ] + 1) & 0x7FFF_FFFF
                if words[WAITERS]:
                    segment._wake_pending = True
                return
            seen = int(words[_SEQ])
        finally:
            segment.unlock()
        if timeout == 0:
            raise queue.Full

        def step(words: memoryview, check: bool) -> bool | Any:
            if words[_CLOSED]:
                raise ValueError("put on a closed Queue")
            if words[_COUNT] >= words[_MAXSIZE]:
                return WAIT
            self._append(words, data)
            segment.changed(wake=bool(words[WAITERS]))
            return True

        if until(segment, step, timeout, seen) is WAIT:
            raise queue.Full

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the first item, waiting for one.

        Args:
            block: False to try once without waiting.
            timeout: seconds to wait at most (None: as long as it takes).

        Returns:
            The item, unpickled.

        Raises:
            queue.Empty: nothing came within ``timeout`` (or at once, ``block=False``).
            QueueClosed: the queue is closed and drained.
            SerializationError: the item could not be unpickled (it is consumed;
                the queue goes on).
        """
        if not block:
            timeout = 0.0
        elif timeout is not None:
            timeout = check_timeout(timeout)
        segment = self._segment
        # The first try inline, as in put().
        segment.lock()
        try:
            words = segment.words
            if words[_HEAD] != words[_TAIL]:
                data = self._take(words)
                # segment.changed(), inline.
                words[_SEQ] = (words[_SEQ] + 1) & 0x7FFF_FFFF
                if words[WAITERS]:
                    segment._wake_pending = True
            elif words[_CLOSED]:
                raise QueueClosed("the Queue is closed and drained")
            elif timeout == 0:
                raise queue.Empty
            else:
                data = None  # wait for one, below
                seen = int(words[_SEQ])
        finally:
            segment.unlock()
        if data is None:

            def step(words: memoryview, check: bool) -> bytes | Any:
                if words[_HEAD] != words[_TAIL]:
                    data = self._take(words)
                    segment.changed(wake=bool(words[WAITERS]))
                    return data
                if words[_CLOSED]:
                    raise QueueClosed("the Queue is closed and drained")
                return WAIT

            taken = until(segment, step, timeout, seen)
            if taken is WAIT:
                raise queue.Empty
            assert isinstance(taken, bytes)
            data = taken
        item: T = _wire.loads_or_raise(data, "an item taken from the Queue")
        return item

    def put_nowait(self, item: T) -> None:
        """``put(item, block=False)``.

        Args:
            item: the object to put.
        """
        self.put(item, block=False)

    def get_nowait(self) -> T:
        """``get(block=False)``.

        Returns:
            The first item; ``queue.Empty`` if there is none now.
        """
        return self.get(block=False)

    def __iter__(self) -> Iterator[T]:
        """Take items until the queue is closed and drained."""
        while True:
            try:
                yield self.get()
            except QueueClosed:
                return

    # -- state ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the queue for every process (idempotent); waiters wake up."""
        with self._segment.guard() as words:
            words[_CLOSED] = 1
            self._segment.changed(wake=bool(words[WAITERS]))

    @property
    def closed(self) -> bool:
        """Whether some process closed it."""
        return bool(self._segment.words[_CLOSED])

    def qsize(self) -> int:
        """Items in the queue now (exact, on every OS).

        Returns:
            The number of items.
        """
        return int(self._segment.words[_COUNT])

    def empty(self) -> bool:
        """Whether it holds no item now.

        Returns:
            True if ``qsize()`` is 0.
        """
        return self.qsize() == 0

    def full(self) -> bool:
        """Whether a bounded queue is at its ``maxsize`` now.

        Returns:
            True if a ``put`` would have to wait.
        """
        words = self._segment.words
        return bool(words[_MAXSIZE]) and words[_COUNT] >= words[_MAXSIZE]

    @property
    def maxsize(self) -> int:
        """The bound (0: none)."""
        return int(self._segment.words[_MAXSIZE])

    def statistics(self) -> QueueStats:
        """Size, memory, waiters and totals (a snapshot).

        Returns:
            A ``QueueStats`` snapshot.
        """
        with self._segment.guard() as words:
            reap_waiters(words)
            return QueueStats(
                size=int(words[_COUNT]),
                nbytes=int(words[_TAIL] - words[_HEAD]),
                capacity=int(words[_CAPACITY]),
                maxsize=int(words[_MAXSIZE]),
                closed=bool(words[_CLOSED]),
                waiters=int(words[WAITERS]),
                puts=int(words[OPS]),
                gets=int(words[_GETS]),
            )

    def _describe(self) -> str:
        stats = self.statistics()
        return f"size={stats.size}{' closed' if stats.closed else ''}"

    # The stdlib's feeder-thread controls: nothing to join or cancel here.
    def join_thread(self) -> None:
        """No-op (there is no feeder thread); kept for ``multiprocessing`` code."""

    def cancel_join_thread(self) -> None:
        """No-op (there is no feeder thread); kept for ``multiprocessing`` code."""
