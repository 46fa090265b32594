"""The process pool's workers as its I/O thread sees them, and their status board.

A :class:`Worker` is one worker process with its two pipes (a :class:`WorkerChannel`),
the jobs sent to it and not yet answered, and what the engine must remember about
it (its function cache, its item budget, why it was killed). The
:class:`StatusBoard` is the shared memory the workers write and the I/O thread
reads: per worker, which job and item it is running since when (so a death or a
timeout is blamed on one item), and a ring of cancelled calls.

Only the engine's I/O thread uses these (see ``_engine.py``).
"""

from __future__ import annotations

import contextlib
import selectors
import time
from collections import OrderedDict, deque
from collections.abc import Iterable

from ..._core import _context, _frames, _segments, _worker
from . import _loop
from ._channel import WorkerChannel
from ._jobs import Job

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from typing import Any

    from ..._core import _logs

__all__ = ["StatusBoard", "Worker", "stop_all"]

#: A worker asked to exit that has not after this long is killed.
EXIT_GRACE = 2.0


class StatusBoard:
    """The workers' status slots and the cancel ring, in shared memory.

    Layout (int64 words, see ``_loop.py``): ``SLOT`` words per worker, then
    ``CANCEL_RING`` pairs ``(call id, first position to skip)``.
    """

    def __init__(self, workers: int) -> None:
        words = workers * _loop.SLOT + 2 * _loop.CANCEL_RING
        # A plain shared block, zeroed, without the ctypes array of
        # ``ctx.RawArray`` (``multiprocessing.sharedctypes`` and ``ctypes`` cost
        # ~3 ms of a cold start, in the parent and, to unpickle it, in every
        # spawn or forkserver worker) and without ``multiprocessing.heap``
        # (which imports tempfile). It pickles (fd passing) while a worker
        # starts, and is freed when this board goes.
        self.shared = _segments.Block(8 * words, "pool's status board")
        self._mv = self.shared.memoryview().cast(_loop.SLOT_FORMAT)
        self._ring_at = workers * _loop.SLOT
        self._ring_next = 0

    def starting(self, slot: int) -> None:
        """Mark ``slot``'s worker as starting: no job, nothing running yet."""
        at = slot * _loop.SLOT
        self._mv[at + 1] = _loop.LOADING
        self._mv[at] = -2

    def last(self, slot: int) -> tuple[int, int]:
        """The (job seq, item position) ``slot``'s worker last wrote."""
        at = slot * _loop.SLOT
        return self._mv[at], self._mv[at + 1]

    def running(self, slot: int, seq: int, items: int) -> tuple[int, int] | None:
        """(position, start time in ns) of the item of job ``seq`` that ``slot``'s
        worker is running, or ``None`` when it is not running one of that job's
        ``items`` items (loading it, sending its results, or on another job)."""
        at = slot * _loop.SLOT
        now_seq, pos, started = self._mv[at], self._mv[at + 1], self._mv[at + 2]
        # The worker writes the start time before the position: re-read both to
        # be sure they belong to the same item.
        if (
            now_seq != seq
            or not 0 <= pos < items
            or (self._mv[at + 1], self._mv[at]) != (pos, now_seq)
        ):
            return None
        return pos, started

    def counters(self) -> list[tuple[int, ...]]:
        """Each slot's insights counters (``_loop.INSIGHT_FIELDS``), in ns and tasks."""
        first, n = _loop.INSIGHTS, len(_loop.INSIGHT_FIELDS)
        return [
            tuple(self._mv[at + first : at + first + n])
            for at in range(0, self._ring_at, _loop.SLOT)
        ]

    def cancel(self, call_id: int, after: int) -> None:
        """Tell every worker to skip call ``call_id``'s items past ``after``."""
        ring = self._ring_at + 2 * (self._ring_next % _loop.CANCEL_RING)
        self._ring_next += 1
        self._mv[ring + 1] = after
        self._mv[ring] = call_id  # last: a worker that sees the id sees its position


