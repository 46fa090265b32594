"""The parkit error tree.

Exceptions raised by *user code* in a worker are never wrapped: the parent
re-raises the original type (see :mod:`parkit` docs, "Errors"). The classes
below describe what went wrong *around* user code::

    Exception
     └── ParkitError
          ├── RemoteError            the worker's exception could not be sent
          │                          or rebuilt: its type name, message and
          │                          traceback text travel instead
          ├── WorkerCrashed          the worker process died (signal, os._exit,
          │    (also BrokenProcessPool)  segfault, OOM kill) without reporting
          ├── SerializationError     an argument or a result could not be
          │    (also pickle.PicklingError)   pickled or unpickled
          ├── TaskTimeout            an item ran longer than its timeout
          │    (also TimeoutError)
          ├── PoolBroken             the pool cannot run anything: its
          │    │ (also concurrent.futures  initializer raised, its workers cannot
          │    │  .process.BrokenProcessPool)  start, or it was terminated
          │    └── MainModuleError   the main module starts parkit work when a
          │                          child imports it (no __main__ guard)
          ├── LockTimeout            a lock was not acquired in time
          │    (also TimeoutError)
          ├── LockAbandoned          a lock's holder died while holding it
          ├── QueueClosed            get() on a closed, drained queue
          │    (also EOFError)
          └── TooManyWaiters         more threads wait on a Condition than
               (also RuntimeError)   its shared table has room for

Three outcomes are kept apart everywhere, because they have different causes and
different fixes: *the function raised* (its own exception, or ``RemoteError``),
*something could not be serialized* (``SerializationError``) and *the process
died* (``WorkerCrashed``).

Every class here survives ``pickle`` with its type, ``args`` and attributes, so
errors can themselves cross process boundaries (nested parallelism).
"""

from __future__ import annotations

import pickle as _pickle
import signal as _signal
from concurrent.futures.process import BrokenProcessPool as _BrokenProcessPool
from typing import Any, Literal

__all__ = [
    "LockAbandoned",
    "LockTimeout",
    "MainModuleError",
    "ParkitError",
    "PoolBroken",
    "QueueClosed",
    "RemoteError",
    "SerializationError",
    "TaskTimeout",
    "TooManyWaiters",
    "WorkerCrashed",
]


def _rebuild(cls: type[ParkitError], args: tuple[Any, ...]) -> ParkitError:
    # Rebuild without calling the subclass __init__: its signature differs from
    # ``args`` (which holds the formatted message); attributes come back through
    # the state dict that __reduce__ returns alongside.
    exc = cls.__new__(cls)
    BaseException.__init__(exc, *args)
    return exc


