"""What every parkit synchronization object shares: timeouts, waiting, pickling."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, ClassVar, Final, Literal, TypeVar

from .._core import _platform, _segments
from .._core._checks import check_choice
from .._core._checks import wait_timeout as check_timeout
from .._core._context import ContextLike, available_methods, start_method
from .._core._cpus import allowed_cpus
from . import _segment
from ._segment import Segment

__all__ = [
    "ABANDONED",
    "CHECK_INTERVAL",
    "FIRST_FREE",
    "OPS",
    "WAIT",
    "WAITERS",
    "Abandoned",
    "SyncObject",
    "check_timeout",
    "reap_waiters",
    "until",
]

T = TypeVar("T")

# Word layout shared by every kind (kind-specific words start at FIRST_FREE).
WAITERS: Final = 2  # threads (in every process) sleeping on SEQ
ABANDONED: Final = 3  # holds released because their holder died
OPS: Final = 4  # successful acquisitions / puts, for statistics()
_POLICY: Final = 5  # 0: raise LockAbandoned, 1: recover silently
_METHOD: Final = 6  # the start method it was made for: 1 + index in _METHODS
FIRST_FREE: Final = 8
_METHODS: Final = ("fork", "forkserver", "spawn")
# The last words of the header page: who is waiting, per process, so that the
# waits of a process killed while waiting can be taken out of WAITERS.
_WAITER_TABLE: Final = 496
_WAITER_ENTRIES: Final = 5  # (pid, start, count) each; more processes: counted only
_ENTRIES: Final = range(_WAITER_TABLE, _WAITER_TABLE + 3 * _WAITER_ENTRIES, 3)

#: How often a waiter checks whether the holder it waits for is still alive.
CHECK_INTERVAL = 0.2
_SEQ: Final = _segment.SEQ
_FIRST_CHECK: Final = 0.001


#: Seconds a waiter watches for a change before it sleeps (see :func:`until`);
#: 0 where this process runs on one CPU (the other side could not run meanwhile).
SPIN_S = 50e-6 if allowed_cpus() > 1 else 0.0
_yield: Callable[[], None] = os.sched_yield if _platform.SCHED_YIELD else lambda: None

#: What ``abandoned=`` accepts.
Abandoned = Literal["raise", "recover"]


class _Wait:
    def __repr__(self) -> str:
        return "WAIT"


#: Returned by a step of :func:`until` that cannot proceed yet.
WAIT: Final = _Wait()


def _count_waiter(words: memoryview, me: _segment.Identity, delta: int) -> None:
    words[WAITERS] += delta
    free = None
    pid, start = me
    for entry in _ENTRIES:
        if words[entry] == pid and words[entry + 1] == start:
            words[entry + 2] += delta
            if words[entry + 2] <= 0:
                words[entry] = words[entry + 1] = words[entry + 2] = 0
            return
        if free is None and words[entry] == 0:
            free = entry
    if delta > 0 and free is not None:
        words[free], words[free + 1] = me
        words[free + 2] = delta


def reap_waiters(words: memoryview) -> None:
    """Take the waits of processes that died while waiting out of WAITERS."""
    me = _segment.myself()
    for entry in _ENTRIES:
        who = (int(words[entry]), int(words[entry + 1]))
        if who[0] and who != me and not _segment.is_alive(who):
            words[WAITERS] = max(0, words[WAITERS] - words[entry + 2])
            words[entry] = words[entry + 1] = words[entry + 2] = 0


def until(
    segment: Segment,
    step: Callable[[memoryview, bool], T | _Wait],
    timeout: float | None,
    seen: int | None = None,
) -> T | _Wait:
    """Run ``step`` under the guard until it returns something other than WAIT.

    ``step(words, check)`` decides under the guard; ``check`` is True when the
    step should also look for dead holders (a read of ``/proc``, too dear for
    every try): on the only try of a call that does not wait (``timeout=0``),
    else on the first try a millisecond in (the first sleep lasts at most
    that) and then every :data:`CHECK_INTERVAL` seconds.

    After a first try that fails, the caller watches the segment's change
    counter for :data:`SPIN_S` seconds (yielding the CPU between looks) and
    tries again whenever it moves: in a hand-off the other side changes it
    within microseconds, and a waiter that never slept costs the changer no
    wake-up and itself no sleep. Then it sleeps on the counter, counted in the
    WAITERS word (and, per process, in the waiter table, so that a waiter
    killed in its sleep is taken out again) so that changers know whether to
    wake anyone. A try that fails counts its caller as a waiter in the same
    hold of the guard: a sleep costs one hold before it and one after.

    ``seen``: the change counter, read under the guard by a first try that the
    caller made itself (inline, on its hot path) and that failed; that try is
    then not made again.

    Returns:
        What ``step`` returned, or WAIT if ``timeout`` expired first.
    """
    waiting = False
    words = segment.words
    try:
        if seen is None:
            segment.lock()
            try:
                # Not on the first try of a call that will wait: a hand-off, where
                # the lock is held for microseconds more, would read /proc every time.
                result = step(words, timeout == 0)
                if result is not WAIT or timeout == 0:
                    return result
                seen = int(words[_SEQ])
            finally:
                segment.unlock()
        start = now = time.monotonic()
        deadline = None if timeout is None else start + timeout
        if SPIN_S:
            # Watch the change counter a few microseconds before sleeping: in a
            # hand-off the other side changes it that soon, and a waiter that
            # never slept needs no wake-up (two system calls and two context
            # switches saved). sched_yield lets the other side run first when
            # it waits for this CPU.
            spin_end = now + SPIN_S if deadline is None else min(now + SPIN_S, deadline)
            while now < spin_end:
                if words[_SEQ] != seen:
                    segment.lock()
                    try:
                        words = segment.words
                        result = step(words, False)
                        if result is not WAIT:
                            return result
                        seen = words[_SEQ]
                    finally:
                        segment.unlock()
                _yield()
                now = time.monotonic()
        # Count this caller as a waiter in the same hold of the guard as a try
        # that fails: a changer then knows to wake it.
        me = _segment.myself()
        segment.lock()
        try:
            words = segment.words
            result = step(words, False)
            if result is not WAIT:
                return result
            _count_waiter(words, me, +1)
            waiting = True
            seen = words[_SEQ]
        finally:
            segment.unlock()
        # The first look for dead holders comes a millisecond in: a hand-off
        # (the holder releases microseconds later) never reads /proc.
        next_check = start + _FIRST_CHECK
        while True:
            remaining = CHECK_INTERVAL if deadline is None else deadline - now
            if remaining > 0:
                segment.sleep(seen, min(remaining, max(next_check - now, 0.001)))
                now = time.monotonic()
            # The last try before a timeout looks too: a dead holder is
            # reported as such, however short the timeout.
            check = now >= next_check or (deadline is not None and now >= deadline)
            if check:
                next_check = now + CHECK_INTERVAL
            segment.lock()
            try:
                words = segment.words
                _count_waiter(words, me, -1)
                waiting = False
                if check:
                    reap_waiters(words)
                result = step(words, check)
                if result is not WAIT:
                    return result
                if deadline is not None and deadline - now <= 0:
                    return WAIT
                _count_waiter(words, me, +1)
                waiting = True
                seen = words[_SEQ]
            finally:
                segment.unlock()
    finally:
        if waiting:
            with segment.guard() as words:
                _count_waiter(words, me, -1)


class SyncObject:
    """A handle on one shared synchronization object; pickles as its name.

    ``context=`` (a start-method name, a ``multiprocessing`` context or None for
    :func:`parkit.default_context`) is validated as everywhere in parkit and
    recorded as :attr:`start_method`; it restricts nothing, since every process
    opens the object by name, whatever its start method.

    Handles can be passed to :class:`parkit.Process` under every start method,
    to pool tasks, or through a :class:`parkit.Queue`; every copy refers to the
    same object. The creating process must keep its handle alive while others
    use it (a copy unpickled after the creator released it raises
    ``FileNotFoundError`` saying so).
    """

    _KIND: ClassVar[int]
    _WHAT: ClassVar[str]
    #: Whether it has a data area besides its words (queues: Segment.data).
    _DATA_AREA: ClassVar[bool] = False
    _segment: Segment
    _timeout: float | None

    def _create(
        self, timeout: float | None, context: ContextLike, abandoned: Abandoned = "raise"
    ) -> Segment:
        self._timeout = check_timeout(timeout)
        check_choice(abandoned, "abandoned", ("raise", "recover"))
        method = start_method(context)
        if method not in _METHODS:  # a context object of its own making
            raise ValueError(
                f"unknown start method {method!r}; this platform has: "
                + ", ".join(repr(m) for m in available_methods())
            )
        self._segment = _segment.create(
            self._KIND,
            FIRST_FREE,
            f"parkit.{self._WHAT}",
            f"multiprocessing.{self._WHAT}",
            data=self._DATA_AREA,
        )
        self._segment.words[_POLICY] = 0 if abandoned == "raise" else 1
        # In the shared header, so that every handle, in every process, says it.
        self._segment.words[_METHOD] = 1 + _METHODS.index(method)
        if _importing_main_in_a_child():
            self.__class__ = _import_copy_class(type(self))
        return self._segment

    def _require(self) -> None:
        # On Windows: NotImplementedError naming this object and the stdlib's twin.
        _segments.require(f"parkit.{self._WHAT}", f"multiprocessing.{self._WHAT}")

    @property
    def _recover(self) -> bool:
        return bool(self._segment.words[_POLICY])

    def _extra_state(self) -> tuple[Any, ...]:
        return ()

    def _set_extra_state(self, state: tuple[Any, ...]) -> None:
        pass

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (type(self), self._segment.name, self._timeout, self._extra_state()),
        )

    @property
    def timeout(self) -> float | None:
        """The default timeout, in seconds (None: wait as long as it takes)."""
        return self._timeout

    @property
    def start_method(self) -> str:
        """The start method ``context=`` named when it was made (informational).

        The object works with processes of every start method, whatever this
        says: it is a shared-memory segment that any process opens by name.
        """
        return _METHODS[int(self._segment.words[_METHOD]) - 1]

    def __repr__(self) -> str:
        return f"<parkit.{type(self).__name__} {self._describe()}>"

    def _describe(self) -> str:
        return self._segment.name


def _rebuild(
    cls: type[SyncObject], name: str, timeout: float | None, extra: tuple[Any, ...]
) -> SyncObject:
    obj = cls.__new__(cls)
    obj._segment = _segment.attach(name, cls._KIND, f"parkit.{cls.__name__}")
    obj._timeout = timeout
    obj._set_extra_state(extra)
    return obj


# ------------------------------------------------ made by a child's import of __main__


def _importing_main_in_a_child() -> bool:
    """Whether this is a spawn/forkserver child importing the parent's main module."""
    import multiprocessing.process  # noqa: PLC0415 - loaded already wherever it's True

    return bool(getattr(multiprocessing.process.current_process(), "_inheriting", False))


