"""Start-method policy: which ``multiprocessing`` context parkit uses.

parkit never calls :func:`multiprocessing.set_start_method` and never reads the
global default. Every object that starts processes takes ``context=`` and
resolves it here, through one documented policy:

1. an explicit ``multiprocessing`` context object is used as given;
2. an explicit name (``"forkserver"``, ``"spawn"``, ``"fork"``) is looked up;
3. ``None`` means :func:`default_context`: the environment variable
   ``PARKIT_START_METHOD`` if set, else ``forkserver`` where the platform has it
   (Linux and other POSIX systems), else ``spawn``.

``fork`` is never chosen by default: forking a process that has threads can
copy a lock in its held state into the child, which then waits for ever
(FAULTS F11; CPython warns about it since 3.12, gh-84559).

The stdlib has a side effect that would break the "leave the user's choice
alone" promise: starting a process through an explicit ``spawn`` or
``forkserver`` context calls ``multiprocessing.get_start_method()`` while
preparing the child's data (``multiprocessing.spawn.get_preparation_data``), which
*fixes the global default* to ``fork`` on Linux; a later
``multiprocessing.set_start_method()`` in user code then raises "context has
already been set". :func:`preserving_global_start_method` undoes exactly that
side effect around every process start.

:func:`start_process` is how parkit starts every process. Besides that, it
fixes two things in the data the stdlib sends a spawn or forkserver child
before the child imports the main module (``spawn.get_preparation_data``):

* a ``__main__`` read from standard input (``python - < job.py``) has
  ``__file__ == "<stdin>"``, which the stdlib sends as a path for the child to
  run; the child dies with ``FileNotFoundError``. A path that is no file is left
  out, so the child does what it does for ``python -c``: it imports no main
  module (the main module's functions then travel by value: see ``_wire``).
* a note that the child is parkit's: if the main module, while the child
  imports it, starts parkit work itself (a script without the
  ``if __name__ == "__main__":`` guard), the child stops there with
  :data:`MAIN_IMPORT_EXITCODE` instead of printing a traceback, and the parent
  raises one :class:`parkit.errors.MainModuleError`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import multiprocessing.process

# Before any parkit module registers an exit hook (they all import this one
# first), so that theirs run before multiprocessing's: atexit is last in,
# first out, and multiprocessing.util registers _exit_function when it is
# imported, which joins every non-daemonic child, and would wait for ever on a
# pool worker or a parkit.Process child that parkit's hooks stop or drain.
# (The first process start imports it anyway; parkit no longer loads
# multiprocessing.connection, which used to bring it in early: _frames.py.)
import multiprocessing.util
import os
import signal
import sys
import threading
import weakref
from collections.abc import Iterator

from . import _platform

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from typing import Any, Literal, TypeAlias

__all__ = [
    "MAIN_IMPORT_EXITCODE",
    "START_METHOD_ENV",
    "ContextLike",
    "available_methods",
    "default_context",
    "join_process",
    "main_module_path",
    "preserving_global_start_method",
    "resolve_context",
    "start_method",
    "start_process",
]

#: Environment variable that overrides the default start method.
START_METHOD_ENV = "PARKIT_START_METHOD"

#: What ``context=`` accepts everywhere.
ContextLike: TypeAlias = str | multiprocessing.context.BaseContext | None


def available_methods() -> list[str]:
    """The start methods this platform offers, in parkit's order of preference."""
    have = multiprocessing.get_all_start_methods()
    return [m for m in ("forkserver", "spawn", "fork") if m in have]


def _by_name(name: str, origin: str) -> multiprocessing.context.BaseContext:
    methods = available_methods()
    if name not in methods:
        raise ValueError(
            f"unknown start method {name!r}{origin}; this platform has: "
            + ", ".join(repr(m) for m in methods)
        )
    return multiprocessing.get_context(name)