class ParkitError(Exception):
    """Root of every error that parkit itself raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args), dict(self.__dict__))


def _describe_item(item_index: int | None) -> str:
    return "" if item_index is None else f" (item {item_index})"


class RemoteError(ParkitError):
    """A worker raised an exception that could not be sent back as itself.

    This happens when the exception (or something it holds) cannot be pickled in
    the worker, or cannot be rebuilt in the parent (a custom ``__init__`` whose
    signature does not match ``args``, an attribute that can't be pickled, a
    structure nested too deep). Nothing is lost: the original type's qualified
    name, its message and the full remote traceback text travel instead.

    Attributes:
        type_name: qualified name of the original exception type,
            e.g. ``"myapp.errors.MyError"``.
        message: ``str()`` of the original exception (bounded in length).
        remote_traceback: the worker's formatted traceback, chained exceptions
            included.
        reason: why the original could not be sent or rebuilt.
    """

    type_name: str
    message: str
    remote_traceback: str
    reason: str

    def __init__(
        self, type_name: str, message: str, remote_traceback: str = "", reason: str = ""
    ) -> None:
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback
        self.reason = reason
        super().__init__(f"{type_name}: {message}" if message else type_name)

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else self.type_name
        if self.reason:
            text += f"\n[parkit] sent as RemoteError because {self.reason}"
        if self.remote_traceback:
            text += "\n\nRemote traceback:\n" + self.remote_traceback.rstrip()
        return text


class WorkerCrashed(ParkitError, _BrokenProcessPool):
    """A worker process died without reporting a result.

    The process was killed by a signal (SIGKILL from the OOM killer, SIGSEGV),
    called ``os._exit``, or otherwise ended while it was running an item.

    Also a ``concurrent.futures.process.BrokenProcessPool`` so that code written
    for the stdlib executor, which catches that, keeps working. Unlike the
    stdlib, only the item that was running fails: the pool replaces the worker
    and goes on.

    Attributes:
        exitcode: the process's exit code as ``multiprocessing`` reports it
            (negative for a signal), or ``None`` if unknown.
        signal: the signal that killed it (a :class:`signal.Signals`), or ``None``.
        pid: the worker's process id, or ``None`` if unknown.
        item_index: index of the item it was running, or ``None`` for a
            single call (``parkit.Process``, ``parkit.run``).
    """

    exitcode: int | None
    signal: _signal.Signals | None
    pid: int | None
    item_index: int | None

    def __init__(
        self,
        exitcode: int | None,
        pid: int | None,
        item_index: int | None = None,
        what: str = "",
    ) -> None:
        self.exitcode = exitcode
        self.pid = pid
        self.item_index = item_index
        self.signal = _signal_of(exitcode)
        super().__init__(_crash_message(exitcode, self.signal, pid, item_index, what))


def _signal_of(exitcode: int | None) -> _signal.Signals | None:
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return _signal.Signals(-exitcode)
    except ValueError:
        return None


def describe_exitcode(exitcode: int | None) -> str:
    """Render an exit code as ``SIGKILL(-9)`` or ``EXIT(3)`` (loky's convention)."""
    if exitcode is None:
        return "unknown exit code"
    sig = _signal_of(exitcode)
    if sig is not None:
        return f"{sig.name}({exitcode})"
    return f"EXIT({exitcode})"


def _crash_message(
    exitcode: int | None,
    sig: _signal.Signals | None,
    pid: int | None,
    item_index: int | None,
    what: str,
) -> str:
    who = f"worker pid {pid}" if pid is not None else "worker"
    how = describe_exitcode(exitcode)
    running = f" while running {what}" if what else ""
    hint = ""
    if sig == _signal.SIGKILL:
        hint = " (SIGKILL: often the kernel's out-of-memory killer)"
    elif sig == _signal.SIGSEGV:
        hint = " (SIGSEGV: a crash in native code)"
    return f"{who} died with {how}{running}{_describe_item(item_index)}{hint}"


class SerializationError(ParkitError, _pickle.PicklingError):
    """An argument or a result could not be pickled or unpickled.

    The pickling error is chained as ``__cause__``.

    Attributes:
        direction: ``"argument"`` (parent to worker) or ``"result"`` (worker to
            parent).
        stage: ``"pickle"`` or ``"unpickle"``.
        item_index: index of the item concerned, or ``None`` for a single call.
    """

    direction: Literal["argument", "result"]
    stage: Literal["pickle", "unpickle"]
    item_index: int | None

    def __init__(
        self,
        message: str,
        direction: Literal["argument", "result"] = "argument",
        stage: Literal["pickle", "unpickle"] = "pickle",
        item_index: int | None = None,
    ) -> None:
        self.direction = direction
        self.stage = stage
        self.item_index = item_index
        super().__init__(message)


class TaskTimeout(ParkitError, TimeoutError):
    """An item ran longer than its ``timeout``; its process was stopped.

    Attributes:
        timeout: the limit, in seconds.
        item_index: index of the item, or ``None`` for a single call.
    """

    timeout: float
    item_index: int | None

    def __init__(
        self,
        timeout: float,
        item_index: int | None = None,
        what: str = "",
        stopped: bool = True,
    ) -> None:
        self.timeout = timeout
        self.item_index = item_index
        running = f" {what}" if what else ""
        after = (
            "its process was stopped"
            if stopped
            else "it keeps running in the background (this backend cannot stop it)"
        )
        where = f"task{running}{_describe_item(item_index)}"
        super().__init__(f"{where} did not finish within {timeout:g} s; {after}")


class PoolBroken(ParkitError, _BrokenProcessPool):
    """The pool cannot run anything any more.

    Its initializer raised (the exception is chained as ``__cause__``), its
    workers die while starting, or it was terminated with work pending. Also a
    ``concurrent.futures.process.BrokenProcessPool``, so code written for the
    stdlib executor catches it unchanged. Unlike a crash while running an item
    (:class:`WorkerCrashed`, after which the pool goes on), this ends the pool:
    parkit does not respawn workers whose start-up fails (the stdlib ``Pool``
    forks new ones for ever: gh-87472).
    """


class MainModuleError(PoolBroken):
    """The main module starts parkit work when a child process imports it.

    Under the ``spawn`` and ``forkserver`` start methods (parkit's default is
    ``forkserver``), every child process imports the program's main script, as
    ``__mp_main__``, before it runs anything: that is how it finds the script's
    functions. A script that calls parkit at its top level, outside
    ``if __name__ == "__main__":``, would make each child start processes of its
    own. The child stops at that call, before running anything, and the parkit
    call that started it raises this error, once (the stdlib prints a traceback
    from every child instead, and its ``Pool`` starts new ones for ever).

    The fix is the guard: put the code that starts parkit work (and whatever
    should run once) under ``if __name__ == "__main__":``.

    A :class:`PoolBroken`: from a pool, the executor or the one-shot calls the
    pool cannot run anything; ``parkit.run`` and ``parkit.Process.result()``
    raise it too, for the one child they started.

    Attributes:
        main_path: the main module's file.
        start_method: the start method of the child (``"forkserver"`` or ``"spawn"``).
        pid: the child's process id.
    """

    main_path: str
    start_method: str
    pid: int | None

    def __init__(self, main_path: str, start_method: str, who: str, pid: int | None) -> None:
        self.main_path = main_path
        self.start_method = start_method
        self.pid = pid
        super().__init__(
            f"{who} stopped while importing the main module {main_path}: "
            "the module starts parkit work when it is imported, and every process that "
            f"the {start_method!r} start method starts imports it. Put the code that "
            'starts parkit work under `if __name__ == "__main__":`'
        )


class LockTimeout(ParkitError, TimeoutError):
    """A lock (or other synchronization object) was not acquired in time.

    The message says who holds it, whether that process is alive and for how
    long it has held it.

    Attributes:
        timeout: the limit, in seconds.
        holder_pid: pid of the process holding it, when known.
        holder_alive: whether that process was still alive, when known.
        held_for: seconds the holder had held it, when known.
    """

    timeout: float
    holder_pid: int | None
    holder_alive: bool | None
    held_for: float | None

    def __init__(
        self,
        message: str,
        timeout: float,
        holder_pid: int | None = None,
        holder_alive: bool | None = None,
        held_for: float | None = None,
    ) -> None:
        self.timeout = timeout
        self.holder_pid = holder_pid
        self.holder_alive = holder_alive
        self.held_for = held_for
        super().__init__(message)


class LockAbandoned(ParkitError):
    """A process died while holding a lock or semaphore.

    Raised once, to the process that finds out (its ``acquire`` or ``with``).
    The dead holder's hold has then been released, so later acquisitions work as
    usual; but whatever the lock protected may have been left half-changed,
    which is why this is an error and not a silent recovery. A lock created with
    ``abandoned="recover"`` is taken over without this error instead.

    Attributes:
        holder_pid: pid of the process that died holding it.
        held_for: seconds it had held it when it was found dead, when known.
    """

    holder_pid: int
    held_for: float | None

    def __init__(self, message: str, holder_pid: int, held_for: float | None = None) -> None:
        self.holder_pid = holder_pid
        self.held_for = held_for
        super().__init__(message)


class QueueClosed(ParkitError, EOFError):
    """``get()`` on a queue that was closed and has been drained."""


class TooManyWaiters(ParkitError, RuntimeError):
    """More threads, in all processes together, wait on a Condition than it can hold.

    A :class:`parkit.Condition` keeps its waiters in a fixed table in shared
    memory. Raised by ``wait()`` (and ``wait_for()``) before anything changes:
    the lock is still held, nothing waits. A ``RuntimeError`` too, as the stdlib
    raises for misuse of a condition.

    Attributes:
        limit: how many threads may wait at once.
    """

    limit: int

    def __init__(self, message: str, limit: int) -> None:
        self.limit = limit
        super().__init__(message)
