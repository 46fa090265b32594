"""What each item's outcome is, given what a worker reported or failed to.

The engine moves bytes and manages processes; this module decides, item by
item, what a report means, and keeps the counts behind ``Pool.stats()``. Each
method settles the items of one :class:`~parkit._backends._process._jobs.Job` and returns
the jobs to run again (the engine puts them at the front of its queue).

The rules (also in docs/pool.md):

* a worker died while running item *i*: *i* fails with ``WorkerCrashed`` and is
  not retried; items of its jobs that ran but whose results were lost run
  again, in a job of their own, at most once more (lost twice: ``WorkerCrashed``);
  items not started yet run again as if nothing happened;
* it died (or raised) while unpickling a job's items, or a result could not be
  unpickled here: the items run again one per job, so that the error names
  the one item at fault;
* an item ran past its timeout: it fails with ``TaskTimeout``, the rest as for
  a death.
"""

from __future__ import annotations

from ..._core import _wire, _worker
from . import _loop
from ._jobs import BatchState, Job

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from typing import Any, Literal

    from ..._core import _remote

# The exception capture (_remote) and parkit's error classes are loaded where an
# item fails: a pool whose items all succeed never needs them (about 3 million
# instructions of a cold start, docs/performance.md).

__all__ = ["Killed", "Ledger"]

#: Why the engine killed a worker: (seq of the job, position, "timeout" or
#: "interrupt"), or None when it died by itself.
Killed = tuple[int, int, str] | None


def _singles(job: Job) -> list[Job]:
    return [Job(job.state, [p]) for p in job.position_list()]


class Ledger:
    """Settles items and counts outcomes (single-threaded: the I/O thread)."""

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0
        self.crashed = 0
        self.timed_out = 0

    def unpicklable_arguments(self, job: Job, main: _wire.MainPolicy) -> Job:
        """The job's items did not pickle together: fail the ones that don't
        pickle alone; return a job of the others."""
        state = job.state
        keep: list[int] = []
        for k, pos in enumerate(job.position_list()):
            item = state.batch.items[pos]
            try:
                _wire.dumps(item, main=main)
            except Exception as e:
                err = _wire.serialization_error(
                    f"item {job.index(k)}, a {type(item).__qualname__}, to send it to a worker",
                    e,
                    stage="pickle",
                    direction="argument",
                    item_index=job.index(k),
                )
                state.fail(pos, err)
                self.failed += 1
            else:
                keep.append(pos)
        return Job(state, keep)

    def delivered(
        self,
        job: Job,
        values: list[Any],
        errors: dict[int, _remote.ExceptionRecord],
        ran: int,
        who: str,
    ) -> None:
        """The worker sent the job's results (``errors`` by job position)."""
        state = job.state
        if errors:
            from ..._core import _remote  # noqa: PLC0415
            from ...errors import SerializationError  # noqa: PLC0415

            fn_name = _worker.describe_callable(state.batch.call.fn)
            for k, record in errors.items():
                index = job.index(k)
                exc = _remote.rebuild(
                    record, note=f"[parkit] raised by {fn_name} on item {index} in {who}"
                )
                if isinstance(exc, SerializationError) and exc.item_index is None:
                    exc.item_index = index
                values[k] = None
                state.errors[k if job.positions is None else job.positions[k]] = exc
            self.failed += len(errors)
        self.done += ran - len(errors)
        if job.positions is None:
            state.deliver_all(values)
        else:
            state.deliver(job.positions, values)

    def unloadable_arguments(
        self, job: Job, record: _remote.ExceptionRecord, who: str
    ) -> list[Job]:
        """The worker could not unpickle the job's items."""
        if len(job) > 1:
            return _singles(job)
        from ..._core import _remote  # noqa: PLC0415

        cause = _remote.rebuild(record, note=f"[parkit] raised while unpickling in {who}")
        self._unserializable(job, f"item {job.index(0)} in {who}", "argument", cause)
        return []

    def unloadable_results(self, job: Job, e: BaseException, pid: int | None) -> list[Job]:
        """The job's results could not be unpickled in the parent."""
        if len(job) > 1:
            return [
                Job(job.state, [p])
                for p in job.position_list()
                if self._again(job.state, p, pid, None)
            ]
        what = f"the result of item {job.index(0)} in the parent"
        self._unserializable(job, what, "result", e)
        return []

    def _unserializable(
        self, job: Job, what: str, direction: Literal["argument", "result"], cause: BaseException
    ) -> None:
        """Fail the one item of ``job`` with a SerializationError (stage unpickle)."""
        index = job.index(0)
        err = _wire.serialization_error(
            what, cause, stage="unpickle", direction=direction, item_index=index
        )
        job.state.fail(job.position_list()[0], err)
        self.failed += 1

    def _again(self, state: BatchState, pos: int, pid: int | None, exitcode: int | None) -> bool:
        """Count another attempt at a lost item; fail it if it was lost twice."""
        attempts = state.attempts.get(pos, 0) + 1
        state.attempts[pos] = attempts
        if attempts < 2:
            return True
        from ...errors import WorkerCrashed  # noqa: PLC0415

        err = WorkerCrashed(
            exitcode,
            pid,
            state.batch.start + pos,
            what="other items (this item's result was lost twice)",
        )
        state.fail(pos, err)
        self.crashed += 1
        return False

    def lost(
        self,
        job: Job,
        seq: int,
        pos: int,
        killed: Killed,
        exitcode: int | None,
        pid: int | None,
    ) -> list[Job]:
        """Settle ``job`` of a dead worker whose status slot read (``seq``, ``pos``)."""
        state = job.state
        if killed is not None and killed[2] == "interrupt" and killed[0] == job.seq:
            # Ctrl-C: nobody waits for the interrupted call; others go on.
            state.skip(len(job))
            return []
        loading = seq == job.seq and pos == _loop.LOADING
        if loading and len(job) > 1:
            return _singles(job)  # it died unpickling the items: find which one
        from ...errors import TaskTimeout, WorkerCrashed  # noqa: PLC0415

        culprit = -1
        timed_out = killed is not None and killed[0] == job.seq and killed[2] == "timeout"
        if killed is not None and timed_out:
            culprit = killed[1]
        elif seq == job.seq and 0 <= pos < len(job):
            culprit = pos
        if seq == job.seq:
            ran = len(job) - 1 if pos >= len(job) else pos  # positions [0, ran] started
        elif seq > job.seq:
            ran = len(job) - 1
        else:
            ran = -1
        call = state.batch.call
        what = _worker.describe_callable(call.fn)
        # Items that ran but whose results were lost go in a job of their own:
        # mixed with items not yet run, a second crash among those would cost
        # them their last attempt although they did nothing wrong.
        again: list[int] = []
        fresh: list[int] = []
        for k, p in enumerate(job.position_list()):
            index = state.batch.start + p
            if k == culprit and timed_out:
                assert call.timeout is not None
                state.fail(p, TaskTimeout(call.timeout, index, what))
                self.timed_out += 1
            elif k == culprit or loading:
                doing = f"unpickling the argument of {what}" if loading else what
                state.fail(p, WorkerCrashed(exitcode, pid, index, what=doing))
                self.crashed += 1
            elif k <= ran:
                if self._again(state, p, pid, exitcode):
                    again.append(p)
            else:
                fresh.append(p)
        return [Job(state, positions) for positions in (again, fresh) if positions]