def default_context() -> multiprocessing.context.BaseContext:
    """The context parkit uses when ``context=None``.

    ``PARKIT_START_METHOD`` if it is set (a ``ValueError`` if it names a method
    this platform lacks), else ``forkserver`` where available, else ``spawn``.
    The global ``multiprocessing`` default is neither read nor changed.

    Returns:
        A ``multiprocessing`` context object.

    Raises:
        ValueError: ``PARKIT_START_METHOD`` names an unknown method.
    """
    env = os.environ.get(START_METHOD_ENV, "").strip()
    if env:
        return _by_name(env, f" in ${START_METHOD_ENV}")
    return _by_name(available_methods()[0], "")


def resolve_context(context: ContextLike) -> multiprocessing.context.BaseContext:
    """Turn a ``context=`` argument into a ``multiprocessing`` context.

    Args:
        context: ``None`` (see :func:`default_context`), a start-method name, or a
            context from :func:`multiprocessing.get_context`.

    Returns:
        The context object to start processes with.

    Raises:
        ValueError: an unknown start-method name.
        TypeError: anything else.
    """
    if context is None:
        return default_context()
    if isinstance(context, str):
        return _by_name(context, "")
    if isinstance(context, multiprocessing.context.DefaultContext):
        # The global default context would make parkit depend on (and, through
        # get_start_method(), fix) the user's global choice: resolve it to the
        # concrete context it stands for right now, without fixing it.
        method = context.get_start_method(allow_none=True)
        return default_context() if method is None else _by_name(method, "")
    if isinstance(context, multiprocessing.context.BaseContext):
        return context
    raise TypeError(
        "context must be None, a start-method name "
        f"({', '.join(repr(m) for m in available_methods())}) or a multiprocessing "
        f"context, not {type(context).__name__}"
    )


def start_method(context: ContextLike) -> str:
    """The name of the start method that ``context=`` stands for.

    For the objects that only *share* processes (locks, queues, pipes, shared
    arrays): they validate ``context=`` like everything else and record its
    name, though any process can use them.

    Raises:
        ValueError: an unknown start-method name.
        TypeError: not None, a name or a ``multiprocessing`` context.
    """
    method: str = resolve_context(context).get_start_method()
    return method


_start_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # A fork-context start forks *inside* preserving_global_start_method(), so
    # the child inherits the lock held; a child that starts processes itself
    # would wait on it for ever (FAULTS F11). Give the child a fresh one.
    global _start_lock
    _start_lock = threading.Lock()
    # The stdlib's forkserver singleton survives fork with the *parent's*
    # server in it: the child's next forkserver start calls waitpid() on a
    # process that is not its child and fails with ChildProcessError. Make the
    # child start (and own) a server of its own. Its copy of the parent
    # server's "alive" fd is closed so that server still sees its owner go.
    forkserver = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver, "_forkserver", None)
    if server is None or getattr(server, "_forkserver_pid", None) is None:
        return
    alive_fd = server._forkserver_alive_fd
    for attr in ("_forkserver_address", "_forkserver_alive_fd", "_forkserver_pid"):
        setattr(server, attr, None)
    if hasattr(server, "_forkserver_authkey"):  # 3.14+: the authenticated server
        server._forkserver_authkey = None
    if isinstance(alive_fd, int):
        with contextlib.suppress(OSError):
            os.close(alive_fd)


_platform.after_fork_in_child(_after_fork_in_child)


@contextlib.contextmanager
def preserving_global_start_method() -> Iterator[None]:
    """Undo the stdlib's side effect of fixing the global start method.

    Wrap every ``Process.start()`` in this. If the user had not chosen a global
    start method before, none is chosen after; if they had, it is untouched.
    """
    default: Any = multiprocessing.context._default_context
    # The lock makes the read-start-restore sequence atomic with respect to
    # other parkit starts in other threads.
    with _start_lock:
        before = default._actual_context
        try:
            yield
        finally:
            if before is None and default._actual_context is default._default_context:
                default._actual_context = None