_IMPORT_COPIES: dict[type[SyncObject], type[SyncObject]] = {}


def _import_copy_class(cls: type[SyncObject]) -> type[SyncObject]:
    """``cls`` whose public methods raise once the main module's import is over.

    A module-level ``lock = parkit.Lock()`` runs again in every spawn or
    forkserver child that imports the script: the child gets a *new* lock, not
    the parent's, and code in the child that uses it (a task function using the
    global) silently shares nothing: the stdlib's behaviour, and the tutorial's
    "Semaphore at module level under spawn" trap. Such a copy works while the
    import runs (module-level code may use it), and raises a ``RuntimeError``
    that says what to do on any use after it; a child that never touches it
    (it got the parent's as an argument) pays nothing. The class is swapped,
    not checked on every call: the parent's objects keep their fast path.
    """
    copy = _IMPORT_COPIES.get(cls)
    if copy is not None:
        return copy
    namespace: dict[str, Any] = {"__slots__": (), "__module__": cls.__module__}
    names = {n for n in dir(cls) if not n.startswith("_")} | {"__enter__", "__exit__"}
    for name in sorted(names):
        member = getattr(cls, name, None)
        if callable(member) and not isinstance(member, type):
            namespace[name] = _refusing(cls, name, member)
    namespace["__reduce__"] = _refusing(cls, "__reduce__", cls.__reduce__)
    copy = type(cls.__name__, (cls,), namespace)
    copy.__qualname__ = cls.__qualname__
    _IMPORT_COPIES[cls] = copy
    return copy


def _refusing(cls: type[SyncObject], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def refuse(self: SyncObject, *args: Any, **kwargs: Any) -> Any:
        if _importing_main_in_a_child():
            return method(self, *args, **kwargs)  # module-level code may use it
        import multiprocessing.process  # noqa: PLC0415

        me = multiprocessing.process.current_process()
        what = f"parkit.{cls.__name__}"
        raise RuntimeError(
            f"this {what} was made when process {me.name!r} (pid {os.getpid()}) imported "
            f"your main module, as spawn and forkserver children do: it is a new "
            f"{cls.__name__}, not the parent's, and shares nothing with it. Pass the "
            f"parent's {what} to the child instead: an argument of Process(...) or "
            f"run(...), of a pool task, or the pool's initargs (docs/start-methods.md)"
        )

    refuse.__name__ = name
    refuse.__qualname__ = f"{cls.__qualname__}.{name}"
    refuse.__doc__ = method.__doc__
    return refuse