class Worker:
    """One worker process as the I/O thread sees it.

    A plain class, not a dataclass: ``dataclasses`` imports ``inspect`` (~5 ms
    of a cold start, before the first pool can start).
    """

    __slots__ = (
        "budget",
        "calls",
        "channel",
        "inflight",
        "killed_for",
        "name",
        "pid",
        "process",
        "ready",
        "retiring",
        "sentinel",
        "slot",
    )

    def __init__(
        self,
        slot: int,
        process: Any,
        channel: WorkerChannel,
        sentinel: int,
        *,
        budget: int | None = None,
        pid: int | None = None,
        name: str = "",
    ) -> None:
        self.slot = slot
        self.process = process
        self.channel = channel
        self.sentinel = sentinel
        self.calls: OrderedDict[int, None] = OrderedDict()  # mirror of its fn cache
        self.inflight: deque[Job] = deque()
        self.ready = False
        self.budget = budget  # items it may still take (max_tasks_per_worker)
        self.retiring = False  # sent EXIT; its exit is not a crash
        # (seq, pos, "timeout"|"interrupt")
        self.killed_for: tuple[int, int, str] | None = None
        self.pid = pid
        self.name = name

    def __repr__(self) -> str:
        return f"<Worker slot={self.slot} {self.who}>"

    @property
    def who(self) -> str:
        return f"worker {self.name!r} (pid {self.pid})"

    @classmethod
    def start(
        cls,
        ctx: Any,
        slot: int,
        board: StatusBoard,
        workers: int,
        init: _worker.Payload | None,
        owner: int,
        pool_name: str,
        budget: int | None,
        insights: bool = False,
        profile: str | None = None,
        logs: _logs.Levels | None = None,
        cpus: frozenset[int] | None = None,
    ) -> Worker:
        """Start the worker process of ``slot``.

        ``logs``: the parent's logging levels, for a worker that forwards its
        records; ``cpus``: the worker's CPU affinity.

        Raises:
            Exception: what starting the process raised (nothing is left open).
        """
        board.starting(slot)
        # Not ctx.Pipe(): see _core/_frames.py.
        task_r, task_w = _frames.pipe()
        result_r, result_w = _frames.pipe()
        process = ctx.Process(
            target=_loop.worker_main,
            args=(
                task_r,
                result_w,
                board.shared,
                slot,
                workers,
                init,
                owner,
                insights,
                profile,
                logs,
                cpus,
            ),
            name=f"parkit-{pool_name}-w{slot}",
            daemon=False,
        )
        try:
            # A worker whose main-module import starts parkit work exits quietly
            # with MAIN_IMPORT_EXITCODE: the engine raises the error, once.
            _context.start_process(process, "quiet")
        except BaseException:
            for conn in (task_r, task_w, result_r, result_w):
                conn.close()
            raise
        task_r.close()
        result_w.close()
        return cls(
            slot,
            process,
            WorkerChannel(task_w, result_r),
            process.sentinel,
            budget=budget,
            pid=process.pid,
            name=process.name,
        )

    def send(self, frame: bytes, sel: selectors.BaseSelector) -> None:
        """Write ``frame``; what the pipe can't take now goes when it is writable."""
        try:
            if not self.channel.send(frame):
                sel.register(
                    self.channel.task_fd, selectors.EVENT_WRITE, lambda _ev: self._flush(sel)
                )
        except BrokenPipeError:
            self.channel.pending.clear()  # it died: its sentinel will tell
        except KeyError:
            pass  # already registered for writing

    def _flush(self, sel: selectors.BaseSelector) -> None:
        try:
            done = self.channel.flush()
        except BrokenPipeError:
            self.channel.pending.clear()
            done = True
        if done:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(self.channel.task_fd)

    def retire(self, sel: selectors.BaseSelector) -> None:
        """Ask the worker to exit after its queued jobs; it is no longer used."""
        if not self.retiring:
            self.retiring = True
            with contextlib.suppress(OSError):
                self.send(_loop.TASK_HEADER.pack(_loop.EXIT_SEQ, 0, 0, 0, 0, 0), sel)

    def close(self, sel: selectors.BaseSelector | None, owner: int) -> None:
        """Let go of the (ended) worker: its fds, its process object, its segments."""
        if sel is not None:
            for fd in (self.channel.result_fd, self.sentinel, self.channel.task_fd):
                # Some are registered, some not (task fd: only while bytes wait).
                with contextlib.suppress(KeyError, ValueError):
                    sel.unregister(fd)
        self.channel.close()
        with contextlib.suppress(ValueError):
            self.process.close()
        # What the worker wrote and nobody will read (it died mid-send, or its
        # results were dropped): segments are named after their writer (_segments.py).
        _segments.sweep(owner, f"w{self.pid}")


def stop_all(workers: Iterable[Worker], sel: selectors.BaseSelector | None, owner: int) -> None:
    """Let every worker exit, wait up to :data:`EXIT_GRACE`, kill the rest; close all."""
    workers = list(workers)
    for w in workers:
        # An EXIT frame ends the worker's loop after what it has queued. Under
        # fork it is needed: siblings forked later inherit the parent's end of
        # this task pipe, so closing it gives no EOF.
        if sel is not None:
            w.retire(sel)
        w.channel.flush()
        # EOF ends it where the frame could not be written (a full pipe).
        w.channel.close_tasks()
    deadline = time.monotonic() + EXIT_GRACE
    for w in workers:
        _context.join_process(w.process, deadline - time.monotonic())
        if w.process.exitcode is None:
            w.process.kill()
            w.process.join()
        w.close(sel, owner)