#: Exit code of a parkit child that stopped because the main module, which the
#: child was importing, started parkit work (no ``__main__`` guard). Parents
#: that see it from a child that had not started its work raise
#: :class:`parkit.errors.MainModuleError`.
MAIN_IMPORT_EXITCODE = 86

# The attribute the note sets on the child's (provisional) current-process
# object; it goes away with that object when the child's bootstrap ends.
_NOTE_ATTR = "_parkit_child"

#: What a parkit child does when it finds its main module starting parkit work:
#: ``"print"`` a one-line explanation on its stderr first (``parkit.Process``,
#: whose children print their failures as the stdlib's do), or stay ``"quiet"``
#: (pool workers and ``parkit.run``: the parent raises the error, once).
ChildReport: TypeAlias = 'Literal["print", "quiet"]'


def main_module_path(name: str = "__main__") -> str:
    """The main module's file, for messages (``"<unknown>"`` if it has none).

    A child importing the main script has it as ``__mp_main__`` meanwhile.
    """
    path = getattr(sys.modules.get(name), "__file__", None)
    return path if isinstance(path, str) else "<unknown>"


class _CurrentProcess:
    """Unpickles as the receiving process's ``current_process()``."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (multiprocessing.process.current_process, ())


class _ChildNote:
    """Unpickled in the child before it imports the main module: marks it as parkit's.

    It unpickles through ``setattr`` and ``current_process`` only (nothing of
    parkit), because the child has not set its ``sys.path`` yet: parkit may not
    be importable at that moment.
    """

    def __init__(self, report: ChildReport, method: str) -> None:
        self.value = (report, method)

    def __reduce__(self) -> tuple[Any, ...]:
        return (setattr, (_CurrentProcess(), _NOTE_ATTR, self.value))


class _IgnoreSigint:
    """Unpickles as ``signal.signal(SIGINT, SIG_IGN)`` in the receiving process."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (signal.signal, (signal.SIGINT, signal.SIG_IGN))


def _fix_preparation(data: dict[str, Any], report: ChildReport, method: str) -> None:
    path = data.get("init_main_from_path")
    if isinstance(path, str) and not os.path.isfile(path):
        # "<stdin>" (python - < job.py), or a script deleted since: the child
        # would fail to run it. Without it, the child imports no main module,
        # as for python -c.
        del data["init_main_from_path"]
    # prepare() in the child ignores keys it does not know; this one is
    # unpickled (and so acts) before prepare() imports the main module.
    data["parkit_child"] = _ChildNote(report, method)
    if report == "quiet":
        # Pool workers and run()'s child ignore Ctrl-C (the parent decides what
        # stops), but set that only once parkit's code runs in them: a terminal's
        # Ctrl-C to the process group while a spawned child was still importing
        # printed a KeyboardInterrupt traceback. Unpickled first, this leaves
        # only the interpreter's own start-up.
        data["parkit_sigint"] = _IgnoreSigint()


def _stop_if_importing_main() -> None:
    """Stop this process if it is a parkit child whose main-module import starts work.

    The stdlib would raise ``RuntimeError`` here ("An attempt has been made to
    start a new process before the current process has finished its
    bootstrapping phase"), printed as a traceback by every child, after which
    the parent sees only dead workers. A child that is not parkit's keeps that
    behaviour.
    """
    me = multiprocessing.process.current_process()
    note = getattr(me, _NOTE_ATTR, None)
    if note is None or not getattr(me, "_inheriting", False):
        return
    report, method = note
    if report == "print":
        # Imported here: it costs an import of concurrent.futures.process (errors.py).
        from ..errors import MainModuleError  # noqa: PLC0415

        error = MainModuleError(
            main_module_path("__mp_main__"),
            method,
            f"process {me.name!r} (pid {os.getpid()})",
            os.getpid(),
        )
        with contextlib.suppress(Exception):
            sys.stderr.write(f"parkit: {error}\n")
            sys.stderr.flush()
    # What the import created (a parkit.Lock at the script's top level) would
    # outlive os._exit: parkit's segments are named after their creator.
    from . import _segments  # noqa: PLC0415 - on this rare path only

    with contextlib.suppress(Exception):
        _segments.sweep(os.getpid())
    # os._exit: the stdlib's forkserver child turns any other exit into code 1,
    # and nothing of the half-imported main module should run at exit.
    os._exit(MAIN_IMPORT_EXITCODE)


