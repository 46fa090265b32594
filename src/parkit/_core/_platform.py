"""What this platform offers parkit: the one probe every platform difference goes through.

Each answer is a module-level constant, computed once when this module is first
imported (never per call: the lock and queue hot paths read none of them; the
objects pick their code path when they are made)::

    answer          what it selects                            Linux   macOS   Windows
    ------          ---------------                            -----   -----   -------
    SHM_FILES       segments are files in /dev/shm: listed,    yes     no      no
                    grown with ftruncate, written with pwrite
    POSIX_SHM       else segments are shm_open objects          yes     yes     no
                    (_posixshmem), listed by a registry
    FUTEX           waits sleep in the kernel (else they poll)  yes*    no      no
    ROBUST_MUTEX    the sync guard is a robust pthread mutex    yes**   no      no
                    (else a flock)
    FLOCK           fcntl.flock exists                          yes     yes     no
    AFFINITY        os.sched_setaffinity (cpus=)                yes     no      no
    PROC            /proc/<pid>/stat: start times, fd paths     yes     no      no
    PIPE_RESIZE     fcntl(F_SETPIPE_SZ) on pipes                yes     no      no
    CGROUPS         a cgroup CPU quota bounds usable_cpus()     yes     no      no
    POLL            select.poll (else select.select)            yes     yes     no
    SCHED_YIELD     os.sched_yield while a waiter spins         yes     yes     no
    FORK_HOOKS      os.register_at_fork                         yes     yes     no
    WINDOWS         everything that needs POSIX raises          no      no      yes
                    NotImplementedError when it is made

    * on the architectures whose futex syscall number parkit knows (_sync/_futex.py)
    ** with a C library that has robust mutexes (glibc, musl)

**The private test switch** ``PARKIT_FORCE_PORTABLE`` (read once, here; for
parkit's own tests and benchmarks, not a public option): ``1`` forces the
answers macOS gives (no ``/dev/shm`` listing, no futex, no robust mutex, no
affinity, no ``/proc``, no pipe resizing) on any platform, so that Linux CI runs
the macOS code paths; ``windows`` forces Windows's answers as well (no POSIX
shared memory, no ``flock``, no fork hooks), so that Linux CI checks what Windows
users are told. Unset, empty or ``0``: the real answers.
"""

from __future__ import annotations

import os
import select
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "AFFINITY",
    "CGROUPS",
    "FLOCK",
    "FORCED",
    "FORCE_ENV",
    "FORK_HOOKS",
    "FUTEX",
    "NAME",
    "PIPE_RESIZE",
    "POLL",
    "POSIX_SHM",
    "PROC",
    "ROBUST_MUTEX",
    "SCHED_YIELD",
    "SHM_DIR",
    "SHM_FILES",
    "WINDOWS",
    "after_fork_in_child",
    "describe",
    "not_on_windows",
    "poll_ms",
    "wait_fds",
]

#: The private test switch (see the module's docstring).
FORCE_ENV = "PARKIT_FORCE_PORTABLE"

_FORCE_VALUES = {"": None, "0": None, "1": "posix", "windows": "windows"}


def _forced() -> str | None:
    value = os.environ.get(FORCE_ENV, "")
    if value not in _FORCE_VALUES:
        raise ValueError(
            f"{FORCE_ENV} (a private test switch) must be unset, '0', '1' or 'windows', "
            f"not {value!r}"
        )
    return _FORCE_VALUES[value]


#: ``None``, or what the test switch forced: ``"posix"`` (macOS's answers) or
#: ``"windows"``.
FORCED = _forced()

_LINUX = sys.platform.startswith("linux") and FORCED is None

#: Whether this is Windows (or the test switch says so): nothing that needs
#: POSIX can be made.
WINDOWS = os.name == "nt" or FORCED == "windows"

#: The platform, as errors name it.
NAME = (
    "Windows"
    if WINDOWS
    else {"linux": "Linux", "darwin": "macOS"}.get(sys.platform, repr(sys.platform))
)
if FORCED is not None:
    NAME += f" (simulated: {FORCE_ENV}={os.environ[FORCE_ENV]})"

#: Where segments are files, if they are (Linux's tmpfs).
SHM_DIR = "/dev/shm"

#: Segments are files in :data:`SHM_DIR` (listed, resized, written as files).
SHM_FILES = _LINUX and os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK)


