"""Sleep on a 32-bit word in shared memory until another process changes it.

This is the one blocking primitive of :mod:`parkit._sync`: Linux's ``futex``
system call, reached through :mod:`ctypes` (the call releases the GIL). A waiter
reads a word under the object's guard, leaves the guard, and calls
:func:`wait` with the value it read: the kernel puts it to sleep only if the word
still holds that value, so a change made in between is never missed. Whoever
changes the word calls :func:`wake`.

The futexes are *shared* (not ``FUTEX_PRIVATE_FLAG``): the kernel keys them on
the file page, so they work across processes that map the same file.

Where the system call is unavailable (another OS, an architecture whose syscall
number is not listed here, or the probe forced to the portable answers:
``_core/_platform.py``), :func:`wait` polls the word instead, sleeping between
looks for a slice that grows from :data:`POLL_FIRST_S` to :data:`POLL_MAX_S`:
it returns as soon as it sees the word change, so a change is noticed within
one slice, and a waiter that has waited long costs its CPU a look every
:data:`POLL_MAX_S` seconds. :func:`wake` does nothing then. :data:`NATIVE`
says which one is in use. (``benchmarks/wake_latency.py`` measures both.)
"""

from __future__ import annotations

import ctypes
import errno
import os
import time
from collections.abc import Callable

from .._core import _platform

__all__ = ["NATIVE", "POLL_FIRST_S", "POLL_MAX_S", "sleeper", "wait", "wake", "waker"]

# SYS_futex per architecture (asm/unistd.h).
_SYS_FUTEX = {
    "x86_64": 202,
    "amd64": 202,
    "aarch64": 98,
    "arm64": 98,
    "riscv64": 98,
    "i386": 240,
    "i686": 240,
    "armv7l": 240,
    "ppc64le": 221,
    "ppc64": 221,
    "s390x": 238,
}
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_INT_MAX = 2**31 - 1


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


def _load() -> tuple[object, object, int] | None:
    if not _platform.FUTEX:
        return None
    number = _SYS_FUTEX.get(os.uname().machine.lower())
    if number is None:
        return None
    # The running interpreter already links libc: dlopen(NULL) finds syscall() there
    # at no cost, where ctypes.util.find_library runs `ldconfig -p` in a subprocess
    # (~4 ms, at import time, in every spawned worker).
    for name in (None, "libc.so.6"):
        try:
            # Two handles on the same function: the CDLL one releases the GIL
            # (a wait sleeps); the PyDLL one keeps it, which saves about a
            # third of the call for a wake, which never blocks.
            syscall = ctypes.CDLL(name, use_errno=True).syscall
            keep_gil = ctypes.PyDLL(name, use_errno=True).syscall
            break
        except (OSError, AttributeError):
            continue
    else:
        return None
    syscall.restype = keep_gil.restype = ctypes.c_long
    return syscall, keep_gil, number


_native = _load()
#: Whether waits sleep in the kernel (True) or poll in short slices (False).
NATIVE = _native is not None


def wait(address: int, expected: int, timeout: float) -> None:
    """Sleep while the 32-bit word at ``address`` equals ``expected``.

    Returns after a :func:`wake`, after ``timeout`` seconds, when the word no
    longer holds ``expected``, or spuriously (a signal): callers re-check.
    """
    sleeper(address)(expected, timeout)


#: Where there is no futex: the first sleep between two looks at the word, and
#: the longest (each sleep doubles the last).
POLL_FIRST_S = 50e-6
POLL_MAX_S = 0.002


def _poller(address: int) -> Callable[[int, float], None]:
    word = ctypes.c_int32.from_address(address)
    monotonic, sleep = time.monotonic, time.sleep

    def poll(expected: int, timeout: float) -> None:
        if timeout <= 0 or word.value != expected:
            return
        deadline = monotonic() + timeout
        pause = POLL_FIRST_S
        while True:
            left = deadline - monotonic()
            if left <= 0:
                return
            sleep(min(pause, left))
            if word.value != expected:
                return
            pause = min(pause * 2, POLL_MAX_S)

    return poll


def sleeper(address: int) -> Callable[[int, float], None]:
    """:func:`wait` on ``address``, its constant arguments converted once."""
    if _native is None:
        return _poller(address)
    syscall, _, number = _native
    head = (ctypes.c_long(number), ctypes.c_void_p(address), ctypes.c_int(_FUTEX_WAIT))
    tail = (None, ctypes.c_int(0))

    def wait_on(expected: int, timeout: float) -> None:
        if timeout <= 0:
            return
        spec = _Timespec(int(timeout), int((timeout % 1.0) * 1e9))
        result = syscall(  # type: ignore[operator]
            *head, ctypes.c_int(expected), ctypes.byref(spec), *tail
        )
        if result == -1:
            code = ctypes.get_errno()
            if code not in (errno.EAGAIN, errno.ETIMEDOUT, errno.EINTR):
                raise OSError(code, f"futex wait failed: {errno.errorcode.get(code, code)}")

    return wait_on


def wake(address: int, count: int = _INT_MAX) -> None:
    """Wake up to ``count`` processes sleeping on the word at ``address``."""
    if _native is None:
        return
    _, keep_gil, number = _native
    keep_gil(  # type: ignore[operator]
        *_wake_args(number, address, min(count, _INT_MAX))
    )


def _wake_args(number: int, address: int, count: int) -> tuple[object, ...]:
    return (
        ctypes.c_long(number),
        ctypes.c_void_p(address),
        ctypes.c_int(_FUTEX_WAKE),
        ctypes.c_int(count),
        None,
        None,
        ctypes.c_int(0),
    )


def _nothing() -> None:
    pass


def waker(address: int) -> Callable[[], None]:
    """:func:`wake` of every sleeper on ``address``, its arguments converted once.

    A segment wakes on the same word for its whole life; building the seven
    ctypes arguments on each call cost more than the system call itself.
    """
    if _native is None:
        return _nothing
    _, keep_gil, number = _native
    args = _wake_args(number, address, _INT_MAX)

    def wake_all() -> None:
        keep_gil(*args)  # type: ignore[operator]

    return wake_all
