"""The errors that are also ``concurrent.futures.process.BrokenProcessPool``.

Public as ``parkit.errors.WorkerCrashed``, ``parkit.errors.PoolBroken`` and
``parkit.errors.MainModuleError``
(their ``__module__``), which load this module on first use: the stdlib class
they subclass costs an import of ``concurrent.futures.process``, which the
rest of parkit, a pool worker above all, does without. Users write
``except BrokenProcessPool`` for code written for the stdlib executor: the base
must be the stdlib's own class, not a look-alike.
"""

from __future__ import annotations

import signal as _signal
from typing import TYPE_CHECKING

from .errors import ParkitError, _crash_message, _signal_of

__all__ = ["MainModuleError", "PoolBroken", "WorkerCrashed"]


def _stdlib_base() -> type[Exception]:
    try:
        from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415
    except RuntimeError:
        # Too late: once the interpreter has begun to exit (threading's
        # shutdown, then atexit handlers, where pools are terminated) the
        # module cannot be imported any more (it registers an exit hook, which
        # raises then). Nobody can hold its BrokenProcessPool to catch, so its
        # own base stands in (FAULTS: a pool broken at exit must still say so).
        from concurrent.futures import BrokenExecutor  # noqa: PLC0415

        return BrokenExecutor
    return BrokenProcessPool


if TYPE_CHECKING:
    from concurrent.futures.process import BrokenProcessPool as _BrokenProcessPool
else:
    _BrokenProcessPool = _stdlib_base()


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

    Args:
        exitcode: the exit code (negative for a signal), or ``None``.
        pid: the worker's pid, or ``None``.
        item_index: the item's index, or ``None`` for a single call.
        what: the task, as the message names it.
    """

    __module__ = "parkit.errors"  # where users import it from (and pickles find it)

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

    __module__ = "parkit.errors"


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

    Args:
        main_path: the main module's file.
        start_method: the child's start method.
        who: the process that stopped, as the message names it.
        pid: the child's pid, or ``None``.
    """

    __module__ = "parkit.errors"

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