def _have_posix_shm() -> bool:
    if WINDOWS:
        return False
    try:
        import _posixshmem  # noqa: F401, PLC0415 - stdlib C module, absent on Windows
    except ImportError:
        return False
    return True


#: Segments can be POSIX shared-memory objects (``shm_open``). Only probed where
#: they are used (no /dev/shm files): an import saved elsewhere.
POSIX_SHM = False if SHM_FILES else _have_posix_shm()


#: The futex system call: Linux (``_sync/_futex.py`` holds its numbers per
#: architecture and has the last word, :data:`parkit._sync._futex.NATIVE`).
FUTEX = _LINUX

#: Robust, process-shared pthread mutexes (``_sync/_mutex.py`` loads them).
ROBUST_MUTEX = _LINUX


def _have_flock() -> bool:
    if WINDOWS:
        return False
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:
        return False
    return hasattr(fcntl, "flock")


#: ``fcntl.flock``: the sync guard where there is no robust mutex.
FLOCK = _have_flock()

#: ``os.sched_setaffinity`` (``cpus=``) and ``os.sched_getaffinity``.
AFFINITY = FORCED is None and hasattr(os, "sched_setaffinity")

#: ``/proc``: a process's start time (pid reuse) and ``/proc/self/fd``.
PROC = FORCED is None and os.path.isdir("/proc/self")

#: ``fcntl(fd, F_SETPIPE_SZ)``: a pipe grown to 1 MiB (Linux).
PIPE_RESIZE = _LINUX and FLOCK

#: ``/sys/fs/cgroup/cpu.max``: a container's CPU quota (Linux).
CGROUPS = _LINUX

#: ``select.poll`` (else ``select.select``).
POLL = hasattr(select, "poll")

#: ``os.sched_yield``.
SCHED_YIELD = hasattr(os, "sched_yield")

#: ``os.register_at_fork``.
FORK_HOOKS = not WINDOWS and hasattr(os, "register_at_fork")


def after_fork_in_child(hook: Callable[[], object]) -> None:
    """``os.register_at_fork(after_in_child=hook)`` where processes fork."""
    if FORK_HOOKS:
        os.register_at_fork(after_in_child=hook)


def poll_ms(timeout: float | None) -> int | None:
    """``timeout`` seconds as ``poll``'s milliseconds, rounded up (``None``: no limit).

    Rounded up, so that a wait never returns before its deadline for nothing.
    """
    return None if timeout is None else max(0, int(timeout * 1000 + 0.999))


def wait_fds(fds: list[int], timeout: float | None, *, write: bool = False) -> list[int]:
    """Those of ``fds`` that are ready within ``timeout`` s: readable (data, end
    of file, hang-up), or writable with ``write=True``.

    ``multiprocessing.connection.wait`` for plain file descriptors, without
    importing ``multiprocessing.connection`` (and ``tempfile`` with it).
    ``None`` waits for as long as it takes; an empty list means time ran out.
    """
    if POLL:
        poller = select.poll()
        event = select.POLLOUT if write else select.POLLIN
        for fd in fds:
            poller.register(fd, event)
        return [fd for fd, _ in poller.poll(poll_ms(timeout))]
    if write:
        _, ready, _ = select.select([], fds, [], timeout)
    else:
        ready, _, _ = select.select(fds, [], [], timeout)
    return ready


def not_on_windows(what: str, needs: str, instead: str) -> None:
    """Raise ``NotImplementedError`` on Windows: ``what`` needs ``needs`` (POSIX).

    Called where such an object is made, so that the error names it and the
    stdlib's alternative (``instead``), not something deep inside.
    """
    if WINDOWS:
        raise NotImplementedError(
            f"{what} needs {needs}, which parkit supports on Linux and macOS only, "
            f"not on {NAME}; use {instead}"
        )


def describe() -> dict[str, object]:
    """Every answer, for ``python -m parkit info`` and bug reports."""
    return {
        "forced": FORCED,
        "windows": WINDOWS,
        "shm": "files in " + SHM_DIR if SHM_FILES else ("shm_open" if POSIX_SHM else None),
        "futex": FUTEX,
        "robust_mutex": ROBUST_MUTEX,
        "flock": FLOCK,
        "affinity": AFFINITY,
        "proc": PROC,
    }
