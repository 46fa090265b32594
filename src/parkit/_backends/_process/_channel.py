"""The parent's end of one worker's two pipes: framed, and never blocking.

The pool's single I/O thread serves every worker, so it must never block on one
of them. A blocking write is the classic deadlock: the parent writes a large
task to worker *k* while *k* writes a large result back; both pipes fill and
both wait for ever. So both ends held by the parent are non-blocking; a frame
that does not fit goes to :attr:`WorkerChannel.pending` and the I/O thread waits for
the pipe to become writable. Frames use ``multiprocessing.connection``'s
framing (see :mod:`parkit._core._frames`), which the worker reads and writes with
the blocking ends of ``_frames``.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque

from ..._core import _frames, _platform

if _platform.PIPE_RESIZE:
    import fcntl

__all__ = ["WorkerChannel"]

_READ_SIZE = 1 << 20
# Linux lets an unprivileged process grow a pipe to 1 MiB (fs.pipe-max-size):
# fewer wake-ups per large frame. Grown on first use by a large frame only: the
# fcntl costs ~30-100 us, four times on the way to a pool's first result, and
# most pools never send a frame that fills a default (64 KiB) pipe.
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1 << 20
_DEFAULT_PIPE_SIZE = 1 << 16


def _grow(fd: int) -> None:
    if _platform.PIPE_RESIZE:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)


class WorkerChannel:
    """Write tasks to and read results from one worker without blocking."""

    def __init__(self, tasks: _frames.Writer, results: _frames.Reader) -> None:
        self._tasks = tasks
        self._results = results
        self.task_fd = tasks.fileno()
        self.result_fd = results.fileno()
        os.set_blocking(self.task_fd, False)
        os.set_blocking(self.result_fd, False)
        self._tasks_grown = self._results_grown = False
        self.pending: deque[memoryview] = deque()  # unsent bytes, in order
        self._inbuf = bytearray()
        self.eof = False
        self.closed = False

    def send(self, frame: bytes) -> bool:
        """Queue ``frame``; return True if it (and all before it) went out now.

        Raises:
            BrokenPipeError: the worker is gone (its sentinel tells the rest).
        """
        header = _frames.header(len(frame))
        if not self._tasks_grown and len(frame) >= _DEFAULT_PIPE_SIZE:
            self._tasks_grown = True
            _grow(self.task_fd)
        if not self.pending:
            try:
                written = os.writev(self.task_fd, [header, frame])
            except BlockingIOError:
                written = 0
            total = len(header) + len(frame)
            if written == total:
                return True
            data = memoryview(header + frame if written < len(header) else frame)
            skip = written if written < len(header) else written - len(header)
            self.pending.append(data[skip:])
            return False
        self.pending.append(memoryview(header))
        self.pending.append(memoryview(frame))
        return False

    def flush(self) -> bool:
        """Write what is pending; True when nothing is left."""
        while self.pending:
            head = self.pending[0]
            try:
                written = os.write(self.task_fd, head)
            except BlockingIOError:
                return False
            if written == len(head):
                self.pending.popleft()
            else:
                self.pending[0] = head[written:]
                return False
        return True

    def receive(self) -> list[bytes]:
        """Read what is available; return the complete frames, in order.

        Sets :attr:`eof` when the worker's end is closed (it exited or died).
        """
        if self.closed:
            return []
        while True:
            try:
                data = os.read(self.result_fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                self.eof = True
                break
            if not data:
                self.eof = True
                break
            if not self._results_grown and len(data) >= _DEFAULT_PIPE_SIZE:
                self._results_grown = True  # the pipe was full: a large result
                _grow(self.result_fd)
            self._inbuf += data
            if len(data) < _READ_SIZE:
                break
        return self._frames()

    def _frames(self) -> list[bytes]:
        buf = self._inbuf
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            n = int.from_bytes(buf[pos : pos + 4], "big", signed=True)
            start = pos + 4
            if n == -1:
                if end - pos < 12:
                    break
                n = int.from_bytes(buf[pos + 4 : pos + 12], "big")
                start = pos + 12
            if end - start < n:
                break
            frames.append(bytes(buf[start : start + n]))
            pos = start + n
        if pos:
            del buf[:pos]
        return frames

    def close_tasks(self) -> None:
        """Close the task pipe: the worker reads EOF once it has read the rest."""
        self._tasks.close()
        self.pending.clear()

    def close(self) -> None:
        self.closed = True
        self._tasks.close()
        self._results.close()
        self.pending.clear()