_swap_lock = threading.Lock()

# The processes parkit started from this process (pool workers, Process children).
_started: weakref.WeakSet[Any] = weakref.WeakSet()


def _forget_children_after_fork() -> None:
    # A process forked from this one (os.fork()) inherits multiprocessing's set
    # of this process's children, and its exit hook would try to join them:
    # "AssertionError: can only join a child process" on its stderr. parkit's
    # are not its to join (multiprocessing's own children start with an empty
    # set); the user's stdlib processes are left as the stdlib leaves them.
    children: set[Any] = multiprocessing.process._children  # type: ignore[attr-defined]
    children.difference_update(list(_started))
    _started.clear()


_platform.after_fork_in_child(_forget_children_after_fork)


def join_process(process: multiprocessing.process.BaseProcess, timeout: float | None) -> None:
    """``process.join(timeout)``, waiting for the timeout here.

    The stdlib's join with a timeout imports ``multiprocessing.connection`` (and
    ``tempfile`` with it), which parkit's processes do without (``_frames.py``).
    The same semantics otherwise: it waits on the process's sentinel, then
    reaps it; a process not started, closed, or not this process's child gets
    the stdlib's error.
    """
    if (
        timeout is not None
        and process.is_alive()
        and not _platform.wait_fds([process.sentinel], max(0.0, timeout))
    ):
        return
    # Ended (its sentinel says so; the stdlib's join then reaps it the same
    # way), or not joinable (the stdlib's join raises its error).
    process.join()


def start_process(process: Any, report: ChildReport) -> None:
    """Start ``process`` (a ``multiprocessing`` process object) the parkit way.

    Undoes the stdlib's fixing of the global start method, repairs the
    child's preparation data (see the module docstring), and stops this
    process instead if it is a parkit child importing a main module that
    starts parkit work.

    Args:
        process: the unstarted process.
        report: what the child does if its main-module import starts parkit work.

    Raises:
        Exception: what ``process.start()`` raised.
    """
    _stop_if_importing_main()
    _started.add(process)
    with preserving_global_start_method():
        method = getattr(process, "_start_method", None)
        if method == "fork":
            process.start()  # a fork child imports nothing: no preparation data
            return
        # Replaced for the duration of this start, and only for this thread:
        # another thread starting a process of its own with the stdlib gets the
        # stdlib's data unchanged. Nothing of the user's __main__ is touched.
        # parkit's own starts take turns (_swap_lock): two overlapping swaps
        # would each restore what the other installed, and leave a wrapper in
        # place for good.
        # Imported here: a fork start never needs it (nor runpy and
        # importlib.util, which it imports), and the stdlib's spawn and
        # forkserver starts import it anyway.
        import multiprocessing.spawn  # noqa: PLC0415

        if method == "forkserver":
            from . import _forkserver  # noqa: PLC0415 - not under fork and spawn

            _forkserver.use_for(process)
        with _swap_lock:
            original = multiprocessing.spawn.get_preparation_data
            me = threading.get_ident()

            def get_preparation_data(name: str) -> dict[str, Any]:
                data: dict[str, Any] = original(name)
                if threading.get_ident() == me:
                    _fix_preparation(data, report, str(method))
                return data

            multiprocessing.spawn.get_preparation_data = get_preparation_data
            try:
                process.start()
            finally:
                multiprocessing.spawn.get_preparation_data = original
