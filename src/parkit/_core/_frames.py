"""Blocking, framed pipe ends for parkit's own children, without ``multiprocessing.connection``.

What a ``parkit.Process`` child sends its parent and what a pool's workers read
and write travel on plain ``os.pipe()`` pairs, framed as
``multiprocessing.connection`` frames them (so that one parser, the pool's
non-blocking :class:`~parkit._backends._process._channel.WorkerChannel`, reads
both)::

    [length: 4 bytes, big-endian, signed] [bytes]          length <= 0x7FFFFFFF
    [-1: 4 bytes] [length: 8 bytes, big-endian] [bytes]     longer

They are not ``Connection`` objects because ``multiprocessing.connection``
imports ``tempfile`` (and ``shutil``, ``random``, ``bz2``, ``lzma`` with it):
about 16 million instructions of a fresh interpreter, 3-4 ms of a cold start,
paid in the parent and again in every spawn child that unpickles a
``Connection``. Only the start method ``forkserver`` loads it anyway (its server
speaks ``Connection``).

An end pickles only while ``multiprocessing`` starts a process (spawn,
forkserver), passing its descriptor as a ``Connection``'s is passed
(``multiprocessing.reduction.DupFd``); under fork it is inherited.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["OwnedFd", "Reader", "Writer", "header", "pipe", "read_exactly", "write_all"]

# Frames up to this size go out in one write, header and bytes joined: one
# system call (multiprocessing joins them up to 16 KiB).
_JOIN_BELOW = 1 << 16
_LONG = 0x7FFFFFFF


def header(size: int) -> bytes:
    """The header of a frame of ``size`` bytes."""
    if size > _LONG:
        return (-1).to_bytes(4, "big", signed=True) + size.to_bytes(8, "big")
    return size.to_bytes(4, "big", signed=True)


class OwnedFd:
    """A file descriptor that this object closes (at the latest when collected),
    handed to a starting child as ``multiprocessing`` hands a ``Connection``'s.

    The base of the pipe ends here and of ``_segments.Block``.
    """

    __slots__ = ("_fd",)

    #: What :meth:`fileno` says once the descriptor is closed.
    _CLOSED = "the descriptor is closed"

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def fileno(self) -> int:
        """The descriptor.

        Raises:
            OSError: it was closed.
        """
        if self._fd < 0:
            raise OSError(self._CLOSED)
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __del__(self) -> None:
        self.close()

    def _for_child(self) -> Any:
        """The descriptor as it travels to a child that is being started."""
        # Loaded by multiprocessing.context, which started this pickling.
        from multiprocessing import reduction  # noqa: PLC0415

        return reduction.DupFd(self.fileno())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._for_child()))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self._fd}>"


def _rebuild(cls: type[OwnedFd], dup: Any) -> OwnedFd:
    return cls(dup.detach())


class _End(OwnedFd):
    __slots__ = ()

    _CLOSED = "the pipe end is closed"


class Writer(_End):
    """The writing end: whole frames, blocking while the pipe is full."""

    __slots__ = ()

    def send_bytes(self, data: bytes) -> None:
        """Write one frame of ``data``.

        Raises:
            OSError: the write failed (``BrokenPipeError``: the reader is gone).
        """
        fd = self.fileno()
        head = header(len(data))
        if len(data) < _JOIN_BELOW:
            write_all(fd, head + data)
        else:
            write_all(fd, head)
            write_all(fd, data)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (a blocking descriptor)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Reader(_End):
    """The reading end: whole frames, blocking until one is complete."""

    __slots__ = ()

    def recv_bytes(self) -> bytes | bytearray:
        """Read one frame.

        Raises:
            EOFError: the pipe ended before a whole frame (every writer is gone).
            OSError: the read failed.
        """
        fd = self.fileno()
        size = int.from_bytes(read_exactly(fd, 4), "big", signed=True)
        if size == -1:
            size = int.from_bytes(read_exactly(fd, 8), "big")
        return read_exactly(fd, size)

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether there is something to read (or the end of the pipe) within ``timeout`` s."""
        # Loaded here: a child, which only writes, does without it.
        from . import _platform  # noqa: PLC0415

        return bool(_platform.wait_fds([self.fileno()], timeout))


def read_exactly(fd: int, size: int) -> bytes | bytearray:
    """Read ``size`` bytes from ``fd``; ``EOFError`` if it ends first."""
    if size == 0:
        return b""
    first = os.read(fd, size)
    if len(first) == size:
        return first
    if not first:
        raise EOFError("the pipe ended")
    buf = bytearray(size)
    buf[: len(first)] = first
    view, got = memoryview(buf), len(first)
    while got < size:
        n = os.readv(fd, [view[got:]])
        if n == 0:
            raise EOFError("the pipe ended in the middle of a frame")
        got += n
    return buf


def pipe() -> tuple[Reader, Writer]:
    """A new one-way pipe: its reading end and its writing end."""
    r, w = os.pipe()
    return Reader(r), Writer(w)
