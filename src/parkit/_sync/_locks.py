"""``Lock``, ``RLock``, ``Semaphore``, ``BoundedSemaphore`` across processes.

Each remembers who holds it (pid, process start time, thread, since when), so a
timeout can say who is in the way, and a holder that died is found by the next
process that wants the lock instead of being waited for in vain (the stdlib
waits for ever: gh-88304, FAULTS F25).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from .._core._checks import WORD_MAX, check_int
from .._core._context import ContextLike
from ..errors import LockAbandoned, LockTimeout
from . import _segment
from ._base import (
    ABANDONED,
    FIRST_FREE,
    OPS,
    WAIT,
    WAITERS,
    Abandoned,
    SyncObject,
    check_timeout,
    reap_waiters,
    until,
)

__all__ = ["BoundedSemaphore", "Lock", "LockStats", "RLock", "Semaphore", "SemaphoreStats"]

_SEQ: Final = _segment.SEQ

T = TypeVar("T")

# Lock and RLock words.
_COUNT: Final = FIRST_FREE  # 0 free; RLock: recursion depth
_PID: Final = FIRST_FREE + 1
_START: Final = FIRST_FREE + 2
_TID: Final = FIRST_FREE + 3
_SINCE: Final = FIRST_FREE + 4  # time.monotonic_ns() when acquired

# Semaphore words, then a table of holder slots.
_VALUE: Final = FIRST_FREE
_INITIAL: Final = FIRST_FREE + 1
_BOUND: Final = FIRST_FREE + 2  # 0: unbounded
_NHELD: Final = FIRST_FREE + 3  # holder slots in use
_SLOTS: Final = 16
_SLOT_WORDS: Final = 4  # pid, start, tid, since
_NSLOTS: Final = 120


@dataclass(frozen=True)
class LockStats:
    """A snapshot of a :class:`Lock` or :class:`RLock` (``statistics()``).

    Attributes:
        locked: whether someone holds it.
        holder_pid: the holder's pid, or None.
        holder_alive: whether the holder is alive, or None when free.
        held_for: seconds the holder has held it, or None when free.
        depth: how many times the holder acquired it (RLock; 1 for Lock).
        waiters: threads waiting for it, in every process.
        acquisitions: successful acquisitions so far.
        abandoned: holds released because their holder died.
    """

    locked: bool
    holder_pid: int | None
    holder_alive: bool | None
    held_for: float | None
    depth: int
    waiters: int
    acquisitions: int
    abandoned: int


@dataclass(frozen=True)
class SemaphoreStats:
    """A snapshot of a :class:`Semaphore` (``statistics()``).

    Attributes:
        value: units available now.
        initial: the value it was created with.
        holder_pids: pids holding a unit taken by ``with``/``hold()``, oldest
            first (one entry per unit).
        waiters: threads waiting for it, in every process.
        acquisitions: successful acquisitions so far.
        abandoned: units given back because their holder died.
    """

    value: int
    initial: int
    holder_pids: tuple[int, ...]
    waiters: int
    acquisitions: int
    abandoned: int


def _held_for(since_ns: int) -> float:
    return max(0.0, (time.monotonic_ns() - since_ns) / 1e9)


class _Acquirable(SyncObject):
    """What ``with``, ``hold()`` and ``acquire()`` share."""

    def _try(self, words: memoryview, check: bool) -> bool | Any:
        raise NotImplementedError

    def _try_entered(self, words: memoryview, check: bool) -> bool | Any:
        # What ``with`` and ``hold()`` take (a Semaphore records the holder).
        return self._try(words, check)

    def _release_entered(self) -> None:
        self.release()

    def _blocked_by(self) -> LockTimeout:
        raise NotImplementedError

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        """Acquire it, as the stdlib does: True if acquired, False if not in time.

        Args:
            block: False to try once without waiting.
            timeout: seconds to wait at most (None: as long as it takes; the
                object's own ``timeout=`` is *not* applied here, as in the
                stdlib). A holder that died is found within about 0.2 s.

        Returns:
            True if acquired, False if not within ``timeout`` (or at once,
            ``block=False``).

        Raises:
            LockAbandoned: a holder died holding it; its hold has been released
                (see :class:`parkit.LockAbandoned`).
            ValueError: ``timeout`` negative (other than the stdlib's ``-1``) or
                NaN, or given with ``block=False`` (as the stdlib).
            TypeError: ``timeout`` is not a number.
        """
        if timeout == -1:  # the stdlib's "no limit"
            timeout = None
        if not block:
            if timeout is not None:
                raise ValueError("can't specify a timeout for a non-blocking call")  # the stdlib's
            timeout = 0.0
        elif timeout is not None:
            timeout = check_timeout(timeout)
        if timeout == 0:  # one try, that looks for a dead holder too
            return until(self._segment, self._try, 0.0) is not WAIT
        # The first try inline, without the dead-holder check (until() would
        # try the same way first): a hand-off's acquire mostly succeeds here.
        segment = self._segment
        words = segment.words
        segment.lock()
        try:
            if self._try(words, False) is True:
                return True
            seen = int(words[_SEQ])
        finally:
            segment.unlock()
        return until(segment, self._try, timeout, seen) is not WAIT

    def hold(self, timeout: float | None = None) -> contextlib.AbstractContextManager[None]:
        """``with obj.hold(timeout=2):`` acquire or raise LockTimeout; release after.

        Args:
            timeout: seconds to wait at most; None takes the object's ``timeout=``.

        Returns:
            A context manager that acquires on entry and releases on exit.

        Raises:
            LockTimeout: not acquired in time; the message names the holder.
            LockAbandoned: a holder died holding it.
        """
        return self._holding(self._timeout if timeout is None else check_timeout(timeout))

    @contextlib.contextmanager
    def _holding(self, timeout: float | None) -> Iterator[None]:
        self._enter(timeout)
        try:
            yield
        finally:
            self._release_entered()

    def _enter(self, timeout: float | None) -> None:
        if until(self._segment, self._try_entered, timeout) is WAIT:
            assert timeout is not None
            error = self._blocked_by()
            error.timeout = timeout
            raise error

    def __enter__(self) -> bool:
        self._enter(self._timeout)
        return True

    def __exit__(self, *exc: object) -> None:
        self._release_entered()

    def release(self) -> None:
        raise NotImplementedError


class Lock(_Acquirable):
    """A lock shared by processes, that knows its holder.

    ``with lock:`` waits at most ``timeout`` seconds (None: as long as it takes)
    and then raises :class:`parkit.LockTimeout` naming the holder's pid, whether
    it is alive and for how long it has held the lock. ``acquire()`` keeps the
    stdlib's ``bool``. A holder that died while holding the lock is found by the
    next process that wants it (within about 0.2 s of waiting), which gets
    :class:`parkit.LockAbandoned` (or, with ``abandoned="recover"``, the lock).

    Can be passed to :class:`parkit.Process` and to pool tasks under every
    start method. Not re-entrant: see :class:`RLock`. Any thread or process may
    release it, as with the stdlib's ``multiprocessing.Lock``.

    Args:
        timeout: default limit for ``with`` and ``hold()``, in seconds.
        abandoned: ``"raise"`` (default) or ``"recover"``: what the next
            acquirer does when the holder died holding the lock.
        context: start-method name or ``multiprocessing`` context, validated
            and recorded as :attr:`start_method`; the lock works with
            processes of every start method.
    """

    _KIND = 1
    _WHAT = "Lock"
    _REENTRANT = False

    def __init__(
        self,
        *,
        timeout: float | None = None,
        abandoned: Abandoned = "raise",
        context: ContextLike = None,
    ) -> None:
        self._create(timeout, context, abandoned)

    def _try(self, words: memoryview, check: bool) -> bool | Any:
        me = _segment.myself()
        tid = threading.get_ident()
        if words[_COUNT] == 0:
            self._take(words, me, tid)
            return True
        if self._REENTRANT and (words[_PID], words[_START], words[_TID]) == (*me, tid):
            words[_COUNT] += 1
            words[OPS] += 1
            return True
        holder = (int(words[_PID]), int(words[_START]))
        if check and not _segment.is_alive(holder):
            return self._abandon(words, holder, me, tid)
        return WAIT

    def _take(self, words: memoryview, me: _segment.Identity, tid: int) -> None:
        words[_COUNT] = 1
        words[_PID], words[_START] = me
        words[_TID] = tid
        words[_SINCE] = time.monotonic_ns()
        words[OPS] += 1

    def _abandon(
        self, words: memoryview, holder: _segment.Identity, me: _segment.Identity, tid: int
    ) -> bool:
        held = _held_for(int(words[_SINCE]))
        words[ABANDONED] += 1
        if self._recover:
            self._take(words, me, tid)
            return True
        self._free(words)
        raise LockAbandoned(
            f"{self._WHAT} {self._segment.name}: its holder, pid {holder[0]}, died while "
            f"holding it (for {held:.1f} s); the lock is free again, but what it "
            "protected may be inconsistent (create it with abandoned='recover' to "
            "take it over silently)",
            holder_pid=holder[0],
            held_for=held,
        )

    def _free(self, words: memoryview) -> None:
        for index in (_COUNT, _PID, _START, _TID, _SINCE):
            words[index] = 0
        self._segment.changed(wake=bool(words[WAITERS]))

    def _blocked_by(self) -> LockTimeout:
        with self._segment.guard() as words:
            pid, start, tid = int(words[_PID]), int(words[_START]), int(words[_TID])
            since = int(words[_SINCE])
            locked = words[_COUNT] != 0
        if not locked:
            return LockTimeout(
                f"could not acquire the {self._WHAT} in time (it was released just "
                "after the deadline)",
                0.0,
            )
        alive = _segment.is_alive((pid, start))
        held = _held_for(since)
        who = f"pid {pid} ({'alive' if alive else 'dead'})"
        if (pid, start) == _segment.myself():
            same = tid == threading.get_ident()
            who = f"pid {pid}: this process, " + (
                f"this same thread (a {self._WHAT} is not re-entrant: use RLock)"
                if same and not self._REENTRANT
                else ("this same thread" if same else f"thread {tid}")
            )
        return LockTimeout(
            f"could not acquire the {self._WHAT} {self._segment.name} in time: "
            f"held by {who} for {held:.1f} s",
            0.0,
            holder_pid=pid,
            holder_alive=alive,
            held_for=held,
        )

    def release(self) -> None:
        """Release it.

        Raises:
            ValueError: it is not held (as ``multiprocessing.Lock``).
        """
        segment = self._segment
        segment.lock()
        try:
            words = segment.words
            if words[_COUNT] == 0:
                raise ValueError(f"release of an unlocked {self._WHAT}")
            # _free(), inline: the hot half of a hand-off.
            words[_COUNT] = words[_PID] = words[_START] = words[_TID] = words[_SINCE] = 0
            words[_SEQ] = (words[_SEQ] + 1) & 0x7FFF_FFFF
            if words[WAITERS]:
                segment._wake_pending = True
        finally:
            segment.unlock()

    def _run_if_free(self, fn: Callable[[], T]) -> tuple[bool, T | None]:
        """Run ``fn`` inside the guard if no other thread or process holds the lock.

        While the guard is held nobody can take the lock, so ``fn`` runs as if
        under it, at the cost of the guard alone (``Value.add``'s fast path).
        Returns ``(False, None)`` without running it when someone else holds
        the lock (or a dead holder does: the caller then takes the lock the
        normal way, which reports it).
        """
        segment = self._segment
        segment.lock()
        try:
            words = segment.words
            if words[_COUNT] and (words[_PID], words[_START], words[_TID]) != (
                *_segment.myself(),
                threading.get_ident(),
            ):
                return False, None
            return True, fn()
        finally:
            segment.unlock()

    def _is_owned(self) -> bool:
        words = self._segment.words
        me = _segment.myself()
        return bool(words[_COUNT]) and (words[_PID], words[_START], words[_TID]) == (
            *me,
            threading.get_ident(),
        )

    def _release_save(self) -> int:
        # Condition.wait: release every level at once, remembering how many.
        with self._segment.guard() as words:
            depth = int(words[_COUNT])
            self._free(words)
        return depth

    def _acquire_restore(self, depth: int, timeout: float | None) -> bool:
        if not self.acquire(timeout=timeout):
            return False
        with self._segment.guard() as words:
            words[_COUNT] = depth
        return True

    def locked(self) -> bool:
        """Whether someone holds it (a snapshot).

        Returns:
            True if a thread of any process holds it now.
        """
        return bool(self._segment.words[_COUNT])

    def statistics(self) -> LockStats:
        """Who holds it, for how long, and how many wait (a snapshot).

        Returns:
            A ``LockStats`` snapshot.
        """
        with self._segment.guard() as words:
            reap_waiters(words)
            depth, pid, start = int(words[_COUNT]), int(words[_PID]), int(words[_START])
            since, waiters = int(words[_SINCE]), int(words[WAITERS])
            acquisitions, abandoned = int(words[OPS]), int(words[ABANDONED])
        return LockStats(
            locked=depth > 0,
            holder_pid=pid if depth else None,
            holder_alive=_segment.is_alive((pid, start)) if depth else None,
            held_for=_held_for(since) if depth else None,
            depth=depth,
            waiters=waiters,
            acquisitions=acquisitions,
            abandoned=abandoned,
        )

    def _describe(self) -> str:
        stats = self.statistics()
        if not stats.locked:
            return "unlocked"
        return f"locked by pid {stats.holder_pid} for {stats.held_for:.1f} s"


class RLock(Lock):
    """A re-entrant :class:`Lock`: its holding thread may acquire it again.

    It is released when the holder has released it as many times as it
    acquired it; only the holding thread may release it (``RuntimeError``
    otherwise, as the stdlib).

    Args:
        timeout: default limit for ``with`` and ``hold()``, in seconds.
        abandoned: ``"raise"`` (default) or ``"recover"``, as for :class:`Lock`.
        context: start-method name or ``multiprocessing`` context, validated
            and recorded as :attr:`start_method`.
    """

    _KIND = 2
    _WHAT = "RLock"
    _REENTRANT = True

    def release(self) -> None:
        """Release one level of it.

        Raises:
            RuntimeError: the calling thread does not hold it.
        """
        me = _segment.myself()
        with self._segment.guard() as words:
            if words[_COUNT] == 0 or (words[_PID], words[_START], words[_TID]) != (
                *me,
                threading.get_ident(),
            ):
                raise RuntimeError("cannot release un-acquired lock")
            if words[_COUNT] > 1:
                words[_COUNT] -= 1
            else:
                self._free(words)


class Semaphore(_Acquirable):
    """A counter shared by processes: ``acquire`` takes a unit, ``release`` adds one.

    ``with sem:`` waits at most ``timeout`` seconds, then raises
    :class:`parkit.LockTimeout` naming the pids holding its units. Units taken
    by ``with sem:`` or ``sem.hold()`` are recorded with their holder (up to
    120 at a time), since the same thread gives them back; a holder that dies
    inside the block has its unit given back and reported
    (:class:`parkit.LockAbandoned`, or silently with ``abandoned="recover"``).
    ``acquire()`` and ``release()`` on their own are plain counter operations
    that may happen in different processes (a bounded buffer, a signal), so
    their units belong to no one.

    Args:
        value: the initial number of units (>= 0).
        timeout: default limit for ``with`` and ``hold()``, in seconds.
        abandoned: ``"raise"`` (default) or ``"recover"``.
        context: start-method name or ``multiprocessing`` context, validated
            and recorded as :attr:`start_method` (see :class:`Lock`).

    Raises:
        TypeError: ``value`` is not an int.
        ValueError: ``value`` is negative.
    """

    _KIND = 3
    _WHAT = "Semaphore"
    _BOUNDED = False

    def __init__(
        self,
        value: int = 1,
        *,
        timeout: float | None = None,
        abandoned: Abandoned = "raise",
        context: ContextLike = None,
    ) -> None:
        check_int(value, "value", minimum=0, maximum=WORD_MAX)
        words = self._create(timeout, context, abandoned).words
        words[_VALUE] = value
        words[_INITIAL] = value
        words[_BOUND] = value if self._BOUNDED else 0

    def _slots(self) -> range:
        return range(_SLOTS, _SLOTS + _NSLOTS * _SLOT_WORDS, _SLOT_WORDS)

    def _held(self, words: memoryview) -> list[int]:
        left = words[_NHELD]
        held: list[int] = []
        if not left:
            return held
        for slot in self._slots():
            if words[slot] != 0:
                held.append(slot)
                left -= 1
                if not left:  # the rest of the 120 slots are free
                    break
        return held

    def _try(self, words: memoryview, check: bool) -> bool | Any:
        if words[_VALUE] > 0:
            words[_VALUE] -= 1
            words[OPS] += 1
            return True
        if check and words[_NHELD]:
            dead = [
                s
                for s in self._held(words)
                if not _segment.is_alive((int(words[s]), int(words[s + 1])))
            ]
            if dead:
                return self._abandon(words, dead)
        return WAIT

    def _try_entered(self, words: memoryview, check: bool) -> bool | Any:
        taken = self._try(words, check)
        if taken is True:
            for slot in self._slots():
                if words[slot] == 0:
                    # Counted first: a process killed half-way leaves the count
                    # high (every slot is then looked at), never a filled slot
                    # that _held() would stop before.
                    words[_NHELD] += 1
                    words[slot], words[slot + 1] = _segment.myself()
                    words[slot + 2] = threading.get_ident()
                    words[slot + 3] = time.monotonic_ns()
                    break
        return taken

    def _release_entered(self) -> None:
        key = (*_segment.myself(), threading.get_ident())
        with self._segment.guard() as words:
            mine = [s for s in self._held(words) if (words[s], words[s + 1], words[s + 2]) == key]
            if mine:
                self._clear(words, mine[-1])
            self._add(words, 1)

    def _clear(self, words: memoryview, slot: int) -> None:
        for k in range(_SLOT_WORDS):
            words[slot + k] = 0
        words[_NHELD] -= 1

    def _add(self, words: memoryview, n: int) -> None:
        self._check_room(words, n)
        words[_VALUE] += n
        self._segment.changed(wake=bool(words[WAITERS]))

    def _check_room(self, words: memoryview, n: int) -> None:
        value = words[_VALUE] + n
        if words[_BOUND] and value > words[_BOUND]:
            raise ValueError(f"{self._WHAT} released too many times")
        if value > WORD_MAX:
            raise ValueError(
                f"{self._WHAT}.release({n}) would take its count to {value}, past the "
                f"most a shared counter holds ({WORD_MAX})"
            )

    def _abandon(self, words: memoryview, dead: list[int]) -> bool | Any:
        pids = sorted({int(words[s]) for s in dead})
        held = max(_held_for(int(words[s + 3])) for s in dead)
        for slot in dead:
            self._clear(words, slot)
            words[ABANDONED] += 1
        words[_VALUE] += len(dead)
        self._segment.changed(wake=bool(words[WAITERS]))
        if self._recover:
            return self._try(words, False)
        raise LockAbandoned(
            f"{self._WHAT} {self._segment.name}: pid {', '.join(map(str, pids))} died "
            f"holding {len(dead)} unit(s) (for up to {held:.1f} s); the units are "
            "available again, but what they protected may be inconsistent",
            holder_pid=pids[0],
            held_for=held,
        )

    def release(self, n: int = 1) -> None:
        """Add ``n`` units, waking waiters.

        Args:
            n: how many units to add (>= 1).

        Raises:
            ValueError: ``n`` < 1, or (BoundedSemaphore) released more than acquired.
        """
        if type(n) is not int or n < 1:  # the common case first: no call
            check_int(n, "n", allowed="an int >= 1")
        segment = self._segment
        segment.lock()
        try:
            words = segment.words
            # _add(), inline: the hot half of a hand-off.
            if words[_BOUND] or words[_VALUE] + n > WORD_MAX:
                self._check_room(words, n)
            words[_VALUE] += n
            words[_SEQ] = (words[_SEQ] + 1) & 0x7FFF_FFFF
            if words[WAITERS]:
                segment._wake_pending = True
        finally:
            segment.unlock()

    def get_value(self) -> int:
        """Units available now (a snapshot; correct on every OS, unlike the stdlib's).

        Returns:
            The number of free units.
        """
        return int(self._segment.words[_VALUE])

    def _blocked_by(self) -> LockTimeout:
        stats = self.statistics()
        first = stats.holder_pids[0] if stats.holder_pids else None
        alive = None if first is None else self._pid_alive(first)
        holders = (
            f"held by pid {', '.join(map(str, stats.holder_pids))}"
            if stats.holder_pids
            else "taken by acquire() calls, which record no holder"
        )
        return LockTimeout(
            f"could not acquire the {self._WHAT} {self._segment.name} in time: no unit "
            f"free ({stats.initial} initially); {holders}",
            0.0,
            holder_pid=first,
            holder_alive=alive,
        )

    def _pid_alive(self, pid: int) -> bool | None:
        with self._segment.guard() as words:
            for slot in self._held(words):
                if words[slot] == pid:
                    return _segment.is_alive((pid, int(words[slot + 1])))
        return None

    def statistics(self) -> SemaphoreStats:
        """Units available, holders and waiters (a snapshot).

        Returns:
            A ``SemaphoreStats`` snapshot.
        """
        with self._segment.guard() as words:
            reap_waiters(words)
            held = sorted(self._held(words), key=lambda s: words[s + 3])
            return SemaphoreStats(
                value=int(words[_VALUE]),
                initial=int(words[_INITIAL]),
                holder_pids=tuple(int(words[s]) for s in held),
                waiters=int(words[WAITERS]),
                acquisitions=int(words[OPS]),
                abandoned=int(words[ABANDONED]),
            )

    def _describe(self) -> str:
        return f"value={self.get_value()}"


class BoundedSemaphore(Semaphore):
    """A :class:`Semaphore` that cannot be released above its initial value.

    Args:
        value: the initial number of units (>= 0), also the most it can hold.
        timeout: default limit for ``with`` and ``hold()``, in seconds.
        abandoned: ``"raise"`` (default) or ``"recover"``.
        context: start-method name or ``multiprocessing`` context.

    Raises:
        TypeError: ``value`` is not an int.
        ValueError: ``value`` is negative.
    """

    _KIND = 4
    _WHAT = "BoundedSemaphore"
    _BOUNDED = True
