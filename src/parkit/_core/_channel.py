"""Frames over one file descriptor, read against a deadline, from a watched peer.

The transport under ``parkit.Pipe``: one end of a ``socket.socketpair()`` or an
``os.pipe()`` carrying length-prefixed frames::

    process A                                            process B
    a.send_data(pickle) -- [DATA | len | bytes] -------> b.recv_data()
                        -- [PEER | pid, start, stamp] ->  (consumed inside
                           "this end is now used by pid P"  recv/poll)

A frame is ``kind`` (1 byte) and ``length`` (8 bytes), then the payload. The
receiver reads with a deadline over the *whole* frame, into a buffer that
survives a timeout: a writer that died half-way through a frame (FAULTS F40)
gives ``EOFError`` or ``TimeoutError``, never a hang, and a slow frame is not
lost to a timeout.

Who is the peer (FAULTS F26): the kernel reports EOF only once every copy of
the other end is closed, and a parent usually still holds one. So each end
learns, in-band, which process uses the other end (:class:`PeerId`: pid, start
time, stamp): an end announces itself when it is rebuilt in a new process, or
first used in a process other than the one that last announced it. While
waiting, the reader checks every :data:`PEER_CHECK_S` seconds whether that
process lives; once it is dead and everything it wrote has been read, the reader
raises ``EOFError``. Announcements carry a ``CLOCK_MONOTONIC`` stamp
(system-wide on Linux), so an old one still queued in the stream never
overrides newer news learned directly (:meth:`Channel.handed_to`).
"""

from __future__ import annotations

import os
import select
import socket
import stat
import struct
import threading
import time

from . import _platform
from ._checks import UsedAfterClose
from ._peer import PeerId, describe_peer, getpid, identify, is_alive

__all__ = ["PEER_CHECK_S", "Channel"]

HEADER = struct.Struct("!BQ")
DATA = 0
PEER = 1
_PEER_BODY = struct.Struct("!qQQ")  # pid, start time (0: unknown), stamp (ns)

#: Seconds between two checks that the peer process still lives, while waiting.
PEER_CHECK_S = 0.2
# The first check comes this far into a wait, not at once: a reply that takes
# microseconds (a round trip) never pays for a read of /proc. Not sooner than
# the later checks either: with poll() given a timeout of a millisecond, a round
# trip of small objects between two processes took about 1.4 times as long as
# with 0.2 s (Linux, 2 loaded cores).
_FIRST_CHECK_S = PEER_CHECK_S
# Most bytes asked of one read(): a frame's remainder, within these bounds.
_MIN_READ = 1 << 16
_MAX_READ = 1 << 20
# Most reads that draining a dead peer's leftovers may take (a live writer that
# shares the end could otherwise keep it busy).
_MAX_DRAIN_READS = 1024


