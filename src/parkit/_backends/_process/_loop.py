"""The loop a pool worker runs, and the frames it exchanges with the parent.

One worker, its two pipes and its status slot::

    parent (the pool's I/O thread)                   worker (this module)
    ------------------------------                   --------------------
                                                     initializer(*initargs)
      reads READY / INIT_FAILED  <------ result pipe --- READY (or INIT_FAILED + the error)
    TASK frame: header, fn pickle,  --- task pipe -->  recv_bytes()
      items pickle                                     slot = (seq, LOADING)
                                                       fn = cached or unpickled
                                                       items = unpickle
                                                       for pos, item: slot.pos = pos
                                                           (slot.started = now, if timed)
                                                           value = fn(item)
      reads DONE / MIXED / LOAD_FAILED <-- result pipe --- one frame per task
    EXIT frame                      --- task pipe -->  return (exit code 0)

    status slot (shared memory, one per worker): [seq, pos, started_ns, pid,
      then the insights counters: ns of startup, idle, unpickle, function,
      pickle, send, and tasks run]
      seq/pos/started written by the worker before each item; read by the parent
      only when the worker died (which item was running?) or to check per-item
      timeouts. The counters are written only by a pool made with
      insights=True, once per task (never per item), and only ever grow: a
      replacement worker adds to what its slot's previous workers counted.
    cancel ring (shared memory): pairs (call id, index); a task of that call
      whose first item comes after that index is skipped, not run.

The slot is what lets tasks travel in chunks (no round trip per item) while a
crash or a timeout is still reported for the one item that was running: the
worker pays one shared-memory store per item, the parent reads it only when
something went wrong.

Frames on both pipes use ``multiprocessing.connection``'s framing (a 4-byte
big-endian signed length, or -1 and an 8-byte length): the worker reads and
writes them with the blocking ends of ``_core/_frames.py``, the parent parses
and writes the same bytes without blocking (``_channel.py``).
"""

from __future__ import annotations

import _thread
import multiprocessing
import os
import pickle
import signal
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from ..._core import _oob, _segments, _wire, _worker

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    from typing import Any, Literal

    from ..._core import _frames, _logs, _remote

__all__ = [
    "CANCEL_RING",
    "DONE",
    "EXIT_SEQ",
    "FLAG_STAR",
    "FLAG_STOP",
    "FLAG_TIMED",
    "FN_CACHE",
    "INIT_AFFINITY",
    "INIT_FAILED",
    "INIT_INITIALIZER",
    "INSIGHTS",
    "INSIGHT_FIELDS",
    "LOADING",
    "LOAD_FAILED",
    "LOG",
    "MIXED",
    "READY",
    "RESULT_HEADER",
    "SKIPPED",
    "SLOT",
    "SLOT_FORMAT",
    "TASK_HEADER",
    "in_pool_worker",
    "worker_main",
]

# Task header: seq, call id, index of the task's first item in the call's input,
# flags, length of the function pickle (0: the worker has it cached), length of
# the out-of-band descriptor (0: none; see _oob.py). Then the function pickle,
# the descriptor and the items' pickle.
TASK_HEADER = struct.Struct("<qqqIII")
FLAG_STAR = 1  # call fn(*item)
FLAG_STOP = 2  # stop the task at its first failing item (errors="raise")
FLAG_TIMED = 4  # the call has a per-item timeout: record each item's start time
EXIT_SEQ = -1

# Result header: kind, seq, nanoseconds the worker spent on the task, length of
# the out-of-band descriptor. Then the descriptor and the payload.
RESULT_HEADER = struct.Struct("<iqqI")
READY = 0  # payload: empty
DONE = 1  # payload: pickle of the list of values (every item succeeded)
MIXED = 2  # payload: pickle of (values, {pos: ExceptionRecord}, number of items run)
LOAD_FAILED = 3  # payload: pickle of the ExceptionRecord; the items could not be unpickled
INIT_FAILED = 4  # payload: pickle of the ExceptionRecord; seq: what failed (below)
INIT_AFFINITY, INIT_INITIALIZER = 1, 0  # INIT_FAILED's seq: cpus= refused, the initializer
SKIPPED = 5  # payload: empty; the task's call was cancelled before it started
LOG = 6  # payload: a log record (_logs.record_bytes); seq 0, sent by any thread, any time

