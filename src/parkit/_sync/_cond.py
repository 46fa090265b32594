"""``Condition``, ``Event`` and ``Barrier`` across processes, with timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from .._core._checks import WORD_MAX, check_callable, check_int
from .._core._context import ContextLike
from ..errors import TooManyWaiters
from . import _segment
from ._base import FIRST_FREE, WAIT, WAITERS, SyncObject, check_timeout, until
from ._locks import Lock, RLock

__all__ = ["Barrier", "Condition", "ConditionStats", "Event"]

T = TypeVar("T")

# Condition: a table of waiter slots, notified oldest first.
_NEXT_TICKET: Final = FIRST_FREE
_SLOTS: Final = 16
_SLOT_WORDS: Final = 5  # pid, start, tid, ticket, state
_NSLOTS: Final = 96
_WAITING: Final = 1
_NOTIFIED: Final = 2

# Event.
_FLAG: Final = FIRST_FREE
_SETS: Final = FIRST_FREE + 1  # set() calls: a set-then-clear still wakes waiters

# Barrier.
_PARTIES: Final = FIRST_FREE
_COUNT: Final = FIRST_FREE + 1
_GENERATION: Final = FIRST_FREE + 2
_BROKEN: Final = FIRST_FREE + 3
_BROKEN_GENERATION: Final = FIRST_FREE + 4
_DRAINING: Final = FIRST_FREE + 5  # the last party runs the action: others keep out
_ARRIVED: Final = 16  # pids of this generation's arrivals
_MAX_LISTED: Final = 400


@dataclass(frozen=True)
class ConditionStats:
    """A snapshot of a :class:`Condition` (``statistics()``).

    Attributes:
        waiting_pids: pids of the threads waiting in ``wait()``, oldest first.
        lock_holder_pid: pid holding the underlying lock, or None.
    """

    waiting_pids: tuple[int, ...]
    lock_holder_pid: int | None


class Condition(SyncObject):
    """A condition variable shared by processes, over a parkit ``Lock``/``RLock``.

    As :class:`threading.Condition`: ``wait``, ``wait_for``, ``notify``,
    ``notify_all``, with the lock held. ``with cond:`` acquires the lock within
    ``timeout`` (the condition's, else the lock's) or raises
    :class:`parkit.LockTimeout`. Waiters are woken oldest first; a waiter whose
    process died is skipped. At most 96 threads may wait at once.

    Args:
        lock: a :class:`parkit.Lock` or :class:`parkit.RLock` (default: a new RLock).
        timeout: default limit for ``with`` and ``hold()``, in seconds.
        context: start-method name or ``multiprocessing`` context, validated
            and recorded as :attr:`start_method` (see :class:`parkit.Lock`).

    Raises:
        TypeError: ``lock`` is not a parkit ``Lock`` or ``RLock``.
    """

    _KIND = 5
    _WHAT = "Condition"

    def __init__(
        self,
        lock: Lock | None = None,
        *,
        timeout: float | None = None,
        context: ContextLike = None,
    ) -> None:
        if lock is None:
            self._require()  # before its lock: the error names the Condition
            lock = RLock(context=context)
        if not isinstance(lock, Lock):
            raise TypeError(
                "lock must be a parkit.Lock or parkit.RLock (the stdlib's locks cannot "
                f"be shared this way), not {type(lock).__name__}"
            )
        self._lock = lock
        self._create(timeout, context)

    def _extra_state(self) -> tuple[Any, ...]:
        return (self._lock,)

    def _set_extra_state(self, state: tuple[Any, ...]) -> None:
        (self._lock,) = state

    # -- the lock -----------------------------------------------------------------

    def _limit(self, timeout: float | None) -> float | None:
        if timeout is not None:
            return check_timeout(timeout)
        return self._timeout if self._timeout is not None else self._lock.timeout

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        """Acquire the underlying lock (see :meth:`parkit.Lock.acquire`).

        Args:
            block: False to try once without waiting.
            timeout: seconds to wait at most (None: as long as it takes).

        Returns:
            True if acquired, False if not in time.
        """
        return self._lock.acquire(block, timeout)

    def release(self) -> None:
        """Release the underlying lock."""
        self._lock.release()

    def hold(self, timeout: float | None = None) -> Any:
        """``with cond.hold(timeout=2):`` the lock, or :class:`parkit.LockTimeout`.

        Args:
            timeout: seconds to wait at most; None takes the condition's
                ``timeout=``, else the lock's.

        Returns:
            A context manager that acquires the lock on entry and releases it
            on exit.
        """
        return self._lock.hold(self._limit(timeout))

    def __enter__(self) -> bool:
        self._lock._enter(self._limit(None))
        return True

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    # -- waiting ------------------------------------------------------------------

    def _slots(self) -> range:
        return range(_SLOTS, _SLOTS + _NSLOTS * _SLOT_WORDS, _SLOT_WORDS)

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, wait for a notification, re-acquire the lock.

        Args:
            timeout: seconds to wait for the notification at most (None: as
                long as it takes). Re-acquiring the lock is not bounded by it,
                as in the stdlib.

        Returns:
            False if ``timeout`` expired first, else True.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
            parkit.TooManyWaiters: 96 threads (of all processes) already
                wait (a ``RuntimeError`` too).
        """
        timeout = check_timeout(timeout)
        if not self._lock._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        me = _segment.myself()
        key = (*me, threading.get_ident())
        with self._segment.guard() as words:
            slot = next((s for s in self._slots() if words[s] == 0), None)
            if slot is None:
                self._reap(words)
                slot = next((s for s in self._slots() if words[s] == 0), None)
            if slot is None:
                raise TooManyWaiters(
                    f"{_NSLOTS} threads already wait on this Condition, the most it can "
                    "hold; wake some (notify) or share the work among fewer threads",
                    limit=_NSLOTS,
                )
            ticket = int(words[_NEXT_TICKET])
            words[_NEXT_TICKET] += 1
            words[slot], words[slot + 1], words[slot + 2] = key
            words[slot + 3] = ticket
            words[slot + 4] = _WAITING
        depth = self._lock._release_save()
        notified = False
        try:

            def step(words: memoryview, check: bool) -> bool | Any:
                return True if words[slot + 4] == _NOTIFIED else WAIT

            notified = until(self._segment, step, timeout) is not WAIT
        finally:
            with self._segment.guard() as words:
                if words[slot + 3] == ticket and (words[slot], words[slot + 1]) == me:
                    notified = notified or words[slot + 4] == _NOTIFIED
                    for k in range(_SLOT_WORDS):
                        words[slot + k] = 0
            self._lock._acquire_restore(depth, None)
        return notified

    def _reap(self, words: memoryview) -> None:
        # Slots of waiters whose process died.
        for slot in self._slots():
            who = (int(words[slot]), int(words[slot + 1]))
            if who[0] and not _segment.is_alive(who):
                for k in range(_SLOT_WORDS):
                    words[slot + k] = 0

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        """Wait until ``predicate()`` is true; return its last value (as the stdlib).

        Args:
            predicate: called with the lock held; its result is taken as a bool.
            timeout: seconds to wait at most over all the waits (None: as long
                as it takes).

        Returns:
            The predicate's last value: falsy only if the time ran out.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
            parkit.TooManyWaiters: too many threads wait already.
        """
        timeout = check_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        while not result:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self.wait(remaining)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiting threads, oldest first.

        Args:
            n: how many waiters to wake at most.

        Raises:
            RuntimeError: the calling thread does not hold the lock.
        """
        if not self._lock._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        mypid = _segment.myself()[0]
        with self._segment.guard() as words:
            waiting = sorted(
                (s for s in self._slots() if words[s] != 0 and words[s + 4] == _WAITING),
                key=lambda s: words[s + 3],
            )
            woken = 0
            for slot in waiting:
                if woken >= n:
                    break
                who = (int(words[slot]), int(words[slot + 1]))
                if who[0] != mypid and not _segment.is_alive(who):
                    for k in range(_SLOT_WORDS):
                        words[slot + k] = 0
                    continue
                words[slot + 4] = _NOTIFIED
                woken += 1
            if woken:
                self._segment.changed(wake=bool(words[WAITERS]))

    def notify_all(self) -> None:
        """Wake every waiting thread."""
        self.notify(_NSLOTS)

    def statistics(self) -> ConditionStats:
        """Who waits and who holds the lock (a snapshot).

        Returns:
            A ``ConditionStats`` snapshot.
        """
        with self._segment.guard() as words:
            self._reap(words)
            waiting = sorted(
                (s for s in self._slots() if words[s] != 0 and words[s + 4] == _WAITING),
                key=lambda s: words[s + 3],
            )
            pids = tuple(int(words[s]) for s in waiting)
        return ConditionStats(waiting_pids=pids, lock_holder_pid=self._lock.statistics().holder_pid)


class Event(SyncObject):
    """A flag shared by processes (as :class:`threading.Event`).

    Args:
        timeout: default limit for :meth:`wait`, in seconds (None: no limit).
        context: start-method name or ``multiprocessing`` context, validated
            and recorded as :attr:`start_method` (see :class:`parkit.Lock`).
    """

    _KIND = 6
    _WHAT = "Event"

    def __init__(self, *, timeout: float | None = None, context: ContextLike = None) -> None:
        self._create(timeout, context)

    def is_set(self) -> bool:
        """Whether the flag is set.

        Returns:
            The flag, now.
        """
        return bool(self._segment.words[_FLAG])

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        with self._segment.guard() as words:
            words[_FLAG] = 1
            words[_SETS] += 1
            self._segment.changed(wake=bool(words[WAITERS]))

    def clear(self) -> None:
        """Clear the flag."""
        with self._segment.guard() as words:
            words[_FLAG] = 0

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set, at most ``timeout`` (default: ``timeout=``).

        Args:
            timeout: seconds to wait at most; None takes the event's
                ``timeout=`` (itself None by default: no limit).

        Returns:
            The flag: False only if the time ran out first (as the stdlib).
        """
        limit = self._timeout if timeout is None else check_timeout(timeout)
        sets = int(self._segment.words[_SETS])

        def step(words: memoryview, check: bool) -> bool | Any:
            # A set() since we came counts even if clear() followed (as threading).
            return True if words[_FLAG] or words[_SETS] != sets else WAIT

        return until(self._segment, step, limit) is not WAIT

    def _describe(self) -> str:
        return "set" if self.is_set() else "unset"


