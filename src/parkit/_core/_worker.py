"""What a parkit child process runs, and how it reports back.

One call in one child (``parkit.Process``, ``parkit.run``)::

    parent                                         child
    ------                                         -----
    Process.start()
      Payload(fn, args, kwargs) --- pickled by --> run_call(payload, conn, ...)
        multiprocessing while it                   start_lifeline(): a daemon thread
        starts the child (spawn,                     waits on the parent's sentinel and
        forkserver); inherited (fork)                exits the child if the parent dies
                                                   fn, args, kwargs = payload.load()
                                                   outcome = fn(*args, **kwargs)
    result():  wait([reader, sentinel]) <--------- conn.send_bytes(RESULT_TAG + dumps(outcome))
                                                     (or dumps(Message) if it raised)
      reader ready: read the one Message            then the child exits
      sentinel first, nothing sent: WorkerCrashed

The child sends exactly one outcome, read back as a :class:`Message` by
:func:`read_message` (after any log records). The parent holds only the reading
end of that pipe (it closes its copy of the writing end right after the start),
so a child that dies before sending gives EOF, never a silent wait (FAULTS F26).
"""

from __future__ import annotations

import _thread
import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import types
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    from typing import Any, Literal, NoReturn

    from . import _frames, _logs, _remote

# _wire (parkit's pickler) is imported where it is used, not here: a
# ``parkit.run`` child whose call returns one of these types never loads it
# (about 1.5 million instructions of every spawn or forkserver child, a third
# of what parkit adds to one). They are _wire.ATOMS | _wire.SIZED, whose pickle
# the C pickler writes exactly as parkit's (a test pins the two sets equal).
_PLAIN: frozenset[type] = frozenset({int, float, bool, type(None), complex, str, bytes, bytearray})
# ... up to this size for str, bytes and bytearray (_wire.SMALL, the bound of
# parkit.Queue's and Pipe's same shortcut): pickle.dumps grows its own buffer,
# slow for large ones (see _wire.py).
_PLAIN_SMALL = 16 * 1024
_PROTOCOL = 5  # _wire.PROTOCOL
# Callables that pickle by name, as _wire's pickler sends them unless they
# belong to __main__ (_wire._MAIN_NAMES).
_BY_NAME = (types.FunctionType, types.BuiltinFunctionType)
_MAIN_NAMES = ("__main__", "__mp_main__")

__all__ = [
    "LOG_TAG",
    "RESULT_NO_SEGMENTS_TAG",
    "RESULT_TAG",
    "Message",
    "Payload",
    "WorkerInfo",
    "current_worker",
    "describe_callable",
    "forward_logs",
    "parent_gone",
    "parent_log_levels",
    "read_message",
    "run_call",
    "set_affinity",
    "start_lifeline",
]


class WorkerInfo:
    """Who this process is, when it is a parkit worker."""

    __slots__ = ("name", "pid")

    def __init__(self, name: str, pid: int) -> None:
        self.name = name
        self.pid = pid

    def __repr__(self) -> str:
        return f"WorkerInfo(name={self.name!r}, pid={self.pid})"


_worker: WorkerInfo | None = None


def current_worker() -> WorkerInfo | None:
    """This process's identity if it is a parkit child, else ``None``."""
    return _worker