# Insights counters in a slot, after its 4 status words (docs/observability.md):
# the worker's time from its loop's start, cut at each phase boundary, so the
# phases add up to its whole life (to its last boundary).
INSIGHT_FIELDS = ("startup", "idle", "unpickle", "function", "pickle", "send", "tasks")
INSIGHTS = 4  # word of the first counter in a slot
_STARTUP, _IDLE, _UNPICKLE, _FUNCTION, _PICKLE, _SEND, _TASKS = range(INSIGHTS, INSIGHTS + 7)
SLOT = INSIGHTS + len(INSIGHT_FIELDS)  # int64 words per worker
# The same 8 bytes viewed as a C long where that is 8 bytes: memoryview's store
# is ~10 ns faster for the native long than for "q", and it runs once per item.
SLOT_FORMAT: Literal["l", "q"] = "l" if struct.calcsize("l") == 8 else "q"
LOADING = -1  # slot pos while the task's function and items are being unpickled
CANCEL_RING = 16  # (call id, after index) pairs, after the workers' slots

# Both ends keep the functions of the last FN_CACHE calls; the parent mirrors the
# worker's cache exactly (same order of tasks, same rule), so it knows when the
# function pickle can be left out of a task frame.
FN_CACHE = 32

_in_pool_worker = False


def in_pool_worker() -> bool:
    """Whether this process is a parkit pool worker (nested calls run serially)."""
    return _in_pool_worker


# Log records are sent by whichever thread logs (a user's threads too), while
# the main thread sends results: one frame at a time on the pipe. Uncontended
# (no logging), it costs ~50 ns per frame.
_send_lock = _thread.allocate_lock()


def _send(
    conn: _frames.Writer,
    kind: int,
    seq: int,
    busy: int,
    payload: bytes,
    descriptor: bytes = b"",
) -> None:
    header = RESULT_HEADER.pack(kind, seq, busy, len(descriptor))
    frame = b"".join((header, descriptor, payload))
    with _send_lock:
        conn.send_bytes(frame)


def _capture(exc: BaseException) -> _remote.ExceptionRecord:
    """``_remote.capture``, loaded on first use: a worker whose calls raise
    nothing never loads it (nor ``parkit.errors``, ~20 classes)."""
    from ..._core import _remote  # noqa: PLC0415

    return _remote.capture(exc)


def _record(exc: BaseException) -> _remote.ExceptionRecord:
    if exc.__traceback__ is not None:
        # Drop this module's frame: the traceback starts in the user's function.
        exc = exc.with_traceback(exc.__traceback__.tb_next)
    return _capture(exc)


def _dump_values(values: list[Any], errors: dict[int, _remote.ExceptionRecord]) -> bytes | None:
    """Pickle ``values``; a value that can't be pickled becomes an error record.

    Returns ``None`` when every value pickled together (the caller then sends
    DONE); otherwise ``errors`` has been completed and ``values`` patched.
    """
    for pos, value in enumerate(values):
        if pos in errors:
            continue
        try:
            _wire.dumps(value, main="reference")
        except BaseException as e:
            err = _wire.serialization_error(
                f"the result, a {type(value).__qualname__}", e, stage="pickle", direction="result"
            )
            errors[pos] = _capture(err)
            values[pos] = None
    return None


def _run_items(
    fn: Callable[..., Any],
    items: Sequence[Any],
    flags: int,
    mv: memoryview,
    at: int,
) -> tuple[list[Any], dict[int, _remote.ExceptionRecord], int]:
    """Run ``fn`` over ``items``; the hot loop. Returns values, errors, count run."""
    values: list[Any] = []
    append = values.append
    errors: dict[int, _remote.ExceptionRecord] = {}
    star = flags & FLAG_STAR
    stop = flags & FLAG_STOP
    pos_at = at + 1
    if flags & FLAG_TIMED:
        clock = time.monotonic_ns
        for pos, item in enumerate(items):
            mv[at + 2] = clock()
            mv[pos_at] = pos
            try:
                append(fn(*item) if star else fn(item))
            except BaseException as e:
                errors[pos] = _record(e)
                append(None)
                if stop:
                    break
    elif star:
        for pos, item in enumerate(items):
            mv[pos_at] = pos
            try:
                append(fn(*item))
            except BaseException as e:
                errors[pos] = _record(e)
                append(None)
                if stop:
                    break
    else:
        for pos, item in enumerate(items):
            mv[pos_at] = pos
            try:
                append(fn(item))
            except BaseException as e:
                errors[pos] = _record(e)
                append(None)
                if stop:
                    break
    mv[pos_at] = len(items)  # past the last item: the results are being sent
    return values, errors, len(values)


def _cancelled(mv: memoryview, ring_at: int, call_id: int, first: int) -> bool:
    for k in range(ring_at, ring_at + 2 * CANCEL_RING, 2):
        if mv[k] == call_id and first > mv[k + 1]:
            return True
    return False