class Barrier(SyncObject):
    """A barrier shared by processes (as :class:`threading.Barrier`).

    ``wait()`` returns a distinct index in ``range(parties)`` to each party. If
    the time runs out first (``wait``'s ``timeout``, else the barrier's), the
    barrier breaks: every waiter gets :class:`threading.BrokenBarrierError`,
    whose message says how many parties had arrived and their pids.

    Args:
        parties: how many must call ``wait()`` (>= 1).
        action: called by one party (the last to arrive) before all go on.
        timeout: default limit for ``wait()``, in seconds.
        context: start-method name or ``multiprocessing`` context, validated
            and recorded as :attr:`start_method` (see :class:`parkit.Lock`).

    Raises:
        TypeError: ``parties`` is not an int, or ``action`` is not callable.
        ValueError: ``parties`` is less than 1.
    """

    _KIND = 7
    _WHAT = "Barrier"

    def __init__(
        self,
        parties: int,
        action: Callable[[], object] | None = None,
        *,
        timeout: float | None = None,
        context: ContextLike = None,
    ) -> None:
        check_int(parties, "parties", maximum=WORD_MAX)
        if action is not None:
            check_callable(action, "action")
        self._action = action
        words = self._create(timeout, context).words
        words[_PARTIES] = parties
        words[_BROKEN_GENERATION] = -1

    def _extra_state(self) -> tuple[Any, ...]:
        return (self._action,)

    def _set_extra_state(self, state: tuple[Any, ...]) -> None:
        (self._action,) = state

    def wait(self, timeout: float | None = None) -> int:
        """Wait until every party has called ``wait()``.

        Args:
            timeout: seconds to wait at most; None takes the barrier's
                ``timeout=``. When it runs out the barrier breaks.

        Returns:
            This party's arrival index, ``0`` to ``parties - 1``.

        Raises:
            threading.BrokenBarrierError: the barrier is or became broken (time
                ran out, ``abort()``, ``reset()`` while waiting, the action raised).
        """
        limit = self._timeout if timeout is None else check_timeout(timeout)
        total = limit
        deadline = None if limit is None else time.monotonic() + limit

        def arrive(words: memoryview, check: bool) -> tuple[int, int, bool] | Any:
            if words[_BROKEN]:
                raise threading.BrokenBarrierError("the barrier is broken")
            if words[_DRAINING]:
                return WAIT  # the previous generation's action still runs
            generation, index = int(words[_GENERATION]), int(words[_COUNT])
            words[_COUNT] += 1
            if index < _MAX_LISTED:
                words[_ARRIVED + index] = _segment.myself()[0]
            last = words[_COUNT] == words[_PARTIES]
            if last and self._action is None:
                self._next_generation(words)
            elif last:
                words[_DRAINING] = 1
            return generation, index, last

        arrived = until(self._segment, arrive, limit)
        if arrived is WAIT:
            raise threading.BrokenBarrierError(
                f"the barrier's previous action was still running after {limit:g} s"
            )
        generation, index, last = cast(tuple[int, int, bool], arrived)
        if last:
            if self._action is not None:
                try:
                    self._action()
                except BaseException:
                    self._break(generation)
                    raise
                with self._segment.guard() as words:
                    self._next_generation(words)
            return index
        if deadline is not None:
            limit = max(0.0, deadline - time.monotonic())

        def step(words: memoryview, check: bool) -> bool | Any:
            if words[_BROKEN_GENERATION] == generation:
                raise threading.BrokenBarrierError("the barrier was broken while waiting")
            return True if words[_GENERATION] != generation else WAIT

        if until(self._segment, step, limit) is not WAIT:
            return index
        with self._segment.guard() as words:
            if words[_GENERATION] != generation and words[_BROKEN_GENERATION] != generation:
                return index
            count = int(words[_COUNT])
            pids = [int(words[_ARRIVED + i]) for i in range(min(count, _MAX_LISTED))]
            parties = int(words[_PARTIES])
        self._break(generation)
        raise threading.BrokenBarrierError(
            f"the barrier timed out after {total:g} s with {count} of {parties} "
            f"parties arrived (pids {', '.join(map(str, pids))}); it is now broken"
        )

    def _next_generation(self, words: memoryview) -> None:
        words[_GENERATION] += 1
        words[_COUNT] = 0
        words[_DRAINING] = 0
        self._segment.changed(wake=bool(words[WAITERS]))

    def _break(self, generation: int) -> None:
        with self._segment.guard() as words:
            if words[_GENERATION] == generation:
                words[_BROKEN] = 1
                words[_BROKEN_GENERATION] = generation
                words[_DRAINING] = 0
                self._segment.changed(wake=bool(words[WAITERS]))

    def reset(self) -> None:
        """Back to the empty state; parties waiting now get BrokenBarrierError."""
        with self._segment.guard() as words:
            if words[_COUNT] and not words[_BROKEN]:
                words[_BROKEN_GENERATION] = words[_GENERATION]
            words[_GENERATION] += 1
            words[_COUNT] = 0
            words[_BROKEN] = 0
            words[_DRAINING] = 0
            self._segment.changed(wake=bool(words[WAITERS]))

    def abort(self) -> None:
        """Break the barrier: waiting and later ``wait()`` calls raise."""
        with self._segment.guard() as words:
            words[_BROKEN] = 1
            words[_BROKEN_GENERATION] = words[_GENERATION]
            words[_DRAINING] = 0
            self._segment.changed(wake=bool(words[WAITERS]))

    @property
    def parties(self) -> int:
        """How many parties must arrive."""
        return int(self._segment.words[_PARTIES])

    @property
    def n_waiting(self) -> int:
        """How many parties wait now."""
        words = self._segment.words
        return 0 if words[_BROKEN] else int(words[_COUNT])

    @property
    def broken(self) -> bool:
        """Whether the barrier is broken."""
        return bool(self._segment.words[_BROKEN])

    def _describe(self) -> str:
        return f"{self.n_waiting}/{self.parties} waiting{', broken' if self.broken else ''}"
