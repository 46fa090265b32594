"""A robust, process-shared pthread mutex in shared memory: the guard's fast lock.

The guard of every sync object (``_segment``) was a ``flock`` on its file: two
system calls per hold, several holds per operation, most of a lock hand-off's
cost. A ``pthread_mutex_t`` made ``PTHREAD_PROCESS_SHARED`` and
``PTHREAD_MUTEX_ROBUST`` in the segment's file keeps what ``flock`` gave:

* an uncontended lock and unlock are atomic instructions in libc, no system
  call (the kernel is entered only to sleep on a held mutex, or wake a sleeper);
* a process that dies holding it does not wedge it: the kernel marks it
  (``FUTEX_OWNER_DIED``) and the next locker gets ``EOWNERDEAD``, makes it
  consistent and goes on, as the next ``flock`` did.

It is reached through :mod:`ctypes`: ``pthread_mutex_trylock`` and
``pthread_mutex_unlock`` through a ``PyDLL`` handle (the GIL kept: they never
block, and that saves a third of the call), ``pthread_mutex_lock`` through a
``CDLL`` one (the GIL released while it sleeps). Where the functions are
missing (no robust mutexes: macOS, old C libraries; or the probe forced to the
portable answers, ``_core/_platform.py``), :data:`AVAILABLE` is False and the
guard stays a ``flock``.
"""

from __future__ import annotations

import ctypes
import errno
from typing import Any

from .._core import _platform
from .._core._cpus import allowed_cpus

__all__ = ["AVAILABLE", "SIZE", "Mutex", "init"]

#: Bytes reserved for one mutex (pthread_mutex_t is 24 to 48 bytes on Linux).
SIZE = 128
#: Tries of a held mutex before sleeping on it, where another CPU can run its
#: holder (0 on one CPU). The guard is held for a microsecond or two; a sleeper
#: costs a futex wait, a futex wake from the holder and two context switches.
SPINS = 200 if allowed_cpus() > 1 else 0
_PTHREAD_PROCESS_SHARED = 1
_PTHREAD_MUTEX_ROBUST = 1


def _load() -> tuple[Any, ...] | None:
    if not _platform.ROBUST_MUTEX:
        return None
    # The interpreter links libc (and libpthread before glibc 2.34): dlopen(NULL)
    # finds the functions without a library search.
    for name in (None, "libc.so.6", "libpthread.so.0"):
        try:
            free = ctypes.CDLL(name, use_errno=True)  # releases the GIL
            held = ctypes.PyDLL(name, use_errno=True)  # keeps it
            functions = (
                free.pthread_mutex_lock,
                held.pthread_mutex_trylock,
                held.pthread_mutex_unlock,
                held.pthread_mutex_consistent,
                held.pthread_mutex_init,
                held.pthread_mutexattr_init,
                held.pthread_mutexattr_setpshared,
                held.pthread_mutexattr_setrobust,
                held.pthread_mutexattr_destroy,
            )
        except (OSError, AttributeError):
            continue
        for function in functions:
            function.restype = ctypes.c_int
        return functions
    return None


_native = _load()
#: Whether robust process-shared mutexes are available here.
AVAILABLE = _native is not None


def init(address: int) -> None:
    """Make a robust, process-shared mutex at ``address`` (zeroed memory, SIZE bytes)."""
    assert _native is not None
    _, _, _, _, mutex_init, attr_init, set_pshared, set_robust, attr_destroy = _native
    attr = ctypes.create_string_buffer(64)  # pthread_mutexattr_t: 4 to 8 bytes
    codes = (
        attr_init(attr),
        set_pshared(attr, _PTHREAD_PROCESS_SHARED),
        set_robust(attr, _PTHREAD_MUTEX_ROBUST),
        mutex_init(ctypes.c_void_p(address), attr),
        attr_destroy(attr),
    )
    for code in codes:
        if code:
            raise OSError(code, f"could not make a shared mutex: {errno.errorcode.get(code, code)}")


class Mutex:
    """The mutex at ``address``: its pointer, and the calls the guard makes.

    The hot calls are the raw C functions (``try_lock(pointer)`` and
    ``unlock(pointer)`` return 0 on success): the guard calls them inline, and
    :meth:`lock_slow` / :meth:`failed` only when they did not return 0.
    """

    __slots__ = ("_consistent", "_lock", "pointer", "try_lock", "unlock")

    def __init__(self, address: int) -> None:
        assert _native is not None
        self._lock, self.try_lock, self.unlock, self._consistent = _native[:4]
        self.pointer = ctypes.c_void_p(address)

    def lock_slow(self, code: int) -> None:
        """After ``try_lock`` returned ``code`` (not 0): wait for it, or settle."""
        if code == errno.EBUSY:
            try_lock, pointer = self.try_lock, self.pointer
            for _ in range(SPINS):
                code = try_lock(pointer)
                if code != errno.EBUSY:
                    break
            else:
                code = self._lock(pointer)
            if not code:
                return
        if code == errno.EOWNERDEAD:
            # Its holder died inside the guard (held for microseconds, never
            # across user code): the words it was changing are as it left them,
            # as with the flock before. The mutex is ours now.
            code = self._consistent(self.pointer)
            if not code:
                return
        self.failed(code)

    def try_slow(self, code: int) -> bool:
        """After ``try_lock`` returned ``code`` (not 0): whether it is ours."""
        if code == errno.EBUSY:
            return False
        self.lock_slow(code)  # EOWNERDEAD: made consistent, and ours
        return True

    @staticmethod
    def failed(code: int) -> None:
        raise OSError(code, f"shared mutex: {errno.errorcode.get(code, code)}")