def worker_main(
    tasks: _frames.Reader,
    results: _frames.Writer,
    shared: Any,
    index: int,
    workers: int,
    init: _worker.Payload | None,
    owner: int,
    insights: bool = False,
    profile: str | None = None,
    logs: _logs.Levels | None = None,
    cpus: frozenset[int] | None = None,
) -> None:
    """The pool worker: run tasks from ``tasks`` until EXIT or EOF.

    Args:
        tasks: reading end of this worker's task pipe.
        results: writing end of this worker's result pipe.
        shared: the pool's shared int64 words (slots, then the cancel ring), a
            :class:`parkit._core._segments.Block`.
        index: this worker's slot number.
        workers: how many slots there are (where the cancel ring starts).
        init: the initializer and its arguments, run once before the first task.
        owner: pid of the pool's process, which names shared-memory segments.
        insights: count the time of each phase in the slot (see the module
            docstring); a few clock reads per task, none per item.
        profile: a directory: run the user's function under ``cProfile`` and
            write this worker's statistics there when it exits normally.
        logs: the parent's logging levels: forward records to the parent
            (``_logs.py``); ``None``: leave logging alone.
        cpus: the CPUs this worker may run on, set before anything else.
    """
    mark = time.perf_counter_ns()
    global _in_pool_worker
    if cpus is not None:
        # First: nothing of this worker's own runs on other CPUs.
        try:
            _worker.set_affinity(cpus)
        except BaseException as e:
            failure = pickle.dumps(_record(e), protocol=_wire.PROTOCOL)
            _send(results, INIT_FAILED, INIT_AFFINITY, 0, failure)
            return
    _in_pool_worker = True
    # Ctrl-C in a terminal reaches the whole process group; the parent decides
    # what stops (SPEC §1: workers print no tracebacks).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    me = multiprocessing.current_process()
    _worker._worker = _worker.WorkerInfo(me.name, os.getpid())
    writer = f"w{os.getpid()}"
    # If the parent dies, segments it or this worker wrote can't be unlinked
    # by their receivers: remove them all (_oob.py).
    _worker.start_lifeline(cleanup=lambda: _segments.sweep(owner))
    mv = shared.memoryview().cast(SLOT_FORMAT)
    at = index * SLOT
    mv[at + 3] = os.getpid()
    if logs is not None:
        # Before the initializer: what it logs reaches the parent too.
        _worker.forward_logs(logs, lambda data: _send(results, LOG, 0, 0, data))
    if init is not None:
        try:
            initializer, initargs, _ = init.load()
            initializer(*initargs)
        except BaseException as e:
            failure = pickle.dumps(_record(e), protocol=_wire.PROTOCOL)
            _send(results, INIT_FAILED, INIT_INITIALIZER, 0, failure)
            return
    _send(results, READY, 0, 0, b"")
    if insights:
        mark = _tick(mv, at + _STARTUP, mark)
    profiler: Any = None
    if profile is not None:
        import cProfile  # noqa: PLC0415  (only a profiled pool's workers pay for it)

        profiler = cProfile.Profile()
    try:
        _serve(tasks, results, mv, at, workers * SLOT, owner, writer, insights, mark, profiler)
    finally:
        if profiler is not None and profile is not None:
            _dump_profile(profiler, profile)


def _tick(mv: memoryview, field: int, mark: int) -> int:
    """Add the time since ``mark`` to counter ``field``; the new mark."""
    now = time.perf_counter_ns()
    mv[field] += now - mark
    return now


def _dump_profile(profiler: Any, directory: str) -> None:
    # Written under a temporary name then renamed: the parent reads only
    # whole files. A failure (the directory is gone: the pool was dropped)
    # must not make a clean exit look like a crash.
    path = os.path.join(directory, f"{os.getpid()}-{time.monotonic_ns()}")
    try:
        profiler.dump_stats(path + ".tmp")
        os.replace(path + ".tmp", path + ".prof")
    except OSError:
        pass