def _timed_reads(fd: int) -> bool:
    """Make a blocking ``read`` of socket ``fd`` give up after :data:`PEER_CHECK_S`.

    Then a wait for the next frame is one ``read`` that returns when bytes
    arrive (or fails with ``EAGAIN`` when it is time to look at the peer),
    instead of ``poll`` and then ``read``: a round trip of small objects between
    two processes took about 78 µs with ``poll`` against 61 µs without (raw
    sockets, Linux, 2 CPUs). A pipe has no such option: it keeps ``poll``.

    Returns:
        Whether ``fd`` is a socket that now reads with that timeout.
    """
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return False
        sock = socket.socket(fileno=fd)
        try:
            usec = int(PEER_CHECK_S * 1e6)
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", *divmod(usec, 1_000_000))
            )
        finally:
            sock.detach()
    except OSError:
        return False
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Channel:
    """One end: its descriptor, what it has read so far, and who the peer is.

    ``send_data`` and ``recv_data`` each hold a lock of this end (fresh in a
    forked child), so frames from concurrent threads never interleave.
    """

    def __init__(self, fd: int, *, readable: bool, writable: bool, peer: PeerId | None) -> None:
        self.fd: int | None = fd
        self.readable = readable
        self.writable = writable
        #: The process that uses the other end, as last announced.
        self.peer = peer
        #: The pid that last announced *this* end (None: nobody, in this process).
        self.user: int | None = getpid()
        self.rbuf = bytearray()
        self.eof = False
        self._next_check = 0.0
        self._poller: select.poll | None = None
        self._poller_fd = -1
        #: Reads block for at most PEER_CHECK_S (a socket): no poll before them.
        self._timed = readable and _timed_reads(fd)
        self._lock_pid = getpid()
        self._rlock = threading.Lock()
        self._wlock = threading.Lock()

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        # As the stdlib's Connection: an end nobody references is closed.
        if getattr(self, "fd", None) is not None:
            self.close()

    def open_fd(self) -> int:
        if self.fd is None:
            raise UsedAfterClose("the connection is closed")
        return self.fd

    # -- sending ------------------------------------------------------------

    def send_data(self, data: bytes) -> None:
        """Write one DATA frame (announcing this process first if it is new here)."""
        pid = getpid()
        if self.user != pid:
            self.announce_if_new(block=True)
        if len(data) > _MIN_READ or self._lock_pid != pid:
            self._write_frame(DATA, data)
            return
        # _write_frame's common case, inline: a round trip of small objects is
        # mostly overhead.
        with self._wlock:
            fd = self.fd
            if fd is None:
                raise UsedAfterClose("the connection is closed")
            frame = HEADER.pack(DATA, len(data)) + data
            # One write: atomic on a pipe up to PIPE_BUF, and one syscall.
            written = os.write(fd, frame)
            if written < len(frame):
                _write_all(fd, frame[written:])

    def _write_frame(self, kind: int, data: bytes) -> None:
        with self._locks()[1]:
            fd = self.open_fd()
            header = HEADER.pack(kind, len(data))
            if len(data) <= _MIN_READ:
                # One write: atomic on a pipe up to PIPE_BUF, and one syscall.
                _write_all(fd, header + data)
            else:
                _write_all(fd, header)
                _write_all(fd, data)

    def announce_if_new(self, *, block: bool) -> None:
        """Tell the other end that this process uses this end, unless it was told."""
        if self.user != getpid() and self.writable and self.fd is not None:
            me = identify(getpid())
            if block:
                self._write_frame(PEER, _PEER_BODY.pack(*me))
                self.user = me.pid
            else:
                self.try_send_peer(me)

    def try_send_peer(self, peer: PeerId) -> None:
        """Write a PEER frame if that can't block; else leave it to the next send."""
        wlock = self._locks()[1]
        if not wlock.acquire(blocking=False):
            return
        try:
            fd = self.open_fd()
            # 33 bytes: a pipe writes them at once (less than PIPE_BUF) and a
            # socket that polls writable has room for them.
            if _platform.wait_fds([fd], 0, write=True):
                body = _PEER_BODY.pack(*peer)
                os.write(fd, HEADER.pack(PEER, len(body)) + body)
                if peer.pid == getpid():
                    self.user = peer.pid
        except OSError:
            pass  # the other end is gone: nobody to tell
        finally:
            wlock.release()

    def handed_to(self, pid: int, sibling: Channel | None) -> None:
        """Record that process ``pid``, just started with this end, uses it.

        If ``sibling`` (the other end, made in this process) is still used by
        this process, it learns the new peer directly: nothing is written into
        the stream, where it could land in the middle of a frame that a forked
        child is already sending. Otherwise the announcement goes in-band, if it
        can be written without waiting.
        """
        if self.fd is None:
            return
        peer = identify(pid)
        self.user = pid  # a later use by this process announces it anew
        if (
            sibling is not None
            and sibling.fd is not None
            and sibling.readable
            and sibling.user == getpid()
        ):
            sibling.learn(peer)
        elif self.writable:
            self.try_send_peer(peer)

    # -- receiving ----------------------------------------------------------

    def learn(self, peer: PeerId) -> None:
        if self.peer is None or peer.stamp >= self.peer.stamp:
            self.peer = peer

    def recv_data(self, timeout: float | None) -> bytes:
        """The payload of the next DATA frame.

        Raises:
            TimeoutError: ``timeout`` passed first (a partial frame is kept).
            EOFError: no more frames can come (see :meth:`_wait_frame`).
        """
        pid = getpid()
        if self.user != pid:
            self.announce_if_new(block=False)
        now = time.monotonic()
        deadline = None if timeout is None else now + max(0.0, timeout)
        rlock = self._rlock if self._lock_pid == pid else self._locks()[0]
        if not rlock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            raise TimeoutError(f"nothing received within {timeout:g} s (another thread reads)")
        try:
            # The peer is looked at _FIRST_CHECK_S into the wait (and on the last
            # try before the timeout), not at once: reading /proc cost more than
            # the rest of a round trip.
            self._next_check = now + _FIRST_CHECK_S
            if not self._wait_frame(deadline):
                partial = f" ({len(self.rbuf)} bytes of it so far)" if self.rbuf else ""
                raise TimeoutError(f"no object received within {timeout:g} s{partial}")
            buf = self.rbuf
            _, size = HEADER.unpack_from(buf)
            end = HEADER.size + size
            data = bytes(memoryview(buf)[HEADER.size : end])
            del buf[:end]
            return data
        finally:
            rlock.release()

    def poll(self, timeout: float | None) -> bool:
        """Whether a DATA frame is complete, or no more can come, within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        rlock = self._locks()[0]
        if not rlock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return False
        try:
            return self._wait_frame(deadline)
        except EOFError:
            return True
        finally:
            rlock.release()

    def _locks(self) -> tuple[threading.Lock, threading.Lock]:
        # A fork copies a lock held by another thread in its held state: the
        # child gets fresh ones.
        if self._lock_pid != getpid():
            self._rlock, self._wlock = threading.Lock(), threading.Lock()
            self._lock_pid = getpid()
        return self._rlock, self._wlock

    def _frame_ready(self) -> bool:
        """Consume PEER frames at the front; whether a DATA frame is complete."""
        buf = self.rbuf
        while len(buf) >= HEADER.size:
            kind, size = HEADER.unpack_from(buf)
            if len(buf) < HEADER.size + size:
                return False
            if kind == DATA:
                return True
            if kind != PEER or size != _PEER_BODY.size:
                raise OSError(f"corrupt Pipe stream: frame kind {kind}, {size} bytes")
            self.learn(PeerId(*_PEER_BODY.unpack_from(buf, HEADER.size)))
            del buf[: HEADER.size + size]
        return False

    def _fill(self, fd: int) -> None:
        """One read of what has arrived (blocks if nothing has)."""
        want = _MIN_READ
        if len(self.rbuf) >= HEADER.size:
            _, size = HEADER.unpack_from(self.rbuf)
            want = min(max(HEADER.size + size - len(self.rbuf), _MIN_READ), _MAX_READ)
        chunk = os.read(fd, want)
        if chunk:
            self.rbuf += chunk
        else:
            self.eof = True

    def _drain(self, fd: int) -> None:
        for _ in range(_MAX_DRAIN_READS):
            if self.eof or not _platform.wait_fds([fd], 0):
                return
            self._fill(fd)

    def _wait_frame(self, deadline: float | None) -> bool:
        """Wait until a DATA frame is complete in the buffer.

        Returns False when ``deadline`` passes first; reads at least once even
        if it has passed. Must hold the read lock.

        Raises:
            EOFError: no more frames can come: every copy of the other end is
                closed, or the process using it died; a partial frame is
                discarded.
        """
        fd = self.open_fd()
        waited = False
        while True:
            if self._frame_ready():
                return True
            if self.eof:
                self._fail_eof("every copy of the other end was closed")
            now = time.monotonic()
            # The last try before a timeout looks too: a dead peer is reported
            # as such (EOFError), however short the timeout.
            if now >= self._next_check or (waited and deadline is not None and now >= deadline):
                self._next_check = now + PEER_CHECK_S
                peer = self.peer
                if peer is not None and not is_alive(peer):
                    # Whatever the dead process wrote is in the kernel's buffer.
                    self._drain(fd)
                    if self._frame_ready():
                        return True
                    current = self.peer
                    if current is peer or current is None or not is_alive(current):
                        self._fail_eof(f"{describe_peer(current or peer)} died")
                    continue  # a new, live peer announced itself meanwhile
            if deadline is not None and now >= deadline and waited:
                return False
            waited = True
            # Until the next look at the peer (at most PEER_CHECK_S), or the deadline.
            if deadline is not None and deadline < self._next_check:
                if self._readable(fd, deadline - now):
                    self._fill(fd)
            elif not self._timed:
                if self._readable(fd, self._next_check - now):
                    self._fill(fd)
            else:
                # One read that waits for at most PEER_CHECK_S (_timed_reads).
                try:
                    self._fill(fd)
                except BlockingIOError:
                    # Nothing came (or someone made the descriptor non-blocking).
                    if self._readable(fd, max(0.0, self._next_check - time.monotonic())):
                        self._fill(fd)

    def _readable(self, fd: int, timeout: float) -> bool:
        # One poll object per end, made once: a round trip waits here every time.
        poller = self._poller
        if poller is None or self._poller_fd != fd:
            if not _platform.POLL:
                return bool(_platform.wait_fds([fd], max(0.0, timeout)))
            poller = self._poller = select.poll()
            poller.register(fd, select.POLLIN)
            self._poller_fd = fd
        return bool(poller.poll(_platform.poll_ms(timeout)))

    def _fail_eof(self, why: str) -> None:
        partial = ""
        if self.rbuf:
            partial = f"; {len(self.rbuf)} bytes of an unfinished frame were discarded"
            self.rbuf.clear()
        raise EOFError(f"{why}{partial}")
