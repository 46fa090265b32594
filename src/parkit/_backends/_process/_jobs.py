"""What the process engine keeps about submitted work.

A :class:`BatchState` is one submitted batch: its future and the outcome of
each item so far. A :class:`Job` is some positions of one batch sent to one
worker as one task frame: the whole batch normally; fewer when items are sent
again after a crash, isolated to find which one can't be (un)pickled, or split
to honour ``max_tasks_per_worker``.

Plain classes, not dataclasses: ``dataclasses`` imports ``inspect`` (~5 ms of
a cold start, before the first pool can start). ``PoolStats``, the one
dataclass users see, is in ``_stats.py`` and loads when it is first asked for.
"""

from __future__ import annotations

from .._batch import NOT_RUN, Batch, BatchResult

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from concurrent.futures import Future
    from typing import Any

__all__ = ["BatchState", "Job"]


class BatchState:
    """A submitted batch: its future and the outcomes gathered so far."""

    __slots__ = (
        "attempts",
        "batch",
        "busy",
        "errors",
        "fn_bytes",
        "future",
        "remaining",
        "started",
        "values",
    )

    def __init__(self, batch: Batch, future: Future[BatchResult], fn_bytes: bytes) -> None:
        self.batch = batch
        self.future = future
        self.fn_bytes = fn_bytes
        self.values: list[Any] | None = None
        self.errors: dict[int, BaseException] = {}
        self.remaining = len(batch.items)
        self.attempts: dict[int, int] = {}
        self.busy = 0.0
        self.started = False

    def _slots(self) -> list[Any]:
        if self.values is None:
            self.values = [NOT_RUN] * len(self.batch.items)
        return self.values

    def deliver_all(self, values: list[Any]) -> None:
        if self.values is None and len(values) == len(self.batch.items):
            self.values = values  # the common case: no copy
        else:
            slots = self._slots()
            slots[: len(values)] = values
        self.remaining = 0

    def deliver(self, positions: list[int], values: list[Any]) -> None:
        # Positions past len(values) were not run (errors="raise" stopped the job).
        slots = self._slots()
        for pos, value in zip(positions, values, strict=False):
            slots[pos] = value
        self.remaining -= len(positions)

    def fail(self, pos: int, exc: BaseException) -> None:
        self._slots()[pos] = None
        self.errors[pos] = exc
        self.remaining -= 1

    def skip(self, count: int) -> None:
        self._slots()
        self.remaining -= count

    def finish_if_done(self) -> bool:
        if self.remaining > 0 or self.future.done():
            return self.remaining <= 0
        self.future.set_result(BatchResult(self._slots(), self.errors, self.busy))
        return True


class Job:
    """Some positions of one batch, sent to one worker as one task frame."""

    __slots__ = ("positions", "segment", "seq", "state")

    def __init__(self, state: BatchState, positions: list[int] | None) -> None:
        self.state = state
        self.positions = positions  # None: the whole batch
        self.seq = 0
        self.segment = b""  # descriptor of its out-of-band buffers (_core/_oob.py)

    def __repr__(self) -> str:
        return f"<Job seq={self.seq} positions={self.positions}>"

    def __len__(self) -> int:
        return len(self.state.batch.items) if self.positions is None else len(self.positions)

    def position_list(self) -> list[int]:
        return (
            list(range(len(self.state.batch.items))) if self.positions is None else self.positions
        )

    def items(self) -> list[Any]:
        items = self.state.batch.items
        return items if self.positions is None else [items[p] for p in self.positions]

    def index(self, k: int) -> int:
        """Input index of this job's ``k``-th item."""
        pos = k if self.positions is None else self.positions[k]
        return self.state.batch.start + pos
