"""parkit's process pool: the ``"process"`` backend.

Who sends what to whom::

    caller threads                 I/O thread (one per pool)            workers
    --------------                 -------------------------            -------
    submit_batch(batch)                                                 (see _loop.py)
      fn pickled once per call
      -> command queue, wake pipe ->  run commands
                                     queue of jobs (a job: positions
                                       of one batch)
                                     dispatch: up to PREFETCH jobs per
                                       worker; items pickled here  --task pipe--> run items
                                     select() on result pipes,          <-result pipe-- one frame
                                       process sentinels, wake pipe,                 per job
                                       task pipes with pending bytes
                                     a result frame resolves the items
                                       of its job; a batch's future
    future callbacks <-------------    resolves when all its items have
      (mapping layer's queue)          an outcome
                                     a sentinel fires: read what is left,
                                       read the dead worker's status slot
                                       (which item was running), fail that
                                       item, requeue the others, start a
                                       replacement
                                     per-item timeouts: read status slots,
                                       SIGKILL the stuck worker, same path

A worker process with its pipes, and the shared status board its slot lives on,
are in ``_workers.py``. Only the I/O thread touches workers, channels and jobs;
other threads talk to it through commands (closures run by the I/O thread), so
there are no locks around pool state. Futures are resolved from the I/O thread.

Why not ``multiprocessing.Pool`` or ``concurrent.futures.ProcessPoolExecutor``
underneath: a worker killed mid-task hangs the former for ever (gh-66587) and
fails every pending task in the latter (BrokenProcessPool); both share one task
queue whose lock a dying worker can take with it. Here every worker has its own
pipes, so a death is attributed to the worker, and the status slot says which
item it was running.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import selectors
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

from ..._core import _context, _oob, _platform, _wire, _worker
from ..._core._cpus import check_cpus
from .._batch import Batch, BatchResult, Call
from . import _loop
from ._jobs import BatchState, Job
from ._ledger import Ledger
from ._workers import StatusBoard, Worker, stop_all

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    # Loaded when a caller asks for one (the map path passes its own future,
    # _backends/_future.py): concurrent.futures imports logging.
    # Loaded when raised: it costs an import of concurrent.futures.process (errors.py).
    import pstats
    from concurrent.futures import Future
    from typing import Any

    from ..._core import _remote
    from ...errors import PoolBroken

    # Loaded when asked for: a dataclass, and dataclasses costs ~5 ms (_stats.py).
    from .._stats import Insights, PoolStats

__all__ = ["ProcessEngine"]

#: Jobs sent to a worker ahead of its results: one running, one waiting in the
#: pipe, so the worker never waits for a round trip between jobs.
PREFETCH = 2
#: How often per-item timeouts are checked, at most (seconds).
_TIMEOUT_POLL = 0.02
#: Consecutive workers dying before they are ready that break the pool.
_START_FAILURES = 2

_pool_ids = itertools.count(1)
_live: weakref.WeakSet[ProcessEngine] = weakref.WeakSet()


@atexit.register
def _terminate_at_exit() -> None:
    # Pools nobody shut down: nothing may outlive the interpreter (SPEC §1).
    # The one-shot calls' pools and executors were shut down gracefully before
    # this runs (their hooks were registered later, and run earlier).
    for engine in list(_live):
        engine.terminate()


def _forget_after_fork() -> None:
    # A process forked from this one (os.fork(), a fork-method child) has
    # copies of these pools, with no I/O thread and locks as other threads
    # held them at the fork: not its own to stop at its exit.
    _live.clear()


_platform.after_fork_in_child(_forget_after_fork)


def _join(thread: threading.Thread, done: threading.Event) -> None:
    """Wait until the I/O thread ``thread``, which sets ``done`` last, has ended."""
    # Not thread.join() alone: on Python < 3.13 a join interrupted by Ctrl-C
    # may leave the thread marked as stopped while it still runs (bpo-45274's
    # handling in Thread._wait_for_tstate_lock), and every later join returns
    # at once. The event can't be fooled so.
    done.wait()
    thread.join()


class ProcessEngine:
    """The ``"process"`` backend: a pool of worker processes run by one I/O thread.

    parkit's own engine (not the stdlib's pool): each worker has its own pipes,
    served by one non-blocking I/O thread; a status slot per worker in shared
    memory tells which item a dead worker was running, so only that item fails
    (:class:`parkit.WorkerCrashed`) and the worker is replaced; a per-item
    ``timeout`` kills and replaces only the stuck worker. ``parkit.Pool``
    makes one for ``backend="process"``; make one yourself to share it
    between pools (``backend=parkit.backends.Process(4)``).

    Args:
        workers: how many worker processes.
        context: start method (see :func:`parkit.default_context`).
        initializer: called as ``initializer(*initargs)`` in each worker when
            it starts; if it raises, the pool breaks (:class:`parkit.PoolBroken`).
        initargs: arguments for ``initializer``.
        max_tasks_per_worker: a worker is replaced after this many items.
        idle_timeout: workers exit after this many seconds without work and
            start again when needed (``None``: they stay until shutdown).
        name: a name for the pool, in worker names (``parkit-<name>-w0``).
        insights: the workers count how their time splits (:meth:`insights`).
        profile: the workers run the function under ``cProfile`` (:meth:`profile`).
        cpus: the CPU numbers every worker may run on (its affinity).
        worker_logging: forward what the workers log to this process's handlers.
    """

    stops_tasks = True
    shares_memory = True

    def __init__(
        self,
        workers: int,
        context: _context.ContextLike = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_worker: int | None = None,
        idle_timeout: float | None = None,
        name: str | None = None,
        insights: bool | None = None,
        profile: bool | None = None,
        cpus: Any = None,
        worker_logging: bool = True,
    ) -> None:
        _platform.not_on_windows(
            "parkit's process backend",
            "POSIX non-blocking pipe I/O",
            'backend="thread" or "serial", or concurrent.futures.ProcessPoolExecutor',
        )
        self._cpus = check_cpus(cpus)
        self._worker_logging = bool(worker_logging)
        self._ctx = _context.resolve_context(context)
        self.start_method: str = self._ctx.get_start_method()
        self._workers = workers
        self._name = name or f"pool{next(_pool_ids)}"
        # Forked workers find by name what __main__ held when they were forked,
        # and must get it by name: the initializer sets the globals of *their*
        # __main__'s functions. What they lack (defined after the fork) goes by
        # value. Spawn and forkserver workers import the main script.
        self._forked: _wire.ForkedMain | None = (
            _wire.ForkedMain() if self.start_method == "fork" else None
        )
        self._main: _wire.MainPolicy = self._forked or "auto"
        self._owner = os.getpid()  # names this pool's shared-memory segments
        # Pickled by multiprocessing while it starts each worker, so that its
        # own Queue, Lock or Value may be initargs (as with the stdlib); a
        # failure there breaks the pool with the SerializationError chained.
        self._init = _worker.Payload(initializer, initargs, {}) if initializer is not None else None
        self._max_tasks = max_tasks_per_worker
        self._idle_timeout = idle_timeout
        self._board = StatusBoard(workers)
        self._insights = bool(insights)
        # Profiled workers write their statistics here when they exit
        # (_loop._dump_profile); removed with the engine.
        self._profile_dir: str | None = None
        if profile:
            import shutil  # noqa: PLC0415  (only a profiled pool pays for these imports)
            import tempfile  # noqa: PLC0415

            self._profile_dir = tempfile.mkdtemp(prefix="parkit-profile-")
            weakref.finalize(self, shutil.rmtree, self._profile_dir, ignore_errors=True)
        self._lock = threading.Lock()
        self._commands: deque[Callable[[], None]] = deque()
        self._thread: threading.Thread | None = None
        self._thread_done = threading.Event()  # set when that thread has ended
        self._wake_r = self._wake_w = -1
        self._closing = False  # shutdown() called: no new batches
        self._closed = False
        self._broken: PoolBroken | None = None
        self._fn_memo: weakref.WeakKeyDictionary[Call, bytes] = weakref.WeakKeyDictionary()
        # I/O thread state.
        self._sel: selectors.BaseSelector | None = None
        self._slots: list[Worker | None] = [None] * workers
        self._queue: deque[Job] = deque()
        self._seq = itertools.count(1)
        self._start_failures = 0
        self._forgotten: dict[int, int] = {}
        self._idle_since = time.monotonic()
        # Statistics.
        self._ledger = Ledger()
        self._restarts = 0
        self._busy = [0.0] * workers
        _live.add(self)

    # ------------------------------------------------------------ caller side

    @property
    def workers(self) -> int:
        """The number of worker processes."""
        return self._workers

    def submit_batch(
        self, batch: Batch, future: Future[BatchResult] | None = None
    ) -> Future[BatchResult]:
        """Queue ``batch``; see :meth:`parkit.backends.Backend.submit_batch`.

        Args:
            batch: the items to run.
            future: the future to resolve, or ``None`` for a new one.

        Returns:
            The future that resolves with the batch's ``BatchResult``.

        Raises:
            SerializationError: the call's function can't be pickled.
            PoolBroken: the pool is broken.
            RuntimeError: the pool was shut down.
        """
        call = batch.call
        with self._lock:
            fn_bytes = self._fn_memo.get(call)
        if fn_bytes is None:
            fn_bytes = self._pickle_fn(call)
            with self._lock:
                self._fn_memo[call] = fn_bytes
        if future is None:
            from concurrent.futures import Future  # noqa: PLC0415  (see TYPE_CHECKING)

            future = Future()
        state = BatchState(batch, future, fn_bytes)
        self._command(lambda: self._queue.append(Job(state, None)))
        return future

    def _pickle_fn(self, call: Call) -> bytes:
        try:
            return _wire.dumps(call.fn, main=self._main)
        except Exception as e:
            raise _wire.serialization_error(
                f"the function {_worker.describe_callable(call.fn)} to send it to the workers",
                e,
                stage="pickle",
                direction="argument",
            ) from e

    def forget(self, call: Call, after: int) -> None:
        """The caller needs no item of ``call`` past ``after``.

        Its batches that no worker has started are dropped.

        Args:
            call: the call concerned.
            after: the last input index the caller still needs.
        """
        self._command(lambda: self._do_forget(call, after), allow_closing=True)

    def interrupt(self, call: Call) -> None:
        """Stop ``call``'s running items now.

        Their workers are killed and replaced; its queued batches are dropped.

        Args:
            call: the call whose items to stop.
        """
        # Load the error classes now, in the interrupted thread: a Ctrl-C that
        # ends the program shuts this pool down at exit, and PoolBroken's module
        # imports concurrent.futures.process, which can't register its exit
        # hook once the interpreter is shutting down (the import then failed in
        # the I/O thread, and the program exited with 1 instead of by SIGINT).
        from ...errors import PoolBroken  # noqa: F401, PLC0415

        self._command(lambda: self._do_interrupt(call), allow_closing=True)

    def stats(self) -> PoolStats:
        """A snapshot of :class:`PoolStats`.

        Returns:
            What the pool has done so far.
        """
        from .._stats import PoolStats  # noqa: PLC0415  (see the TYPE_CHECKING import)

        return PoolStats(
            self._ledger.done,
            self._ledger.failed,
            self._ledger.crashed,
            self._ledger.timed_out,
            self._restarts,
            tuple(self._busy),
            self.insights() if self._insights else None,
        )

    def insights(self) -> Insights:
        """The workers' phase counters (see ``_loop.py``), read from the status board.

        Returns:
            A :class:`parkit.Insights` snapshot.

        Raises:
            RuntimeError: the pool was made without ``insights=True``.
        """
        if not self._insights:
            raise RuntimeError("this pool does not measure insights: make it with insights=True")
        from .._stats import Insights, WorkerInsights  # noqa: PLC0415  (as stats())

        workers = []
        for counters in self._board.counters():
            startup, idle, unpickle, function, pickle, send = (ns / 1e9 for ns in counters[:-1])
            workers.append(
                WorkerInsights(startup, idle, unpickle, function, pickle, send, counters[-1])
            )
        return Insights(tuple(workers))

    def profile(self) -> pstats.Stats:
        """The merged ``cProfile`` statistics of the workers that have exited normally.

        Returns:
            One ``pstats.Stats`` of their profiles.

        Raises:
            RuntimeError: the pool was made without ``profile=True``.
        """
        if self._profile_dir is None:
            raise RuntimeError("this pool does not profile its workers: make it with profile=True")
        import pstats  # noqa: PLC0415  (only asked of a profiled pool)

        names = sorted(n for n in os.listdir(self._profile_dir) if n.endswith(".prof"))
        merged = pstats.Stats()
        for name in names:
            merged.add(os.path.join(self._profile_dir, name))
        return merged

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Finish queued work (or cancel it), then stop the workers.

        Args:
            wait: block until every worker has exited.
            cancel_futures: cancel batches that have not started.
        """
        with self._lock:
            self._closing = True
            thread, done = self._thread, self._thread_done
            if thread is not None:
                if cancel_futures:
                    self._commands.append(self._cancel_queued)
                self._commands.append(lambda: None)
                self._wake()
            else:
                self._closed = True
        if wait and thread is not None and thread is not threading.current_thread():
            _join(thread, done)

    def terminate(
        self, cancel_queued: bool = False, reason: str = "the pool was terminated"
    ) -> None:
        """Kill the workers now; pending batches fail with :class:`PoolBroken`.

        Args:
            cancel_queued: cancel the batches no worker has started instead.
            reason: the message of the :class:`PoolBroken` the others fail with.
        """
        with self._lock:
            self._closing = True
            if self._thread is None:
                # Nothing runs (never started, or shut down): nothing to kill,
                # and no error class to load (it imports concurrent.futures).
                return
        # Loaded and made here, not in the I/O thread: see interrupt().
        from ...errors import PoolBroken  # noqa: PLC0415

        broken = PoolBroken(reason)
        with self._lock:
            thread, done = self._thread, self._thread_done
            if thread is not None:
                if cancel_queued:
                    self._commands.append(lambda: self._cancel_queued(dispatch_first=False))
                self._commands.append(lambda: self._do_break(broken, kill=True))
                self._wake()
        if thread is not None and thread is not threading.current_thread():
            _join(thread, done)

    def _command(self, fn: Callable[[], None], allow_closing: bool = False) -> None:
        with self._lock:
            if self._broken is not None and not allow_closing:
                raise self._broken
            if self._closing and not allow_closing:
                raise RuntimeError("cannot schedule new work after the pool was shut down")
            if self._thread is None:
                if allow_closing:
                    return  # nothing runs: nothing to forget or interrupt
                self._start_thread()
            self._commands.append(fn)
            self._wake()

    def _wake(self) -> None:
        # Called with the lock held; one byte is enough, the pipe may be full.
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def _start_thread(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread_done = threading.Event()
        self._thread = threading.Thread(
            target=self._main_loop,
            args=(self._thread_done,),
            name=f"parkit-{self._name}-io",
            daemon=True,
        )
        self._thread.start()

    # -------------------------------------------------------------- I/O thread

    def _main_loop(self, done: threading.Event) -> None:
        try:
            self._serve_rounds()
        finally:
            done.set()

    def _serve_rounds(self) -> None:
        try:
            while True:
                self._sel = selectors.DefaultSelector()
                self._sel.register(self._wake_r, selectors.EVENT_READ, None)
                self._idle_since = time.monotonic()
                try:
                    self._serve()
                except BaseException as e:  # a bug here must not hang every caller
                    from ...errors import PoolBroken  # noqa: PLC0415

                    self._do_break(
                        PoolBroken(f"the pool's I/O thread failed: {type(e).__name__}: {e}"),
                        kill=True,
                    )
                    raise
                finally:
                    self._stop_workers()
                # Decide under the lock, with the workers already gone, so that
                # a submit either sees this thread (and its command is served
                # by another round) or starts a fresh one: never two at once.
                with self._lock:
                    if self._commands and not self._closing and self._broken is None:
                        continue  # work arrived while the workers were stopping
                    self._thread = None
                    os.close(self._wake_r)
                    os.close(self._wake_w)
                    if self._closing:
                        self._closed = True
                    return
        except BaseException:
            with self._lock:
                self._thread = None
                os.close(self._wake_r)
                os.close(self._wake_w)
            raise

    def _serve(self) -> None:
        """Serve commands and workers until there is nothing left to do."""
        assert self._sel is not None
        while self._run_commands():
            self._fill_slots()
            self._dispatch()
            for key, events in self._sel.select(self._poll_timeout()):
                if key.data is not None:
                    key.data(events)
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
            self._check_timeouts()

    def _run_commands(self) -> bool:
        """Run queued commands; False when the thread should stop serving."""
        while True:
            with self._lock:
                if not self._commands:
                    return not self._should_exit()
                command = self._commands.popleft()
            command()

    def _has_work(self) -> bool:
        return bool(self._queue) or any(w is not None and w.inflight for w in self._slots)

    def _should_exit(self) -> bool:
        # Called with the lock held.
        if self._broken is not None:
            return True
        if self._has_work():
            self._idle_since = time.monotonic()
            return False
        if self._closing:
            return True
        return (
            self._idle_timeout is not None
            and time.monotonic() - self._idle_since >= self._idle_timeout
        )

    def _poll_timeout(self) -> float | None:
        if self._closing and not self._has_work():
            return 0.0  # dispatch dropped the last (cancelled) job: exit now
        timeout: float | None = None
        if any(
            w is not None and w.inflight and w.inflight[0].state.batch.call.timeout
            for w in self._slots
        ):
            timeout = _TIMEOUT_POLL
        if self._idle_timeout is not None and not self._has_work():
            left = max(0.0, self._idle_timeout - (time.monotonic() - self._idle_since)) + 0.001
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    # workers ----------------------------------------------------------------

    def _fill_slots(self) -> None:
        if self._broken is not None or (self._closing and not self._has_work()):
            return
        for slot, w in enumerate(self._slots):
            if w is None and not self._start_worker(slot):
                return

    def _start_worker(self, slot: int) -> bool:
        """Start the worker of ``slot``; False if that broke the pool."""
        assert self._sel is not None
        before = _wire.main_snapshot() if self._forked is not None else None
        try:
            w = Worker.start(
                self._ctx,
                slot,
                self._board,
                self._workers,
                self._init,
                self._owner,
                self._name,
                self._max_tasks,
                self._insights,
                self._profile_dir,
                # The levels as they are when this worker starts (a replacement
                # gets the current ones); None when the parent never set up logging.
                _worker.parent_log_levels() if self._worker_logging else None,
                self._cpus,
            )
        except Exception as e:
            from ...errors import PoolBroken  # noqa: PLC0415

            err = PoolBroken(f"could not start a worker process: {type(e).__name__}: {e}")
            err.__cause__ = e
            self._do_break(err)
            return False
        if self._forked is not None and before is not None:
            self._forked.forked(before, _wire.main_snapshot())
        self._slots[slot] = w
        self._sel.register(
            w.channel.result_fd, selectors.EVENT_READ, lambda _ev: self._on_readable(w)
        )
        self._sel.register(w.sentinel, selectors.EVENT_READ, lambda _ev: self._on_exit(w))
        return True

    def _retire(self, w: Worker) -> None:
        assert self._sel is not None
        w.retire(self._sel)

    def _stop_workers(self) -> None:
        stop_all((w for w in self._slots if w is not None), self._sel, self._owner)
        self._slots = [None] * self._workers
        if self._forked is not None:
            self._forked.reset()  # the next workers are forked from __main__ as it is then
        if self._sel is not None:
            self._sel.close()
            self._sel = None

    def _forget_worker(self, w: Worker) -> None:
        w.close(self._sel, self._owner)
        if self._slots[w.slot] is w:
            self._slots[w.slot] = None

    # dispatch ---------------------------------------------------------------

    def _dispatch(self) -> None:
        while self._queue:
            w = self._pick_worker()
            if w is None:
                return
            job = self._queue.popleft()
            state = job.state
            if not state.started:
                state.started = True
                # A future cancelled while queued is dropped here; notifying it
                # is what makes concurrent.futures.wait() count it as done.
                if not state.future.set_running_or_notify_cancel():
                    continue
            if state.future.done():
                continue
            call = state.batch.call
            after = self._forgotten.get(call.id)
            if after is not None and job.index(0) > after:
                state.skip(len(job))
                state.finish_if_done()
                continue
            if w.budget is not None and len(job) > w.budget:
                positions = job.position_list()
                self._queue.appendleft(Job(state, positions[w.budget :]))
                job = Job(state, positions[: w.budget])
            framed = self._frame(w, job)
            if framed is None:
                continue  # every item failed to pickle
            job, frame = framed
            w.inflight.append(job)
            self._send(w, frame)
            if w.budget is not None:
                w.budget -= len(job)
                if w.budget <= 0:
                    self._retire(w)

    def _pick_worker(self) -> Worker | None:
        best: Worker | None = None
        for w in self._slots:
            if w is None or w.retiring or len(w.inflight) >= PREFETCH:
                continue
            if best is None or len(w.inflight) < len(best.inflight):
                best = w
        return best

    def _frame(self, w: Worker, job: Job) -> tuple[Job, bytes] | None:
        """The task frame for ``job`` (updating ``w``'s function-cache mirror)."""
        state = job.state
        call = state.batch.call
        try:
            items, job.segment = _oob.dumps(job.items(), self._main, self._owner, "p")
        except Exception:
            job = self._ledger.unpicklable_arguments(job, self._main)
            if not len(job):
                state.finish_if_done()
                return None
            items, job.segment = _oob.dumps(job.items(), self._main, self._owner, "p")
        job.seq = next(self._seq)
        fn = b""
        if call.id not in w.calls:
            fn = state.fn_bytes
            w.calls[call.id] = None
            if len(w.calls) > _loop.FN_CACHE:
                w.calls.popitem(last=False)
        w.calls.move_to_end(call.id)
        flags = (
            (_loop.FLAG_STAR if call.star else 0)
            | (_loop.FLAG_STOP if call.stop_on_error else 0)
            | (_loop.FLAG_TIMED if call.timeout else 0)
        )
        header = _loop.TASK_HEADER.pack(
            job.seq, call.id, job.index(0), flags, len(fn), len(job.segment)
        )
        return job, b"".join((header, fn, job.segment, items))

    def _send(self, w: Worker, frame: bytes) -> None:
        assert self._sel is not None
        w.send(frame, self._sel)

    # results ----------------------------------------------------------------

    def _on_readable(self, w: Worker) -> None:
        for frame in w.channel.receive():
            self._on_frame(w, frame)
        if w.channel.eof and self._sel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(w.channel.result_fd)

    def _on_frame(self, w: Worker, frame: bytes) -> None:
        kind, seq, busy_ns, desc_len = _loop.RESULT_HEADER.unpack_from(frame)
        view = memoryview(frame)
        at = _loop.RESULT_HEADER.size
        descriptor, payload = view[at : at + desc_len], view[at + desc_len :]
        if kind == _loop.LOG:
            from ..._core import _logs  # noqa: PLC0415 - a worker sends these only if asked to

            _logs.emit(payload)
            return
        if kind == _loop.READY:
            w.ready = True
            self._start_failures = 0
            return
        if kind == _loop.INIT_FAILED:
            # Loaded on this failure only, as every error class below.
            from ..._core import _remote  # noqa: PLC0415
            from ...errors import PoolBroken  # noqa: PLC0415

            record: _remote.ExceptionRecord = _wire.loads(payload)
            what = "initializer" if seq == _loop.INIT_INITIALIZER else "CPU affinity (cpus=)"
            cause = _remote.rebuild(record, note=f"[parkit] raised by the {what} in {w.who}")
            if seq == _loop.INIT_INITIALIZER:
                says = f"the pool's initializer raised {type(cause).__name__}: {cause}"
            else:
                says = (
                    f"the worker could not set its CPU affinity (cpus=): "
                    f"{type(cause).__name__}: {cause}"
                )
            err = PoolBroken(f"{says} (in {w.who}); the pool cannot run anything")
            err.__cause__ = cause
            self._do_break(err)
            return
        job = w.inflight.popleft()
        _oob.discard(job.segment)  # normally unlinked by the worker already
        assert job.seq == seq, (job.seq, seq)
        try:
            self._settle(w, job, kind, busy_ns, payload, descriptor)
        except BaseException:
            # A bug here breaks the pool (_main_loop): keep the job where
            # _do_break will find it, so its future fails instead of hanging.
            w.inflight.appendleft(job)
            raise

    def _settle(
        self,
        w: Worker,
        job: Job,
        kind: int,
        busy_ns: int,
        payload: memoryview,
        descriptor: memoryview,
    ) -> None:
        state = job.state
        busy = busy_ns / 1e9
        state.busy += busy
        self._busy[w.slot] += busy
        if kind == _loop.SKIPPED:
            state.skip(len(job))
        elif kind == _loop.LOAD_FAILED:
            self._requeue(self._ledger.unloadable_arguments(job, _wire.loads(payload), w.who))
        else:
            try:
                outcome = _oob.loads(payload, descriptor)
            except BaseException as e:  # SystemExit from a hostile __reduce__ too
                if isinstance(e, KeyboardInterrupt):
                    raise
                self._requeue(self._ledger.unloadable_results(job, e, w.pid))
            else:
                if kind == _loop.DONE:
                    self._ledger.delivered(job, outcome, {}, len(outcome), w.who)
                else:
                    values, errors, ran = outcome
                    self._ledger.delivered(job, values, errors, ran, w.who)
        state.finish_if_done()

    # deaths -----------------------------------------------------------------

    def _on_exit(self, w: Worker) -> None:
        """``w``'s process ended: account for every job it had."""
        self._on_readable(w)  # results it sent before dying still count
        _context.join_process(w.process, 1.0)
        exitcode = w.process.exitcode
        jobs = list(w.inflight)
        w.inflight.clear()
        for job in jobs:
            _oob.discard(job.segment)  # never mapped by the dead worker
        self._forget_worker(w)
        if self._broken is not None:
            return  # its jobs were failed with the pool; nothing is restarted
        if w.retiring and not jobs:
            if self._max_tasks is not None and not self._closing:
                self._restarts += 1
            return
        if not w.ready and w.killed_for is None and exitcode == _context.MAIN_IMPORT_EXITCODE:
            # It stopped while importing the main module, which starts parkit
            # work (no __main__ guard): every worker would. One clear error.
            self._requeue(jobs)
            from ...errors import MainModuleError  # noqa: PLC0415

            self._do_break(
                MainModuleError(_context.main_module_path(), self.start_method, w.who, w.pid)
            )
            return
        if not w.ready and w.killed_for is None:
            self._start_failures += 1
            if self._start_failures >= _START_FAILURES:
                self._requeue(jobs)
                from ...errors import PoolBroken, describe_exitcode  # noqa: PLC0415

                self._do_break(
                    PoolBroken(
                        f"workers die while starting ({w.who} exited with "
                        f"{describe_exitcode(exitcode)} before it was ready: the initializer "
                        "or the import of the main module ends the process); the pool cannot "
                        "run anything"
                    )
                )
                return
        self._restarts += 1
        seq, pos = self._board.last(w.slot)
        for job in jobs:
            self._requeue(self._ledger.lost(job, seq, pos, w.killed_for, exitcode, w.pid))
            job.state.finish_if_done()

    def _requeue(self, jobs: list[Job]) -> None:
        for job in reversed(jobs):
            self._queue.appendleft(job)

    def _check_timeouts(self) -> None:
        now = time.monotonic_ns()
        for w in self._slots:
            if w is None or not w.inflight or w.killed_for is not None:
                continue
            job = w.inflight[0]
            timeout = job.state.batch.call.timeout
            if not timeout:
                continue
            running = self._board.running(w.slot, job.seq, len(job))
            if running is None:
                continue
            pos, started = running
            if now - started > timeout * 1e9:
                w.killed_for = (job.seq, pos, "timeout")
                # Only this worker is stopped; it is stuck in user code, so
                # nothing gentler than SIGKILL is sure to work.
                with contextlib.suppress(ProcessLookupError):
                    w.process.kill()

    # commands ---------------------------------------------------------------

    def _do_forget(self, call: Call, after: int) -> None:
        self._forgotten[call.id] = after
        if len(self._forgotten) > 4 * _loop.CANCEL_RING:
            del self._forgotten[next(iter(self._forgotten))]
        self._board.cancel(call.id, after)
        kept: deque[Job] = deque()
        for job in self._queue:
            if job.state.batch.call is call and job.index(0) > after:
                job.state.skip(len(job))
                job.state.finish_if_done()
            else:
                kept.append(job)
        self._queue = kept

    def _do_interrupt(self, call: Call) -> None:
        # Nobody waits for the call any more: its jobs that a killed worker
        # had queued behind the interrupted one must be skipped, not requeued
        # to a replacement (the caller's forget() may come only after that).
        self._do_forget(call, -1)
        for w in self._slots:
            if (
                w is not None
                and w.inflight
                and w.inflight[0].state.batch.call is call
                and w.killed_for is None
            ):
                w.killed_for = (w.inflight[0].seq, -1, "interrupt")
                with contextlib.suppress(ProcessLookupError):
                    w.process.kill()

    def _cancel_queued(self, dispatch_first: bool = True) -> None:
        if dispatch_first:
            # As the stdlib's shutdown(cancel_futures=True) does, what fits in
            # the workers' queues goes first; only the rest is cancelled.
            self._fill_slots()
            self._dispatch()
        for job in self._queue:
            state = job.state
            if not state.started and state.future.cancel():
                state.started = True
                state.future.set_running_or_notify_cancel()  # wakes wait() callers
        self._queue = deque(job for job in self._queue if not job.state.future.done())

    def _do_break(self, err: PoolBroken, kill: bool = False) -> None:
        """The pool can't go on: fail everything pending with ``err``."""
        with self._lock:
            if self._broken is None:
                self._broken = err
        states = {id(j.state): j.state for j in self._queue}
        for w in self._slots:
            if w is None:
                continue
            for job in w.inflight:
                states[id(job.state)] = job.state
                _oob.discard(job.segment)
            if kill:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    w.process.kill()
        self._queue.clear()
        for state in states.values():
            future = state.future
            if future.running() or (not future.done() and future.set_running_or_notify_cancel()):
                future.set_exception(err)
        for w in self._slots:
            if w is not None:
                w.inflight.clear()
