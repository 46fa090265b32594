"""The shared state under every parkit lock, event, barrier and queue.

Each synchronization object is a small file in ``/dev/shm`` (readable by its
owner only, SPEC §7) that every process using the object maps::

    process A                      /dev/shm/parkit-<owner>-sync-<token>     process B
    ---------                      ------------------------------------     ---------
    with seg.guard():   ---------> | magic | seq | state words ... |  <--- with seg.guard():
        read/write words           | holder pid, start, ...         |        read/write words
    futex.wait(seq) ...  <-wake--- | (queue: ring buffer of frames) |  ---> futex.wake(seq)

* **The guard** serializes every change to the words: a per-process
  ``threading.Lock`` (threads) plus, between processes, a robust
  process-shared pthread mutex in the file's second page (:mod:`._mutex`: no
  system call when it is free), or a ``flock`` on the file where the C library
  has no robust mutexes. Either is given up by the kernel when its process
  dies, so a process killed inside the guard cannot wedge the object. The
  guard is held for microseconds and never across a wait or user code.
* **Waiting** happens outside the guard, on the ``seq`` word: every change
  that may let a waiter proceed bumps ``seq`` and wakes the sleepers
  (:mod:`._futex`), which then re-check under the guard. The wake-up is sent
  as the guard is left, not inside it: a sleeper woken while the changer still
  holds the guard could go straight back to sleep, on the ``flock``, and need a
  second wake-up. Only objects that someone waits on (the ``WAITERS`` word)
  make the system call at all.
* **Identity**: a process is named by its pid *and* its start time (from
  ``/proc``), so a holder that died is recognised even when its pid was reused.

Why ``flock`` (where there is no robust mutex) and not ``fcntl`` record locks: a
record lock is dropped when its process closes *any* descriptor of the file, and
every ``mmap`` holds a duplicate descriptor that it closes when it is unmapped
(a queue remaps its data area as it grows). A ``flock`` belongs to the open file
description instead; so each process opens each segment once (:func:`attach`
keeps a per-process table), and a forked child re-opens its inherited segments,
which would otherwise share their parent's lock.

The creating process owns the file and unlinks it when its last handle is
closed or collected, or at exit once its non-daemonic children have been joined
(``_core/_owned.py``); processes that already mapped it keep working.
Pool workers remove the segments of an owner that was SIGKILLed (the
``parkit-<owner>-`` prefix, as for every parkit segment).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import mmap
import os
import sys
import threading
import weakref
from collections.abc import Callable

from .._core import _owned, _peer, _segments
from . import _futex, _mutex

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
# area follows.
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


class Segment:
    """One process's view of a shared state file: words, guard, wait and wake."""

    def __init__(self, path: str, fd: int, owner: bool) -> None:
        self.path = path
        self.name = os.path.basename(path)
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
        if _mutex.AVAILABLE:
            if owner:
                _mutex.init(self._base + mmap.PAGESIZE)
            self._mutex = _mutex.Mutex(self._base + mmap.PAGESIZE)
        # Set under the guard by changed(); the wake-up goes out in unlock().
        self._wake_pending = False
        self._wake = _futex.waker(self._seq_address)
        self.sleep = _futex.sleeper(self._seq_address)
        self._data: mmap.mmap | None = None
        self._data_size = 0
        self._finalizer = weakref.finalize(self, _release, path, fd, os.getpid() if owner else None)
        # Not at exit: children still starting may need the file (see _core._owned).
        self._finalizer.atexit = False
        if owner:
            _owned.own(path)

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
                fcntl.flock(self._fd, fcntl.LOCK_EX)
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
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
                fcntl.flock(self._fd, fcntl.LOCK_UN)
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
        # same descriptor number (the file may be unlinked already: go through
        # /proc where there is one).
        for path in (f"/proc/self/fd/{self._fd}", self.path):
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                continue
            os.dup2(fd, self._fd)
            os.close(fd)
            return

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

    def data(self, size: int) -> mmap.mmap | None:
        """The bytes after the header page, mapped at ``size`` (call under the guard).

        The header (words, futex) stays where it is; only this mapping moves when
        a process grows or shrinks the file, and each process remaps it here when
        it sees a new size in the header.
        """
        if size == self._data_size:
            return self._data
        self._data = None if size == 0 else mmap.mmap(self._fd, size, offset=self.size)
        self._data_size = size
        return self._data

    def resize_data(self, size: int) -> mmap.mmap | None:
        """Grow or shrink the file's data area to ``size`` bytes (under the guard)."""
        os.ftruncate(self._fd, self.size + size)
        return self.data(size)

    def close(self) -> None:
        """Forget this process's view (and unlink the file, in its owner)."""
        self._finalizer()


def _release(path: str, fd: int, owner_pid: int | None) -> None:
    _segments.unlink(path, owner_pid)
    with contextlib.suppress(OSError):
        os.close(fd)


# Per process: name -> the one Segment open on that file (record locks are per
# process and per file; a second descriptor closed would drop them).
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


os.register_at_fork(after_in_child=_after_fork_in_child)


def create(kind: int, words: int) -> Segment:
    """A new zeroed segment (one page of 64-bit words), owned by this process."""
    _segments.require("parkit synchronization objects")
    name = _segments.new_name("sync")
    path = _segments.path_of(name)
    if words * 8 > mmap.PAGESIZE:
        raise ValueError(f"a segment header holds at most {mmap.PAGESIZE // 8} words")
    fd = _segments.create(name, _HEADER_SIZE)
    try:
        segment = Segment(path, fd, owner=True)
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
        path = _segments.path_of(name)
        try:
            segment = Segment(path, fd, owner=False)
        except BaseException:
            os.close(fd)
            raise
        if segment.words[0] != _MAGIC << 8 | kind:
            segment.close()
            raise ValueError(f"{name!r} is not a parkit {what}")
        _open[name] = segment
        return segment
