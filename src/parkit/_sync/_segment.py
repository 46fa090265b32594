"""The shared state under every parkit lock, event, barrier and queue.

Each synchronization object is a small shared-memory segment (``_core/_segments.py``:
a file in ``/dev/shm`` on Linux, a ``shm_open`` object elsewhere; readable by
its owner only, SPEC §7) that every process using the object maps::

    process A                      segment parkit-<owner>-sync-<token>      process B
    ---------                      -----------------------------------      ---------
    with seg.guard():   ---------> | magic | seq | state words ... |  <--- with seg.guard():
        read/write words           | holder pid, start, ...         |        read/write words
    futex.wait(seq) ...  <-wake--- | (queue: ring buffer of frames) |  ---> futex.wake(seq)

* **The guard** serializes every change to the words: a per-process
  ``threading.Lock`` (threads) plus, between processes, a robust
  process-shared pthread mutex in the segment's second page (:mod:`._mutex`:
  no system call when it is free), or a ``flock`` where the C library has no
  robust mutexes (macOS): on the segment's file, or on its marker file where
  the segment is a ``shm_open`` object, which macOS can't lock
  (``_segments.guard_fd``). Either is given up by the kernel when its process
  dies, so a process killed inside the guard cannot wedge the object. The
  guard is held for microseconds and never across a wait or user code.
* **Waiting** happens outside the guard, on the ``seq`` word: every change
  that may let a waiter proceed bumps ``seq`` and wakes the sleepers
  (:mod:`._futex`; where there is no futex, sleepers poll the word), which
  then re-check under the guard. The wake-up is sent
  as the guard is left, not inside it: a sleeper woken while the changer still
  holds the guard could go straight back to sleep, on the ``flock``, and need a
  second wake-up. Only objects that someone waits on (the ``WAITERS`` word)
  make the system call at all.
* **Identity**: a process is named by its pid *and* its start time (from
  ``/proc`` where there is one), so a holder that died is recognised even when
  its pid was reused.

Why ``flock`` (where there is no robust mutex) and not ``fcntl`` record locks: a
record lock is dropped when its process closes *any* descriptor of the file, and
every ``mmap`` holds a duplicate descriptor that it closes when it is unmapped
(a queue remaps its data area as it grows). A ``flock`` belongs to the open file
description instead; so each process opens each segment once (:func:`attach`
keeps a per-process table), and a forked child re-opens its inherited segments,
which would otherwise share their parent's lock.

The creating process owns the segment and removes it when its last handle is
closed or collected, or at exit once its non-daemonic children have been joined
(``_core/_owned.py``); processes that already mapped it keep working.
Pool workers remove the segments of an owner that was SIGKILLed (the
``parkit-<owner>-`` prefix, as for every parkit segment).

A queue's data area (:meth:`Segment.data`) follows the header page in the same
file where segments are files (grown with ``ftruncate``); a ``shm_open`` object
can't be resized on macOS, so there it is a segment of its own,
``parkit-<owner>-q<0|1>-<token>``, replaced by the other name when it is resized.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import sys
import threading
import weakref
from collections.abc import Callable

from .._core import _owned, _peer, _platform, _segments
from . import _futex, _mutex

if _platform.FLOCK and not _mutex.AVAILABLE:
    import fcntl  # the guard, where there is no robust mutex

__all__ = [
    "SEQ",
    "Identity",
    "Segment",
    "attach",
    "create",
    "is_alive",
    "myself",
]

#: Word index of the change counter that waiters sleep on.
SEQ = 1
_MAGIC = 0x70_6B_73_79  # "pksy"
# The words, then a page for the guard's mutex (see _mutex); a queue's data
# area follows where segments are files.
_HEADER_SIZE = 2 * mmap.PAGESIZE

#: ``(pid, start time)``: a process, robust against pid reuse (see ``_core._peer``).
Identity = tuple[int, int]

_me: tuple[int, Identity] | None = None


def myself() -> Identity:
    """This process's identity (cached per process, recomputed after fork)."""
    global _me
    pid = _peer.getpid()
    if _me is None or _me[0] != pid:
        peer = _peer.identify(pid)
        _me = (pid, (peer.pid, peer.start))
    return _me[1]


def is_alive(who: Identity) -> bool:
    """Whether the process ``who`` still runs (a zombie does not; see ``_peer``)."""
    if who[0] <= 0:
        return False
    return _peer.is_alive(_peer.PeerId(who[0], who[1], 0))


def _data_names(name: str) -> tuple[str, str]:
    """The two names a separate data area of segment ``name`` takes in turn."""
    owner, _, token = name.split("-", 3)[1:]
    return f"parkit-{owner}-q0-{token}", f"parkit-{owner}-q1-{token}"


