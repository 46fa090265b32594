"""The shared-memory segments this process owns, removed at exit after its children.

A parkit lock, queue or shared array is a segment (``_segments.py``) that its creating
process unlinks once it is done with it. At interpreter exit "done" must mean
*after the non-daemonic children have been joined*, as the stdlib joins them at
exit: a child started just before the parent's script ended may not even have
opened the file yet (under spawn and forkserver it attaches by name while it
rebuilds its arguments), and unlinking first leaves it nothing to open.

``weakref.finalize``'s own exit hook can't give that order. ``atexit`` runs its
hooks last-registered first; ``multiprocessing``'s hook (which joins the
children) is registered when ``multiprocessing.util`` is imported, and
``weakref``'s when the program creates its first finalizer, usually later, so
it ran first and removed every file while the children were still starting::

    interpreter exit
      threading._shutdown()            non-daemonic threads joined
      atexit hooks, last registered first:
        parkit: drain parkit.Process results, shut pools down
        multiprocessing.util._exit_function():
          finalizers with exitpriority >= 0
          terminate daemonic children, join every child
          finalizers with exitpriority < 0  <-- remove_at_exit() runs here

So the owners' finalizers don't run at exit (``atexit = False``), and
:func:`own` records each owned file here instead; one ``multiprocessing``
``Finalize`` with a negative priority removes what is left once the children
are joined. A child started by ``multiprocessing`` calls the same exit function
when its target returns, so files a child owns go at its exit too.

Only the names are removed at exit: the descriptors and mappings stay until
the process ends (a child's own non-daemonic threads are joined after its exit
function and may still use them); processes that opened a file keep using it.
"""

from __future__ import annotations

import multiprocessing.util
import os
import threading

from . import _platform

__all__ = ["disown", "own"]

#: Runs after the finalizers of ``multiprocessing`` itself (queues use -5).
_EXIT_PRIORITY = -100

# segment name -> pid of its owner. Inherited by a forked child, which must not remove
# its parent's files: remove_at_exit() skips other pids' entries.
_owned: dict[str, int] = {}
_lock = threading.Lock()
# The exit hook of this process, and the process that registered it. A forked
# child needs its own: Finalize objects run only in the process that made them.
# And a child that multiprocessing starts clears every finalizer as it begins
# its target (BaseProcess._after_fork), after the child may have registered one
# already: files created while it imported the main module (a parkit.Lock at a
# script's top level, under spawn or forkserver).
_hook: multiprocessing.util.Finalize | None = None
_hook_pid: int | None = None


def own(name: str) -> None:
    """Record that this process owns segment ``name`` and removes it at exit (at the latest)."""
    global _hook, _hook_pid
    pid = os.getpid()
    with _lock:
        _owned[name] = pid
        if _hook is None or _hook_pid != pid or not _hook.still_active():
            _hook = multiprocessing.util.Finalize(None, remove_at_exit, exitpriority=_EXIT_PRIORITY)
            _hook_pid = pid


class _Anchor:
    """What multiprocessing's after-fork registry holds weakly for this module."""


_anchor = _Anchor()


def _rehook(_: _Anchor) -> None:
    # Called by multiprocessing in a child it starts, right after it cleared
    # the finalizers (BaseProcess._after_fork): put the exit hook back if the
    # child owns files already, made while it imported the main module.
    global _hook, _hook_pid
    pid = os.getpid()
    _hook = _hook_pid = None
    if any(owner == pid for owner in _owned.values()):
        _hook = multiprocessing.util.Finalize(None, remove_at_exit, exitpriority=_EXIT_PRIORITY)
        _hook_pid = pid


multiprocessing.util.register_after_fork(_anchor, _rehook)


def disown(name: str) -> None:
    """Forget segment ``name``: its owner removed it."""
    _owned.pop(name, None)


def remove_at_exit() -> None:
    """Remove every segment this process still owns (the children are joined)."""
    from . import _segments  # noqa: PLC0415 - it imports this module lazily too

    pid = os.getpid()
    for name, owner in list(_owned.items()):
        if owner == pid:
            _segments.discard(name)
            _owned.pop(name, None)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


_platform.after_fork_in_child(_after_fork_in_child)