def _serve(
    tasks: _frames.Reader,
    results: _frames.Writer,
    mv: memoryview,
    at: int,
    ring_at: int,
    owner: int,
    writer: str,
    insights: bool,
    mark: int,
    profiler: Any,
) -> None:
    """worker_main's loop: one task frame in, one result frame out."""
    functions: OrderedDict[int, Any] = OrderedDict()
    header_size = TASK_HEADER.size
    while True:
        try:
            frame = tasks.recv_bytes()
        except (EOFError, OSError):
            # The parent closed the pipe: it is shutting down, or gone. If gone,
            # remove its segments now: the lifeline thread would too, but this
            # return may end the process before that thread has run.
            if _worker.parent_gone():
                _segments.sweep(owner)
            return
        if insights:
            mark = _tick(mv, at + _IDLE, mark)
        seq, call_id, first, flags, fn_len, desc_len = TASK_HEADER.unpack_from(frame)
        if seq == EXIT_SEQ:
            return
        # Order matters to the parent's timeout check, which trusts a slot only
        # when (seq, pos) name an item of the job it expects and reads the start
        # time after pos: LOADING before the new seq (never the new seq with the
        # old job's position), and the start time before pos leaves LOADING.
        mv[at + 1] = LOADING
        mv[at] = seq
        mv[at + 2] = time.monotonic_ns()
        view = memoryview(frame)
        # The function cache mirrors the parent's: update it before anything
        # can fail, exactly as the parent did when it sent this frame.
        fn: Any = functions.get(call_id)
        if fn_len:
            fn = _FnBytes(view[header_size : header_size + fn_len].tobytes())
            functions[call_id] = fn
            if len(functions) > FN_CACHE:
                functions.popitem(last=False)
        functions.move_to_end(call_id)
        desc_at = header_size + fn_len
        descriptor = view[desc_at : desc_at + desc_len]
        if _cancelled(mv, ring_at, call_id, first):
            mv[at + 1] = 0
            _oob.discard(descriptor)
            _send(results, SKIPPED, seq, 0, b"")
            if insights:
                mark = _tick(mv, at + _SEND, mark)
            continue
        start = time.perf_counter_ns()
        if isinstance(fn, _FnBytes):
            try:
                fn = fn.load()
            except BaseException as e:
                err = _wire.serialization_error(
                    "the function in the worker", e, stage="unpickle", direction="argument"
                )
                functions[call_id] = _FnFailed(_capture(err))
                fn = functions[call_id]
            else:
                functions[call_id] = fn
        try:
            items = _oob.loads(view[desc_at + desc_len :], descriptor)
        except BaseException as e:
            payload = pickle.dumps(_record(e), protocol=_wire.PROTOCOL)
            if insights:
                mark = _tick(mv, at + _UNPICKLE, mark)
                mv[at + _TASKS] += 1
            _send(results, LOAD_FAILED, seq, time.perf_counter_ns() - start, payload)
            if insights:
                mark = _tick(mv, at + _SEND, mark)
            continue
        del view, frame, descriptor
        if insights:
            mark = _tick(mv, at + _UNPICKLE, mark)
        if isinstance(fn, _FnFailed):
            errors = dict.fromkeys(range(1 if flags & FLAG_STOP else len(items)), fn.record)
            values: list[Any] = [None] * len(errors)
            ran = len(errors)
        else:
            mv[at + 2] = time.monotonic_ns()
            mv[at + 1] = 0
            if profiler is None:
                values, errors, ran = _run_items(fn, items, flags, mv, at)
            else:
                try:
                    profiler.enable()
                except ValueError:
                    # Another profiler is active here (Python >= 3.12 allows one):
                    # the user's own; run unprofiled rather than fail the task.
                    values, errors, ran = _run_items(fn, items, flags, mv, at)
                else:
                    try:
                        values, errors, ran = _run_items(fn, items, flags, mv, at)
                    finally:
                        profiler.disable()
        del items
        if insights:
            mark = _tick(mv, at + _FUNCTION, mark)
        payload, out_of_band = b"", b""
        if not errors:
            try:
                payload, out_of_band = _oob.dumps(values, "reference", owner, writer)
            except BaseException:
                _dump_values(values, errors)
        kind = DONE
        if errors:
            payload, out_of_band = _dump_mixed(values, errors, ran, owner, writer)
            kind = MIXED
        if insights:
            mark = _tick(mv, at + _PICKLE, mark)
            # Counted before the send: a parent that has the results sees the task.
            mv[at + _TASKS] += 1
        _send(results, kind, seq, time.perf_counter_ns() - start, payload, out_of_band)
        if insights:
            mark = _tick(mv, at + _SEND, mark)
        del values, errors, payload


def _dump_mixed(
    values: list[Any], errors: dict[int, _remote.ExceptionRecord], ran: int, owner: int, writer: str
) -> tuple[bytes, bytes]:
    try:
        return _oob.dumps((values, errors, ran), "reference", owner, writer)
    except BaseException:
        # A value failed to pickle alongside the errors: find it.
        _dump_values(values, errors)
        return _oob.dumps((values, errors, ran), "reference", owner, writer)


class _FnBytes:
    """A function pickle not unpickled yet (a skipped task never needs it)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def load(self) -> Any:
        return _wire.loads(self.data)


class _FnFailed:
    """The function of this call could not be unpickled here."""

    __slots__ = ("record",)

    def __init__(self, record: _remote.ExceptionRecord) -> None:
        self.record = record