def describe_callable(fn: object) -> str:
    """A short, safe name for a callable: ``module.qualname``."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    if module in (None, "builtins", "__main__", "__mp_main__"):
        return str(qualname)
    return f"{module}.{qualname}"


class Message:
    """The one thing a child sends back.

    ``kind`` is ``"ok"`` (``data`` is the pickled return value, kept as bytes so
    that a result that fails to unpickle in the parent is told apart from one
    that failed in the worker; it travels as a :data:`RESULT_TAG` frame, not
    as a pickled Message) or ``"raised"`` (``error`` is the captured
    exception; ``exitcode`` is what the child exits with afterwards).
    ``segments`` is False when the child had made no shared-memory segment
    when it sent this (a :data:`RESULT_NO_SEGMENTS_TAG` frame).

    A plain class, not a dataclass: ``dataclasses`` imports ``inspect``, ~1 MiB
    in every child (docs/performance.md, "Import weight").
    """

    def __init__(
        self,
        kind: Literal["ok", "raised"],
        where: str,
        data: bytes | memoryview = b"",
        error: _remote.ExceptionRecord | None = None,
        segments: bool = True,
    ) -> None:
        self.kind = kind
        self.where = where
        self.data = data
        self.error = error
        self.segments = segments

    def __repr__(self) -> str:
        return f"Message({self.kind!r}, {self.where!r})"


class Payload:
    """``(fn, args, kwargs)`` on its way to a child.

    Pickled by ``multiprocessing`` itself while it starts the child (spawn,
    forkserver), so objects that the stdlib allows only during that moment (its
    own locks and connections) still travel; a pickling failure becomes a
    :class:`parkit.SerializationError` raised by ``start()``. The child keeps the
    bytes and unpickles them in :func:`run_call`, where a failure can be reported
    instead of killing the bootstrap. Under fork nothing is pickled.
    """

    def __init__(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._call: tuple[Any, tuple[Any, ...], dict[str, Any]] | None = (fn, args, kwargs)
        self._data = b""

    def __reduce__(self) -> tuple[Any, ...]:
        if self._call is None:
            return (_payload_from_bytes, (self._data,))
        data = _plain_call(*self._call)
        if data is None:
            from . import _wire  # noqa: PLC0415

            data = _wire.dumps_or_raise(
                self._call,
                f"the call {describe_callable(self._call[0])}(...) to send it to the child process",
            )
        return (_payload_from_bytes, (data,))

    def load(self) -> tuple[Any, tuple[Any, ...], dict[str, Any]]:
        """The call, unpickled if it came as bytes."""
        if self._call is not None:
            return self._call
        # _wire.loads is pickle.loads; a pickle made by value names what it
        # needs (cloudpickle, _wire's own helpers) and loads it.
        call: tuple[Any, tuple[Any, ...], dict[str, Any]] = pickle.loads(self._data)
        return call


def _is_plain(value: object) -> bool:
    return type(value) in _PLAIN and (
        not isinstance(value, str | bytes | bytearray) or len(value) <= _PLAIN_SMALL
    )


def _plain_call(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes | None:
    """``(fn, args, kwargs)`` pickled by ``pickle.dumps``, where ``_wire.dumps``
    would write the same bytes: a function found by name outside ``__main__``
    (whose policy is ``_wire``'s), small :data:`_PLAIN` arguments. Else ``None``.

    A ``parkit.run(fn, 3)`` then never loads ``_wire`` in the parent either.
    """
    if type(fn) not in _BY_NAME or getattr(fn, "__module__", None) in _MAIN_NAMES:
        return None
    if not all(map(_is_plain, args)) or not all(map(_is_plain, kwargs.values())):
        return None
    try:
        return pickle.dumps((fn, args, kwargs), _PROTOCOL)
    except Exception:
        return None  # a local function, a lambda: by value, through _wire


def _payload_from_bytes(data: bytes) -> Payload:
    payload = Payload.__new__(Payload)
    payload._call = None
    payload._data = data
    return payload


def start_lifeline(cleanup: Callable[[], object] | None = None) -> None:
    """Exit this child promptly if its parent dies (no orphans: FAULTS F31).

    ``multiprocessing`` gives every child a sentinel: the reading end of a pipe
    whose writing end only the parent holds, which the kernel closes when the
    parent dies, however it dies (SIGKILL included). A thread blocks reading it:
    nobody writes there, so the read returns at EOF, when the parent is gone.

    The thread is a bare ``_thread`` one, started without waiting for it to
    run: a ``threading.Thread`` (its start handshake, a selector to wait on
    one fd) cost ~0.8 ms of CPU in a freshly forked child, on the path of
    every worker start. Like a daemon thread it never delays the child's exit.

    Args:
        cleanup: run first (removing what only the parent would have removed);
            its errors are ignored.
    """
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    if sentinel is None:
        return

    def watch() -> None:
        try:
            while os.read(sentinel, 4096):
                pass  # not expected: the start data were read before the child ran
        except OSError:
            return  # the fd was closed under us: nothing left to watch
        if cleanup is not None:
            with contextlib.suppress(Exception):
                cleanup()
        from . import _segments  # noqa: PLC0415 - on this rare path only

        # What this child made itself (a parkit.Event, a Queue) is removed by its
        # exit hooks, which os._exit skips; its parent, which would remove them
        # after a crash, is gone.
        with contextlib.suppress(Exception):
            _segments.sweep(os.getpid())
        # The parent is gone: nobody can receive a result. os._exit skips
        # cleanup that could block (joining threads, flushing a full pipe).
        os._exit(1)

    _thread.start_new_thread(watch, ())


def parent_gone() -> bool:
    """Whether this child's parent has died (its sentinel reads EOF), without waiting."""
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    if sentinel is None:
        return False
    # poll, not select: the sentinel keeps the number it had in the parent, and a
    # parent with 1024 files open gives numbers that select refuses (ValueError),
    # which read as "gone" here, and the worker then removed its live parent's
    # segments. Loaded here: a pool worker, the one caller, has it (_segments).
    from . import _platform  # noqa: PLC0415

    try:
        return bool(_platform.wait_fds([sentinel], 0))  # closed under us: POLLNVAL
    except (OSError, ValueError):
        return True  # nothing left to watch


def set_affinity(cpus: frozenset[int]) -> None:
    """Pin this process to ``cpus`` (validated by the parent).

    Raises:
        OSError: the kernel refused (a CPU outside this process's cpuset).
    """
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:
        raise OSError(
            e.errno,
            f"could not set the CPU affinity of {_whoami()} to {sorted(cpus)}: {e.strerror}",
        ) from None


def _whoami() -> str:
    return f"process {multiprocessing.current_process().name!r} (pid {os.getpid()})"


def parent_log_levels() -> _logs.Levels | None:
    """The logging levels this parent hands a child it starts, or ``None`` if it
    never set up logging (``_logs.parent_levels``).

    ``_logs`` is loaded only where ``logging`` was imported: nothing could have
    been configured elsewhere.
    """
    if "logging" not in sys.modules:
        return None
    from . import _logs  # noqa: PLC0415

    return _logs.parent_levels()


def forward_logs(levels: _logs.Levels, send: Callable[[bytes], object]) -> None:
    """Send this process's log records to the parent (see ``_logs.py``)."""
    from . import _logs  # noqa: PLC0415  (only when the parent configured logging)

    _logs.install(levels, send)


#: A pickle of protocol >= 2 starts with b"\x80": a frame of ``parkit.Process``'s
#: result pipe that starts with this byte is a log record, not the Message.
LOG_TAG = b"L"
#: ... and one that starts with this byte is what the call returned, pickled:
#: the common outcome travels without a pickled :class:`Message` around it
#: (read back by :func:`read_message`).
RESULT_TAG = b"R"
#: ... the same, from a child that has made no shared-memory segment: it never
#: loaded ``_segments``, through which every segment is made. Its parent need
#: not look for segments it left (a scan of ``/dev/shm`` and an import) once it
#: exits with code 0; after any other end it looks, as for :data:`RESULT_TAG`.
RESULT_NO_SEGMENTS_TAG = b"N"
_SEGMENTS_MODULE = f"{__package__}._segments"

# Log records go on the result pipe from whichever thread logs: one frame at a time.
_send_lock = _thread.allocate_lock()


def _send(conn: _frames.Writer, message: Message) -> None:
    from . import _wire  # noqa: PLC0415 - a child whose call returns needs it only for its result

    _send_frame(conn, _wire.dumps(message, main="reference"))


def _send_frame(conn: _frames.Writer, data: bytes) -> None:
    with _send_lock:
        conn.send_bytes(data)


def read_message(frame: bytes | bytearray) -> Message:
    """The :class:`Message` of a frame that is not a log record."""
    tag = frame[:1]
    if tag in (RESULT_TAG, RESULT_NO_SEGMENTS_TAG):
        return Message("ok", "", data=memoryview(frame)[1:], segments=tag == RESULT_TAG)
    from . import _wire  # noqa: PLC0415 - the Message of a call that raised

    message: Message = _wire.loads(frame)
    return message


def _send_log(conn: _frames.Writer, record: bytes) -> None:
    _send_frame(conn, LOG_TAG + record)


def _raised(where: str, exc: BaseException) -> Message:
    # Loaded when something is raised: a call that returns never needs it.
    from . import _remote  # noqa: PLC0415

    return Message("raised", where, error=_remote.capture(exc))


def run_call(
    payload: Payload,
    conn: _frames.Writer,
    print_errors: bool,
    logs: _logs.Levels | None = None,
    cpus: frozenset[int] | None = None,
) -> None:
    """Run one call in this child and send its :class:`Message` to the parent.

    Args:
        payload: the call.
        conn: the writing end of the result pipe.
        print_errors: re-raise the function's exception after sending it, so that
            ``multiprocessing`` prints it and sets exit code 1 as the stdlib does
            (``parkit.Process``); otherwise exit quietly with that code
            (``parkit.run``, whose caller gets the exception). The same goes
            for a failure to rebuild the call or to pickle the result.
        logs: the parent's logging levels: forward log records on ``conn``
            ahead of the message (``_logs.py``); ``None``: leave logging alone.
        cpus: the CPUs this child may run on, set before anything else.
    """
    global _worker
    affinity_error: BaseException | None = None
    if cpus is not None:
        try:
            set_affinity(cpus)
        except OSError as e:
            affinity_error = e
    me = multiprocessing.current_process()
    _worker = WorkerInfo(me.name, os.getpid())
    parent = multiprocessing.parent_process()
    # If the parent is SIGKILLed, remove the shared-memory segments it owned
    # (locks, queues, arrays): nobody else would (SPEC §6).
    owner = parent.pid if parent is not None else None
    start_lifeline(cleanup=None if owner is None else lambda: _sweep(owner))
    if not print_errors:
        # The parent handles Ctrl-C for run(): it stops this child. A traceback
        # here would only be noise (SPEC: workers print no tracebacks).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    where = f"process {me.name!r} (pid {os.getpid()})"
    if affinity_error is not None:
        _send(conn, _raised(where, affinity_error))
        _fail(affinity_error, print_errors)
    if logs is not None:
        forward_logs(logs, lambda data: _send_log(conn, data))
    try:
        fn, args, kwargs = payload.load()
    except BaseException as e:
        from . import _wire  # noqa: PLC0415

        err = _wire.serialization_error(
            "the call in the child process", e, stage="unpickle", direction="argument"
        )
        _send(conn, _raised(where, err))
        _fail(err, print_errors)
    where += f" running {describe_callable(fn)}"
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:
        if e.__traceback__ is not None:
            # Drop this frame: the user's traceback starts in their function.
            e = e.with_traceback(e.__traceback__.tb_next)
        _send(conn, _raised(where, e))
        if print_errors or isinstance(e, SystemExit):
            raise
        sys.exit(1)
    try:
        data = _dump_result(result)
    except BaseException as e:
        from . import _wire  # noqa: PLC0415 - loaded by _dump_result

        err = _wire.serialization_error(
            f"the result of {describe_callable(fn)}, a {type(result).__qualname__}",
            e,
            stage="pickle",
            direction="result",
        )
        _send(conn, _raised(where, err))
        _fail(err, print_errors)
    _send_frame(conn, data)


def _dump_result(result: object) -> bytes:
    """The tag (:data:`RESULT_TAG`, or :data:`RESULT_NO_SEGMENTS_TAG` if this
    process has made no segment) and ``result`` pickled by ``_wire.dumps``,
    whose bytes for a small :data:`_PLAIN` value ``pickle.dumps`` writes
    without it."""
    tag = RESULT_TAG if _SEGMENTS_MODULE in sys.modules else RESULT_NO_SEGMENTS_TAG
    if _is_plain(result):
        return tag + pickle.dumps(result, _PROTOCOL)
    from . import _wire  # noqa: PLC0415

    return _wire.dumps(result, main="reference", prefix=tag)


def _sweep(owner: int) -> None:
    """Remove the segments ``owner`` made (it died: nobody else will)."""
    from . import _segments  # noqa: PLC0415 - a child whose parent lives never needs it

    _segments.sweep(owner)


def _fail(err: BaseException, print_errors: bool) -> NoReturn:
    """End the child after a failure of parkit's own around the call.

    Like the target's exception: raised so that ``multiprocessing`` prints it
    on the child's stderr and exits with code 1 (``parkit.Process``), or a quiet
    exit with that code (``parkit.run``). A child never fails silently.
    """
    if print_errors:
        raise err
    sys.exit(1)