class Segment:
    """One process's view of a shared state segment: words, guard, wait and wake."""

    def __init__(self, name: str, fd: int, owner: bool, data: bool = False) -> None:
        self.name = name
        self._fd = fd
        self._mm = mmap.mmap(fd, _HEADER_SIZE)
        #: Where the data area (queues) starts in the file: after the header.
        self.size = _HEADER_SIZE
        #: The state as signed 64-bit words (the first page).
        self.words = memoryview(self._mm).cast("q")[: mmap.PAGESIZE // 8]
        self._base = ctypes.addressof(ctypes.c_char.from_buffer(self._mm))
        # The futex is the low 32 bits of the SEQ word.
        self._seq_address = self._base + 8 * SEQ + (4 if sys.byteorder == "big" else 0)
        self._thread_lock = threading.Lock()
        self._mutex: _mutex.Mutex | None = None
        #: What the guard flocks where there is no robust mutex (else -1).
        self._guard_fd = -1
        if _mutex.AVAILABLE:
            if owner:
                _mutex.init(self._base + mmap.PAGESIZE)
            self._mutex = _mutex.Mutex(self._base + mmap.PAGESIZE)
        else:
            self._guard_fd = _segments.guard_fd(name, fd)
        # Set under the guard by changed(); the wake-up goes out in unlock().
        self._wake_pending = False
        self._wake = _futex.waker(self._seq_address)
        self.sleep = _futex.sleeper(self._seq_address)
        self._data: mmap.mmap | None = None
        #: The generation of the data area mapped here (0: none; see data()).
        self.data_gen = 0
        # Where the data area is a segment of its own (see the module's
        # docstring), its owner removes it with this one; a sweep finds it by
        # the same owner prefix.
        owned = (name, *_data_names(name)) if owner and data and not _segments.FILES else (name,)
        self._finalizer = weakref.finalize(
            self, _release, owned, fd, self._guard_fd, os.getpid() if owner else None
        )
        # Not at exit: children still starting may need the segment (see _core._owned).
        self._finalizer.atexit = False
        if owner:
            for each in owned:
                _owned.own(each)

    # -- guard ------------------------------------------------------------------

    def guard(self) -> contextlib.AbstractContextManager[memoryview]:
        """``with segment.guard() as words:`` hold the object's short internal lock."""
        return self  # a generator-based context manager cost a microsecond a use

    def __enter__(self) -> memoryview:
        self.lock()
        return self.words

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    def lock(self) -> None:
        """Take the guard (hot paths; pair with :meth:`unlock` in ``finally``)."""
        self._thread_lock.acquire()
        try:
            mutex = self._mutex
            if mutex is None:
                fcntl.flock(self._guard_fd, fcntl.LOCK_EX)
            else:
                code = mutex.try_lock(mutex.pointer)
                if code:
                    mutex.lock_slow(code)
        except BaseException:
            self._thread_lock.release()
            raise

    def try_lock(self) -> bool:
        """Take the guard if no one holds it (in any process); whether it was taken."""
        if not self._thread_lock.acquire(blocking=False):
            return False
        try:
            mutex = self._mutex
            if mutex is None:
                try:
                    fcntl.flock(self._guard_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pass
            else:
                code = mutex.try_lock(mutex.pointer)
                if not code or mutex.try_slow(code):
                    return True
        except BaseException:
            self._thread_lock.release()
            raise
        self._thread_lock.release()
        return False

    def unlock(self) -> None:
        """Leave the guard, then wake the sleepers if a change asked for it."""
        wake = self._wake_pending
        self._wake_pending = False
        try:
            mutex = self._mutex
            if mutex is None:
                fcntl.flock(self._guard_fd, fcntl.LOCK_UN)
            else:
                code = mutex.unlock(mutex.pointer)
                if code:
                    mutex.failed(code)
        finally:
            self._thread_lock.release()
        if wake:
            # Outside the guard: see the module's docstring. A waiter that has
            # not gone to sleep yet sees SEQ moved and does not sleep at all.
            self._wake()

    def _reopen(self) -> None:
        # A forked child shares its parent's open file description, and with it
        # the parent's flock: give the child a description of its own, under the
        # same descriptor number.
        _segments.reopen(self.name, self._guard_fd)

    # -- waiting ----------------------------------------------------------------

    def changed(self, wake: bool = True) -> None:
        """Bump the change counter (call under the guard); the sleepers are
        woken when the guard is left (:meth:`unlock`)."""
        self.words[SEQ] = (self.words[SEQ] + 1) & 0x7FFF_FFFF
        if wake:
            self._wake_pending = True

    #: ``sleep(seen, timeout)``: sleep (outside the guard) until the counter
    #: moves on from ``seen``, at most ``timeout`` seconds (see :mod:`._futex`).
    sleep: Callable[[int, float], None]

    # -- the data area (queues) -------------------------------------------------

    def data(self, gen: int, size: int) -> mmap.mmap | None:
        """The data area of generation ``gen``, ``size`` bytes, mapped (under the guard).

        The header (words, futex) stays where it is; only this mapping moves when
        a process resizes the area (:meth:`resize_data`), and each process remaps
        it here when it sees a new generation in the header.
        """
        if gen == self.data_gen:
            return self._data
        if size == 0:
            self._data = None
        elif _segments.FILES:
            self._data = mmap.mmap(self._fd, size, offset=self.size)
        else:
            name = _data_names(self.name)[gen & 1]
            fd = _segments.attach(name, "data area of a parkit.Queue")
            try:
                self._data = mmap.mmap(fd, size)
            finally:
                os.close(fd)
        self.data_gen = gen
        return self._data

    def resize_data(self, gen: int, size: int, keep: int) -> mmap.mmap | None:
        """Make the data area ``size`` bytes as generation ``gen`` (under the guard).

        The first ``keep`` bytes are kept. The caller announces ``gen`` in the
        header once this returns (a process killed before leaves the old area
        in use), except when shrinking a file: it announces first, so that no
        process maps past the end of the file. Then it calls :meth:`drop_data`.

        Raises:
            OSError: no room for ``size`` bytes of shared memory.
        """
        if _segments.FILES:
            if size > self._file_data_size():
                # Reserve the memory first: a tmpfs page touched beyond the
                # space left would be a SIGBUS, not an error.
                os.posix_fallocate(self._fd, self.size, size)
            os.ftruncate(self._fd, self.size + size)
            return self.data(gen, size)
        old, name = self._data, _data_names(self.name)[gen & 1]
        # Left by a process killed between making it and announcing it.
        _segments.discard(name)
        fd = _segments.create(name, max(size, 1))
        try:
            new = mmap.mmap(fd, max(size, 1))
        except BaseException:
            _segments.discard(name)
            raise
        finally:
            os.close(fd)
        if old is not None and keep:
            new[:keep] = old[:keep]
        self._data = new
        self.data_gen = gen
        return new

    def drop_data(self, gen: int) -> None:
        """Remove the data area of generation ``gen``, replaced (under the guard).

        Processes that map it keep their mapping until they remap.
        """
        if not _segments.FILES and gen > 0:
            _segments.discard(_data_names(self.name)[gen & 1])

    def _file_data_size(self) -> int:
        return os.fstat(self._fd).st_size - self.size

    def close(self) -> None:
        """Forget this process's view (and remove the segment, in its owner)."""
        self._finalizer()


def _release(names: tuple[str, ...], fd: int, guard_fd: int, owner_pid: int | None) -> None:
    for name in names:
        _segments.unlink(name, owner_pid)
    with contextlib.suppress(OSError):
        os.close(fd)
    if guard_fd not in (-1, fd):
        with contextlib.suppress(OSError):
            os.close(guard_fd)


# Per process: name -> the one Segment open on that segment (a flock is per open
# file description; a second one would not exclude the first).
_open: weakref.WeakValueDictionary[str, Segment] = weakref.WeakValueDictionary()
_open_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _open_lock
    _open_lock = threading.Lock()
    for segment in list(_open.values()):
        segment._thread_lock = threading.Lock()
        segment._wake_pending = False  # another thread's, in the parent
        if not _mutex.AVAILABLE:  # a mutex is not shared with the parent's thread
            segment._reopen()


_platform.after_fork_in_child(_after_fork_in_child)


def create(kind: int, words: int, what: str, instead: str, data: bool = False) -> Segment:
    """A new zeroed segment (one page of 64-bit words), owned by this process.

    ``data``: it will have a data area (:meth:`Segment.data`: queues).

    Raises:
        NotImplementedError: on Windows (``what`` needs POSIX shared memory;
            ``instead`` names the stdlib's object to use).
    """
    _segments.require(what, instead)
    if words * 8 > mmap.PAGESIZE:
        raise ValueError(f"a segment header holds at most {mmap.PAGESIZE // 8} words")
    name = _segments.new_name("sync")
    fd = _segments.create(name, _HEADER_SIZE)
    try:
        segment = Segment(name, fd, owner=True, data=data)
    except BaseException:
        os.close(fd)
        _segments.discard(name)
        raise
    segment.words[0] = _MAGIC << 8 | kind
    with _open_lock:
        _open[name] = segment
    return segment


def attach(name: str, kind: int, what: str) -> Segment:
    """The segment ``name`` in this process, opened once per process.

    Raises:
        SegmentGone: the owner already released it (a ``FileNotFoundError``).
    """
    with _open_lock:
        segment = _open.get(name)
        if segment is not None:
            return segment
        fd = _segments.attach(name, what)
        try:
            segment = Segment(name, fd, owner=False)
        except BaseException:
            os.close(fd)
            raise
        if segment.words[0] != _MAGIC << 8 | kind:
            segment.close()
            raise ValueError(f"{name!r} is not a parkit {what}")
        _open[name] = segment
        return segment
