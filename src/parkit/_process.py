"""``parkit.Process[R]`` and ``parkit.run``: one call in one fresh process."""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import multiprocessing.process
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType

from ._core import _frames, _platform
from ._core._checks import (
    check_bool,
    check_callable,
    show,
    time_limit,
    to_kwargs,
    to_tuple,
    wait_timeout,
)
from ._core._context import (
    MAIN_IMPORT_EXITCODE,
    ContextLike,
    join_process,
    main_module_path,
    resolve_context,
    start_process,
)
from ._core._worker import (
    LOG_TAG,
    Message,
    Payload,
    describe_callable,
    parent_log_levels,
    read_message,
    run_call,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from typing import Any, ClassVar, Generic, TypeVar

else:
    from ._core._typing import Generic, TypeVar

__all__ = ["Process", "run"]

R = TypeVar("R")

# Seconds to wait for a process to go after SIGTERM before SIGKILL.
_TERMINATE_GRACE = 1.0
# Seconds run() lets a child that has reported exit on its own.
_FINISH_GRACE = 2.0


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class Process(Generic[R]):
    """A process running ``target(*args, **kwargs)``, whose result you can get.

    The surface of :class:`multiprocessing.Process` (``start``, ``join``,
    ``is_alive``, ``pid``, ``name``, ``daemon``, ``exitcode``, ``terminate``,
    ``kill``, ``sentinel``, ``close``) plus :meth:`result`, which returns what the
    target returned or raises what it raised, with the child's traceback.

    Used as a context manager, the end of the block joins the process; leaving
    the block by an exception stops it first.

    Differences from the stdlib, on purpose:

    * the target's exception reaches the parent through :meth:`result` (the child
      still prints it and exits with code 1, as the stdlib does); so does a
      failure to rebuild the call in the child or to pickle the result;
    * the call is pickled with cloudpickle where plain pickle can't, so lambdas
      and closures work under every start method;
    * the start method is ``context=`` or :func:`parkit.default_context`, never
      the global default;
    * the child exits by itself if the parent dies, even by SIGKILL;
    * subclassing and overriding ``run()`` is not supported: pass ``target``;
    * a :class:`parkit.Connection` given directly in ``args`` or ``kwargs`` (not
      nested in a container) is announced to its other end as used by the
      child, so that the other end's ``recv()`` raises ``EOFError`` once the
      child dies, even while the parent keeps a copy of the child's end.

    Args:
        target: the callable to run in the child.
        args: positional arguments for it.
        kwargs: keyword arguments for it.
        name: the process name (default: ``multiprocessing``'s ``Process-N``).
        daemon: as in the stdlib (default: inherited from the creating process).
        context: start method name or ``multiprocessing`` context
            (default: :func:`parkit.default_context`).
        cpus: the CPU numbers the child may run on (its affinity), set first
            thing in the child, before the target runs; ``None`` leaves it
            as inherited.
        worker_logging: forward what the child logs with :mod:`logging` to
            this process's handlers, with this process's levels (if it set up
            logging when ``start()`` is called; docs/observability.md).
            ``False`` if the target configures logging itself.

    Raises:
        TypeError: ``target`` is not callable, ``args`` not iterable, ``kwargs``
            not a mapping, ``name`` not a str, ``daemon`` or ``worker_logging``
            not a bool, or ``cpus`` not a set of ints.
        ValueError: ``cpus`` is empty or names a CPU the machine lacks.
        NotImplementedError: ``cpus`` on a platform without
            ``os.sched_setaffinity``.
    """

    # Whether the child prints the target's exception (stdlib behaviour) besides
    # sending it; run() turns it off since its caller always gets the exception.
    _PRINT_ERRORS: ClassVar[bool] = True

    def __init__(
        self,
        target: Callable[..., R],
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        daemon: bool | None = None,
        context: ContextLike = None,
        cpus: Iterable[int] | None = None,
        worker_logging: bool = True,
    ) -> None:
        _platform.not_on_windows(
            "parkit.Process", "POSIX process control (select on pipes)", "multiprocessing.Process"
        )
        check_callable(target, "target")
        self._args = to_tuple(args, "args")
        self._kwargs = to_kwargs(kwargs, "kwargs")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, not {show(name)}")
        check_bool(daemon, "daemon", none=True)
        self._cpus: frozenset[int] | None = None
        if cpus is not None:
            from ._core._cpus import check_cpus  # noqa: PLC0415 - only a pinned child needs it

            self._cpus = check_cpus(cpus)
        self._worker_logging = check_bool(worker_logging, "worker_logging")
        self._ctx = resolve_context(context)
        self._target = target
        # Not self._ctx.Pipe(): see _core/_frames.py.
        self._reader, writer = _frames.pipe()
        self._writer: _frames.Writer | None = writer
        self._process: multiprocessing.process.BaseProcess = self._ctx.Process(  # type: ignore[attr-defined]
            target=run_call,
            args=(
                Payload(target, self._args, self._kwargs),
                writer,
                self._PRINT_ERRORS,
                None,
                self._cpus,
            ),
            name=name,
            daemon=daemon,
        )
        self._lock = threading.Lock()
        self._message: Message | None = None
        # Set when the child forwards log records: a thread reads its pipe
        # (records as they come, then the message) until it ends.
        self._pump: threading.Thread | None = None
        self._outcome = threading.Event()  # the pump has the message, or the child ended
        self._what = describe_callable(target)
        self._swept = False  # the segments it left removed (see _ended)

    # -- the stdlib surface -------------------------------------------------

    def start(self) -> None:
        """Start the child.

        Raises:
            SerializationError: the target or an argument can't be pickled
                (spawn and forkserver; under fork nothing is pickled).
            RuntimeError: as the stdlib's ``start`` (started twice, from a
                daemonic process, ...).
        """
        if self._writer is None:
            raise RuntimeError("a process can only be started once")
        levels = parent_log_levels() if self._worker_logging else None
        if levels is not None:
            # The levels as they are now, when the child starts.
            args = self._process._args  # type: ignore[attr-defined]
            self._process._args = (*args[:3], levels, *args[4:])  # type: ignore[attr-defined]
        try:
            start_process(self._process, "print" if self._PRINT_ERRORS else "quiet")
        finally:
            # The child holds its own copy of the writing end; the parent's copy
            # must go, or a child that dies without sending would never give EOF.
            self._writer.close()
            self._writer = None
        _live.add(self)
        if levels is not None:
            # Read the pipe from now on, whatever the caller does: a child that
            # logs more than a pipe holds would otherwise wait for join().
            self._pump = threading.Thread(
                target=self._read_pipe, name=f"parkit-{self.name}-logs", daemon=True
            )
            self._pump.start()
        pid = self._process.pid
        assert pid is not None
        # Tell the far end of each parkit Connection given directly as an
        # argument which process now uses it, so that its recv() raises EOFError
        # when this child dies, even though the parent still holds a copy of the
        # child's end (FAULTS F26). Under fork nothing is pickled, so nothing
        # else would tell it; under spawn/forkserver the child announces itself
        # too, but only once it has unpickled its arguments.
        # Only if parkit.Pipe was ever used: parkit._pipe is not imported to find out.
        pipe = sys.modules.get(f"{__package__}._pipe")
        for arg in (*self._args, *self._kwargs.values()):
            if pipe is not None and isinstance(arg, pipe.Connection):
                arg._handed_to(pid)

    def join(self, timeout: float | None = None) -> None:
        """Wait until the child ends, or ``timeout`` seconds pass.

        Like the stdlib, returns ``None`` either way (check :attr:`exitcode`).
        Unlike the stdlib, it reads the child's result while waiting, so a child
        sending a large result never deadlocks against a parent that joins it
        first (FAULTS F10).

        Args:
            timeout: seconds to wait at most; ``None`` waits until it ends.
        """
        # As the stdlib's join, a negative timeout does not wait.
        timeout = wait_timeout(timeout, negative_waits_not=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wait_message(deadline)
        join_process(self._process, _remaining(deadline))
        if self._process.exitcode is not None:
            if self._pump is not None:
                # Ended: the pump is handing on its last records, if any.
                self._pump.join(_remaining(deadline))
            self._ended()

    def is_alive(self) -> bool:
        """Whether the child is running.

        Returns:
            True between ``start()`` and the child's end.
        """
        return self._process.is_alive()

    def terminate(self) -> None:
        """Send SIGTERM to the child."""
        self._process.terminate()

    def kill(self) -> None:
        """Send SIGKILL to the child."""
        self._process.kill()

    def close(self) -> None:
        """Release the process object's resources (the child must have ended)."""
        # Before close(): a closed process has no exit code to read (and a second
        # close() finds it closed: ValueError, as the stdlib's exitcode raises).
        with contextlib.suppress(ValueError):
            if self._process.exitcode is not None:
                self._ended()
        self._process.close()
        if self._pump is not None:
            self._pump.join()  # it ends with the child, which has ended
        self._reader.close()
        _live.discard(self)

    @property
    def pid(self) -> int | None:
        """The child's process id, ``None`` before ``start()``."""
        return self._process.pid

    ident = pid

    @property
    def name(self) -> str:
        """The process name."""
        return self._process.name

    @name.setter
    def name(self, value: str) -> None:
        self._process.name = value

    @property
    def daemon(self) -> bool:
        """Whether the child is stopped when the parent exits."""
        return self._process.daemon

    @daemon.setter
    def daemon(self, value: bool) -> None:
        self._process.daemon = value

    @property
    def exitcode(self) -> int | None:
        """The exit code, negative for a signal; ``None`` while running."""
        return self._process.exitcode

    @property
    def sentinel(self) -> int:
        """A handle that becomes ready when the child ends (for ``wait``)."""
        return self._process.sentinel

    def __repr__(self) -> str:
        return (
            f"<parkit.Process name={self.name!r} pid={self.pid} "
            f"exitcode={self.exitcode} target={self._what}>"
        )

    def _ended(self) -> None:
        """The child has ended and been reaped: forget it, and remove what it left.

        A child removes the shared-memory segments it made (a ``parkit.Event``,
        a ``Queue``) when it exits normally; one stopped by a signal
        (``terminate()``, ``kill()``, the stop of a daemonic child at exit) or by
        ``os._exit`` can't, and nobody else knows their names: they are named
        after it (``parkit-<pid>-…``), so its parent removes them once it is
        gone. Processes that mapped them keep them, as after a normal exit.
        A child that said it had made none when it sent its result
        (``Message.segments``) and then exited with code 0 is not looked for.
        """
        _live.discard(self)
        if not self._swept and self._process.exitcode is not None:
            self._swept = True
            pid = self._process.pid
            message = self._message
            made_none = message is not None and not message.segments
            if pid is not None and not (made_none and self._process.exitcode == 0):
                # Loaded here: a parkit.run whose child made no segment never needs it.
                from ._core import _segments  # noqa: PLC0415

                _segments.sweep(pid)

    # -- the result ---------------------------------------------------------

    def _wait_message(self, deadline: float | None) -> bool:
        """Read the child's message if one comes before ``deadline``.

        Returns whether the outcome is known: a message arrived or the child
        ended without one.
        """
        if self._pump is not None:
            return self._outcome.wait(_remaining(deadline))
        with self._lock:
            if self._message is not None:
                return True
            if self._reader.closed:
                return True
            sentinel = self._process.sentinel
            while True:
                ready = _platform.wait_fds([self._reader.fileno(), sentinel], _remaining(deadline))
                if not ready:
                    return False
                if self._reader.fileno() in ready:
                    try:
                        raw = self._reader.recv_bytes()
                    except (EOFError, OSError):
                        # The child ended (or died mid-message) without a
                        # complete message: a crash, read from the exit code.
                        self._reader.close()
                        return True
                    self._message = read_message(raw)
                    return True
                # Only the sentinel: the child ended. It may have sent its
                # message just before; poll once without blocking.
                if not self._reader.poll(0):
                    self._reader.close()
                    return True

    def _read_pipe(self) -> None:
        """The pump: hand on log records as they come, keep the message; until the end."""
        reader, sentinel = self._reader, self._process.sentinel
        try:
            while True:
                ready = _platform.wait_fds([reader.fileno(), sentinel], None)
                if reader.fileno() in ready:
                    if not self._take(reader):
                        return
                    continue
                # Only the sentinel: the child ended. What it sent before is
                # in the pipe (EOF may never come: a sibling forked meanwhile
                # can hold a copy of the writing end).
                while reader.poll(0) and self._take(reader):
                    pass
                return
        finally:
            self._outcome.set()

    def _take(self, reader: _frames.Reader) -> bool:
        """Read one frame; False at EOF."""
        try:
            raw = reader.recv_bytes()
        except (EOFError, OSError):
            return False
        if raw[:1] == LOG_TAG:
            from ._core import _logs  # noqa: PLC0415 - only a child that logs sends this

            _logs.emit(memoryview(raw)[1:])
            return True
        self._message = read_message(raw)
        self._outcome.set()
        return True

    def result(self, timeout: float | None = None) -> R:
        """Wait for the target to finish; return its value or raise its exception.

        Args:
            timeout: seconds to wait; ``None`` waits for as long as it runs.

        Returns:
            What the target returned.

        Raises:
            BaseException: what the target raised: the same type and args, with
                the child's frames in its traceback and a note naming the child;
                ``parkit.RemoteError`` if that exception can't be rebuilt here.
            parkit.SerializationError: the call couldn't be rebuilt in the child
                (``direction="argument"``, ``stage="unpickle"``), or the return
                value couldn't be pickled in the child or unpickled here. The
                child prints the first two on its stderr, as a target's error.
            parkit.WorkerCrashed: the child ended without reporting (a signal,
                ``os._exit``, a segfault).
            TimeoutError: ``timeout`` passed with the child still running (the
                child is left running).
            RuntimeError: the process was never started.
        """
        shown = timeout
        timeout = wait_timeout(timeout)
        if self._writer is not None:
            raise RuntimeError("result() called on a process that was not started")
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._wait_message(deadline):
            raise TimeoutError(
                f"{self._what} in process {self.name!r} (pid {self.pid}) still running "
                f"after {shown:g} s"
            )
        message = self._message
        if message is not None and self._process.exitcode is not None:
            self._ended()  # exited (and reaped by that check): nothing to drain at exit
        if message is None:
            # Ended without a message: reap it to learn how it died.
            self._process.join()
            self._ended()
            # Imported here: it costs an import of concurrent.futures.process (errors.py).
            from .errors import MainModuleError, WorkerCrashed  # noqa: PLC0415

            if (
                self._process.exitcode == MAIN_IMPORT_EXITCODE
                and self._ctx.get_start_method() != "fork"
            ):
                # It stopped while importing the main module, before the target ran.
                raise MainModuleError(
                    main_module_path(),
                    self._ctx.get_start_method(),
                    f"process {self.name!r} (pid {self.pid})",
                    self.pid,
                )
            raise WorkerCrashed(self._process.exitcode, self.pid, what=self._what)
        if message.kind == "ok":
            try:
                # _wire.loads is pickle.loads: a run whose call and result are
                # plain values never loads parkit's pickler (_worker._PLAIN).
                value: R = pickle.loads(message.data)
                return value
            except (Exception, SystemExit) as e:
                from ._core import _wire  # noqa: PLC0415

                raise _wire.serialization_error(
                    f"the result of {self._what} in the parent",
                    e,
                    stage="unpickle",
                    direction="result",
                ) from e
        assert message.error is not None
        from ._core import _remote  # noqa: PLC0415 - loaded when the child raised

        raise _remote.rebuild(message.error, note=f"[parkit] raised in {message.where}")

    # -- context manager ----------------------------------------------------

    def __enter__(self) -> Process[R]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.pid is None:
            return
        if exc_type is not None:
            _stop(self)
        self.join()


def _stop(process: Process[Any]) -> None:
    """Terminate, then kill if it lingers; reap."""
    if process.exitcode is not None:
        return
    process.terminate()
    process.join(_TERMINATE_GRACE)
    if process.exitcode is None:
        process.kill()
        process.join()


# Started processes not yet joined, as the stdlib keeps its ``_children``: so
# that an unreferenced running Process is not collected (its reader would close
# and its result be lost) and so that interpreter exit can drain results.
_live: set[Process[Any]] = set()


def run(
    fn: Callable[..., R],
    /,
    *args: Any,
    timeout: float | None = None,
    context: ContextLike = None,
    **kwargs: Any,
) -> R:
    """Run ``fn(*args, **kwargs)`` in a fresh process and return its result.

    The child is always gone when this returns or raises. It ignores Ctrl-C:
    on ``KeyboardInterrupt`` in the parent it is stopped and the interrupt
    propagates.

    Args:
        fn: the callable (lambdas and closures too).
        *args: positional arguments for ``fn``.
        timeout: seconds ``fn`` may run; ``None`` for no limit.
        context: start method name or ``multiprocessing`` context.
        **kwargs: keyword arguments for ``fn``.

    Returns:
        What ``fn`` returned.

    Raises:
        BaseException: what ``fn`` raised, as :meth:`Process.result`.
        parkit.TaskTimeout: ``timeout`` passed; the child was stopped.
        parkit.WorkerCrashed: the child died without reporting.
        parkit.SerializationError: an argument or the result can't be pickled.
        ValueError: ``timeout`` is not a positive number (0, negative, NaN, inf).
        TypeError: ``timeout`` is not a number, or ``fn`` not callable.
    """
    time_limit(timeout)
    check_callable(fn)
    # Not a daemon: a daemonic process may not start children, and fn may
    # itself call parkit. run() reaps the child before returning in any case.
    process: _RunProcess[R] = _RunProcess(fn, args, kwargs, context=context, daemon=False)
    process.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        if not process._wait_message(deadline):
            assert timeout is not None  # no deadline: _wait_message waited for the message
            from .errors import TaskTimeout  # noqa: PLC0415 - parkit.errors: ~0.3 ms of a cold start

            raise TaskTimeout(timeout, what=describe_callable(fn)) from None
        try:
            return process.result()
        finally:
            # The outcome is known; the child is exiting. Give it a moment to
            # do so by itself before it is stopped below.
            process.join(_FINISH_GRACE)
    finally:
        _stop(process)
        process._ended()


class _RunProcess(Process[R]):
    _PRINT_ERRORS = False


def _drain_at_exit() -> None:
    # Runs before multiprocessing's own exit handler (atexit is LIFO and parkit
    # imports multiprocessing first), which joins non-daemonic children: join
    # them here instead, reading their results, so a child blocked writing a
    # large result can't hang the interpreter's exit.
    live = list(_live)
    for process in live:
        if not process.daemon and process.exitcode is None:
            process.join()
    # Daemonic children are stopped here rather than by multiprocessing's exit
    # handler (which does the same, a moment later): stopped by SIGTERM they
    # can't remove their own segments, and after that handler nothing of parkit
    # runs to remove them for them.
    for process in live:
        if process.daemon and process.pid is not None:
            _stop(process)
            process._ended()


atexit.register(_drain_at_exit)


def _forget_after_fork() -> None:
    # A forked process can't join its parent's children (multiprocessing
    # asserts it is their parent): they are not its own to drain at exit.
    _live.clear()


_platform.after_fork_in_child(_forget_after_fork)
