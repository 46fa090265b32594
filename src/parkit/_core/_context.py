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
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, TypeAlias

__all__ = [
    "START_METHOD_ENV",
    "ContextLike",
    "available_methods",
    "default_context",
    "preserving_global_start_method",
    "resolve_context",
    "start_method",
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


os.register_at_fork(after_in_child=_after_fork_in_child)


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
