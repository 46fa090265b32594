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
          ├── ManagerGone            a Manager's server process is gone (shut
          │    (also ConnectionError,  down, or it died): a proxy can't reach it
          │     EOFError)
          └── TooManyWaiters         more threads wait on a Condition than
               (also RuntimeError)   its shared table has room for

Three outcomes are kept apart everywhere, because they have different causes and
different fixes: *the function raised* (its own exception, or ``RemoteError``),
*something could not be serialized* (``SerializationError``) and *the process
died* (``WorkerCrashed``).

Every class here survives ``pickle`` with its type, ``args`` and attributes, so
errors can themselves cross process boundaries (nested parallelism).

``WorkerCrashed``, ``PoolBroken`` and ``MainModuleError`` are defined in ``_broken.py``, appearing
here on first use (PEP 562): they subclass the stdlib's ``BrokenProcessPool``,
and importing ``concurrent.futures.process`` for it costs more than the rest of
this module, in every pool worker too, which needs neither
(docs/performance.md, "Import weight").
"""

from __future__ import annotations

import pickle as _pickle
import signal as _signal

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    from typing import Any, Literal

__all__ = [
    "LockAbandoned",
    "LockTimeout",
    "MainModuleError",
    "ManagerGone",
    "ParkitError",
    "PoolBroken",
    "QueueClosed",
    "RemoteError",
    "SerializationError",
    "TaskTimeout",
    "TooManyWaiters",
    "WorkerCrashed",
]

#: Defined in _broken.py, bound here on first use (see above).
_LAZY = ("MainModuleError", "PoolBroken", "WorkerCrashed")

if TYPE_CHECKING:
    from ._broken import MainModuleError, PoolBroken, WorkerCrashed
else:  # to mypy, a module __getattr__ would make any name valid

    def __getattr__(name: str) -> object:
        if name in _LAZY:
            from . import _broken  # noqa: PLC0415 - the point of the lazy load

            globals().update({lazy: getattr(_broken, lazy) for lazy in _LAZY})
            return globals()[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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

    Args:
        type_name: the original type's qualified name.
        message: the original exception's message.
        remote_traceback: the worker's formatted traceback.
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
    if sig is not None and sig == getattr(_signal, "SIGKILL", None):  # none on Windows
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

    Args:
        message: what could not be pickled or unpickled, and why.
        direction: ``"argument"`` or ``"result"``.
        stage: ``"pickle"`` or ``"unpickle"``.
        item_index: the item's index, or ``None`` for a single call.
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

    Args:
        timeout: the limit, in seconds.
        item_index: the item's index, or ``None`` for a single call.
        what: the task, as the message names it (``"square(3)"``).
        stopped: whether the task was stopped; a backend that cannot stop it
            (threads, Dask) passes ``False`` and the message says it keeps
            running.
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


class LockTimeout(ParkitError, TimeoutError):
    """A lock (or other synchronization object) was not acquired in time.

    The message says who holds it, whether that process is alive and for how
    long it has held it.

    Attributes:
        timeout: the limit, in seconds.
        holder_pid: pid of the process holding it, when known.
        holder_alive: whether that process was still alive, when known.
        held_for: seconds the holder had held it, when known.

    Args:
        message: the full message (parkit words it from the holder's state).
        timeout: the limit, in seconds.
        holder_pid: the holder's pid, when known.
        holder_alive: whether the holder was alive, when known.
        held_for: how long the holder had held it, when known.
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

    Args:
        message: the full message.
        holder_pid: the dead holder's pid.
        held_for: how long it had held it, when known.
    """

    holder_pid: int
    held_for: float | None

    def __init__(self, message: str, holder_pid: int, held_for: float | None = None) -> None:
        self.holder_pid = holder_pid
        self.held_for = held_for
        super().__init__(message)


class QueueClosed(ParkitError, EOFError):
    """``get()`` on a queue that was closed and has been drained."""


class ManagerGone(ParkitError, ConnectionError, EOFError):
    """A :class:`parkit.Manager`'s server process is gone: shut down, or it died.

    Raised promptly by a proxy's method call (and by the manager's methods)
    when the server can't be reached: a call waiting in the server when it
    died, and every call after. A ``ConnectionError`` (an ``OSError``) and an
    ``EOFError``, so code that caught what the stdlib raises in its place
    (``BrokenPipeError``, ``ConnectionRefusedError``, ``EOFError``) with
    ``except OSError`` or ``except EOFError`` keeps working. The stdlib's
    error is chained as ``__cause__``.
    """


class TooManyWaiters(ParkitError, RuntimeError):
    """More threads, in all processes together, wait on a Condition than it can hold.

    A :class:`parkit.Condition` keeps its waiters in a fixed table in shared
    memory. Raised by ``wait()`` (and ``wait_for()``) before anything changes:
    the lock is still held, nothing waits. A ``RuntimeError`` too, as the stdlib
    raises for misuse of a condition.

    Attributes:
        limit: how many threads may wait at once.

    Args:
        message: the full message.
        limit: how many threads may wait at once.
    """

    limit: int

    def __init__(self, message: str, limit: int) -> None:
        self.limit = limit
        super().__init__(message)
