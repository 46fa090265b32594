"""The ``"dask"`` backend: batches run as tasks on a Dask cluster (``distributed``).

``backend="dask"`` uses the active ``distributed.Client``; ``DaskBackend(client)``
or ``DaskBackend("tcp://host:8786")`` names one (a client it connects itself it
also closes, in :meth:`DaskBackend.shutdown`). The cluster's total threads are
the backend's ``workers``, which size the mapping layer's in-flight window, so
an endless ``imap`` keeps memory flat here too.

How a batch travels (docs/dask.md):

* **one Dask task per batch**, submitted with ``pure=False``: a task costs the
  scheduler 1-2 ms, so per-item tasks would be slower than one machine;
* the function and the items are pickled **here** by cloudpickle, by value
  where a worker could not import them (``__main__``, a notebook, a test file,
  a project that is not installed on the workers), and run on the worker by
  :func:`run_remote_batch`, a plain function of this module that workers
  import by name (parkit must be installed on the workers);
* the worker returns one pickle: every item's value or its captured exception
  (:mod:`parkit._core._remote`), rebuilt here with the original type, the
  worker's frames and a note naming the worker's address;
* a worker that dies while running a batch is retried by the scheduler
  (``distributed.scheduler.allowed-failures``); when it gives up
  (``KilledWorker``) every item of the batch gets :class:`parkit.WorkerCrashed`;
* a task can't be stopped from here (``stops_tasks`` is false): a ``timeout``
  gives :class:`parkit.TaskTimeout` on time and the task may keep running. Timed
  batches (one item each) are handed to the scheduler no more than ``workers``
  at a time, so an item's clock starts about when it starts;
* every wait is bounded: a watchdog fails what is pending with
  :class:`parkit.PoolBroken` once the client is disconnected, or the cluster has
  had no worker, for ``lost_after`` seconds.

``distributed`` is imported only when a Dask backend is made: ``import parkit``
never loads it.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import io
import itertools
import os
import pickle
import sys
import sysconfig
import threading
import time
import types
import weakref
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from .._core import _remote, _wire
from .._core._worker import describe_callable
from ..errors import SerializationError, TaskTimeout
from ._batch import NOT_RUN, Batch, BatchResult, Call

if TYPE_CHECKING:
    from distributed import Client

    from ._stats import PoolStats

__all__ = ["DaskBackend", "run_remote_batch"]

#: Seconds without a connected client, or without a single worker, after which
#: pending batches fail with PoolBroken instead of waiting for ever.
LOST_AFTER = 30.0
#: How often the watchdog looks at the client while batches are pending.
_CHECK_EVERY = 0.5
#: The longest a question to the scheduler may take (a dead one never answers).
_ASK_TIMEOUT = 5.0

_names = itertools.count(1)


# --------------------------------------------------------------------------- the worker side


def run_remote_batch(
    fn_blob: bytes, items_blob: bytes, star: bool, stop_on_error: bool, indices: list[int]
) -> bytes:
    """Run one batch on a Dask worker; return every item's outcome as one pickle.

    ``indices[k]`` is item ``k``'s index in the caller's input (what an error
    about it names).

    The pickle holds ``(values, errors, busy, where)``: ``values[k]`` is item
    ``k``'s return value (``None`` where it raised, ``NOT_RUN`` after a failure
    that stops the batch), ``errors`` maps a position to a captured
    :class:`~parkit._core._remote.ExceptionRecord`, ``busy`` is the seconds the
    items took and ``where`` names the worker. Nothing raises out of here but
    an error of Dask itself: an item's exception, even ``SystemExit``, is data.
    """
    where = _worker_name()
    n_items = -1
    try:
        fn = pickle.loads(fn_blob)
        items = pickle.loads(items_blob)
    except BaseException as e:
        # The worker can't rebuild what was sent (a module it lacks): every item
        # fails with the reason, as a SerializationError with the cause chained.
        err = SerializationError(
            f"could not unpickle the function or the items on {where}: {_wire.describe_error(e)}",
            direction="argument",
            stage="unpickle",
        )
        err.__cause__ = e
        return _wire.dumps(([], {n_items: _remote.capture(err)}, 0.0, where), main="value")
    values: list[Any] = []
    errors: dict[int, _remote.ExceptionRecord] = {}
    started = time.perf_counter()
    for pos, item in enumerate(items):
        try:
            values.append(fn(*item) if star else fn(item))
        except BaseException as e:
            if e.__traceback__ is not None:
                e = e.with_traceback(e.__traceback__.tb_next)  # start in the user's code
            errors[pos] = _remote.capture(e)
            values.append(None)
            if stop_on_error:
                values.extend([NOT_RUN] * (len(items) - pos - 1))
                break
    busy = time.perf_counter() - started
    try:
        return _wire.dumps((values, errors, busy, where), main="value")
    except BaseException:
        pass
    # Some value can't be pickled: find which, fail those items only.
    for pos, value in enumerate(values):
        try:
            _wire.dumps(value, main="value")
        except BaseException as e:
            err = SerializationError(
                f"could not pickle the result of item {indices[pos]}, a "
                f"{type(value).__qualname__}, on {where}: {_wire.describe_error(e)}",
                direction="result",
                stage="pickle",
                item_index=indices[pos],
            )
            err.__cause__ = e
            errors[pos] = _remote.capture(err)
            values[pos] = None
    return _wire.dumps((values, errors, busy, where), main="value")


def _worker_name() -> str:
    try:
        from distributed import get_worker  # noqa: PLC0415 - a worker has it loaded

        return f"dask worker {get_worker().address}"
    except Exception:
        return f"dask worker pid {os.getpid()}"


# --------------------------------------------------------------------------- pickling here


def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return tuple(os.path.join(os.path.realpath(r), "") for r in roots)


_ROOTS = _installed_roots()
_by_value_modules: dict[str, bool] = {}


def _travels_by_value(module_name: str | None) -> bool:
    """Whether objects of ``module_name`` must be pickled by value for a worker.

    A worker finds by name what is installed (the standard library,
    site-packages, parkit itself); a module loaded from anywhere else (the
    main script, a test file, a project directory on ``sys.path``) is most
    likely not on the workers, so its functions and classes travel by value.
    """
    if module_name is None:
        return False
    known = _by_value_modules.get(module_name)
    if known is not None:
        return known
    module = sys.modules.get(module_name)
    if module_name in ("__main__", "__mp_main__"):
        answer = True
    elif module is None or module_name.partition(".")[0] == "parkit":
        answer = False
    else:
        path = getattr(module, "__file__", None)
        answer = path is not None and not os.path.realpath(path).startswith(_ROOTS)
    _by_value_modules[module_name] = answer
    return answer


def _local_only_types() -> tuple[type, ...]:
    """parkit's objects that live in this machine's shared memory (if loaded)."""
    found: list[type] = []
    for module_name, attr in (
        ("parkit._shared", "SharedArray"),
        ("parkit._sync._base", "SyncObject"),
        ("parkit._pipe", "Connection"),
        ("parkit._pipe", "Pipe"),
    ):
        module = sys.modules.get(module_name)
        if module is not None:
            found.append(getattr(module, attr))
    return tuple(found)


_INSTEAD = {
    "SharedArray": "pass the NumPy array itself (it is copied to the worker), "
    "or scatter it once with client.scatter",
    "Queue": "use a distributed.Queue, or return values from the function",
    "Connection": "use a distributed.Queue, or return values from the function",
    "Pipe": "use a distributed.Queue, or return values from the function",
}
_LOCKS = "use distributed.Lock, distributed.Semaphore, distributed.Event or distributed.Variable"


class LocalOnlyError(TypeError):
    """Raised inside the pickler for an object that can't leave this machine."""


def _local_only_message(obj: object) -> str:
    name = type(obj).__name__
    instead = _INSTEAD.get(name, _LOCKS)
    return (
        f"a parkit.{name} can't be sent to a Dask worker: it lives in this machine's "
        f"shared memory, and Dask workers may run on other machines; {instead}"
    )


def _make_pickler() -> type:
    from cloudpickle.cloudpickle import _dynamic_class_reduce  # noqa: PLC0415

    from .._core._byvalue import ByValuePickler  # noqa: PLC0415 - loads cloudpickle

    local_only = _local_only_types()

    class DaskPickler(ByValuePickler):
        """cloudpickle, by value for what workers can't import, refusing local objects."""

        def reducer_override(self, obj: Any) -> Any:
            if local_only and isinstance(obj, local_only):
                raise LocalOnlyError(_local_only_message(obj))
            if isinstance(obj, types.FunctionType) and _travels_by_value(
                getattr(obj, "__module__", None)
            ):
                return self._dynamic_function_reduce(obj)
            if (
                isinstance(obj, type)
                and _travels_by_value(getattr(obj, "__module__", None))
                and not _is_builtin_type(obj)
            ):
                return _dynamic_class_reduce(obj)
            return super().reducer_override(obj)

    return DaskPickler


def _is_builtin_type(tp: type) -> bool:
    return tp.__module__ == "builtins"


_picklers: dict[tuple[type, ...], type] = {}


def _dumps(obj: Any) -> bytes:
    # One pickler class per set of loaded local-only types (made once, not per batch).
    local_only = _local_only_types()
    pickler = _picklers.get(local_only)
    if pickler is None:
        pickler = _picklers[local_only] = _make_pickler()
    buf = io.BytesIO()
    pickler(buf, "value").dump(obj)
    return buf.getvalue()


# --------------------------------------------------------------------------- the backend


class _Pending:
    """A batch handed to the backend and not resolved yet."""

    __slots__ = (
        "batch",
        "dask",
        "deadline",
        "early_errors",
        "future",
        "items",
        "items_blob",
        "positions",
        "retried",
    )

    def __init__(self, batch: Batch, future: Future[BatchResult]) -> None:
        self.batch = batch
        self.future = future
        self.dask: Any = None  # the distributed.Future, once submitted
        self.deadline: float | None = None
        self.items: list[Any] = []  # what was sent (items that pickled)
        self.positions: list[int] = []  # their positions in the batch
        self.items_blob = b""
        # Items that could not be pickled here: their errors, by position.
        self.early_errors: dict[int, BaseException] = {}
        self.retried = False


class DaskBackend:
    """The ``"dask"`` backend: batches run as tasks of a Dask cluster.

    One Dask task per batch (``pure=False``), in the usual bounded window;
    functions travel by value (cloudpickle) where the workers can't import
    them; exceptions come back with their type, the worker's frames and a note
    naming the worker; a ``KilledWorker`` becomes :class:`parkit.WorkerCrashed`
    for the batch's items. A Dask task can't be stopped from outside, so a
    ``timeout`` is reported on time while the task may keep running.
    docs/dask.md tells what differs from one machine.

    Args:
        client_or_address: a ``distributed.Client``, a scheduler address
            (``"tcp://host:8786"``: a client is connected now and closed by
            :meth:`shutdown`), or ``None`` for the active client.
        lost_after: seconds that pending batches wait for a disconnected client
            or a cluster without workers before they fail with
            :class:`parkit.PoolBroken`.

    Raises:
        ImportError: ``distributed`` is not installed.
        RuntimeError: ``None`` was given and there is no active client.
        TypeError: ``client_or_address`` is something else.
        ValueError: ``lost_after`` is not a positive number.
    """

    stops_tasks = False
    shares_memory = False

    def __init__(
        self, client_or_address: Client | str | None = None, *, lost_after: float = LOST_AFTER
    ) -> None:
        try:
            import distributed as _distributed  # noqa: PLC0415 - optional, heavy
        except ImportError as e:
            raise ImportError(
                "the 'dask' backend needs distributed: pip install 'parkit[dask]'"
            ) from e
        # Any: parts of distributed's API are untyped (mypy --strict).
        distributed: Any = _distributed
        if not (isinstance(lost_after, int | float) and lost_after > 0):
            raise ValueError(f"lost_after must be a positive number of seconds, not {lost_after!r}")
        self._owns_client = False
        if client_or_address is None:
            try:
                client = distributed.Client.current()
            except ValueError as e:
                raise RuntimeError(
                    'backend="dask" needs an active distributed.Client: create one first '
                    '(client = distributed.Client("tcp://scheduler:8786")), or pass '
                    'backend=parkit.backends.Dask("tcp://scheduler:8786")'
                ) from e
        elif isinstance(client_or_address, distributed.Client):
            client = client_or_address
        elif isinstance(client_or_address, str):
            client = distributed.Client(client_or_address, set_as_default=False)
            self._owns_client = True
        else:
            raise TypeError(
                "Dask() takes a distributed.Client or a scheduler address, not "
                f"{type(client_or_address).__qualname__}"
            )
        self._client: Any = client
        self._killed_worker: type[BaseException] = distributed.KilledWorker
        self._lost_after = float(lost_after)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: dict[int, _Pending] = {}  # id(future) -> pending
        self._seq = itertools.count()
        self._deadlines: list[tuple[float, int, _Pending]] = []
        self._timed_waiting: collections.deque[_Pending] = collections.deque()
        self._timed_running = 0
        self._closing = False
        self._watchdog: threading.Thread | None = None
        self._name = f"parkit-dask{next(_names)}"
        self._fn_blobs: weakref.WeakKeyDictionary[Call, bytes] = weakref.WeakKeyDictionary()
        self._done = 0
        self._failed = 0
        self._crashed = 0
        self._timed_out = 0
        self._busy: dict[str, float] = {}
        self._threads_seen = (-2.0, 1)

    def __repr__(self) -> str:
        scheduler = getattr(self._client, "scheduler", None)
        return f"<parkit.backends.Dask {getattr(scheduler, 'address', '?')}>"

    # -- what the mapping layer asks -----------------------------------------

    @property
    def client(self) -> Client:
        """The ``distributed.Client`` this backend submits to."""
        client: Client = self._client
        return client

    @property
    def workers(self) -> int:
        """The cluster's threads (at least 1: a cluster still starting has none).

        Asked of the scheduler at most once a second: it is read for every timed
        batch, and a cluster can grow or shrink.
        """
        now = time.monotonic()
        asked, threads = self._threads_seen
        if now - asked > 1.0:
            threads = max(1, self._threads())
            self._threads_seen = (now, threads)
        return threads

    def _threads(self) -> int:
        """The cluster's threads, asked of the scheduler (0 if it can't say in time)."""
        if self._client.status != "running":
            return 0
        try:
            found = self._client.nthreads(callback_timeout=_ASK_TIMEOUT)
            return sum(int(n) for n in found.values())
        except Exception:
            return 0

    def submit_batch(
        self, batch: Batch, future: Future[BatchResult] | None = None
    ) -> Future[BatchResult]:
        """Start ``batch``; see :meth:`parkit.backends.Backend.submit_batch`.

        Args:
            batch: the items to run.
            future: the future to resolve, or ``None`` for a new one.

        Returns:
            The future that resolves with the batch's ``BatchResult``.

        A function or item that can't be pickled for the cluster (a
        ``SharedArray``, a parkit lock, ``Queue`` or ``Pipe`` end among them)
        is not raised: it is the item's :class:`parkit.SerializationError` in
        the result.

        Raises:
            RuntimeError: the backend was shut down.
        """
        if future is None:
            future = Future()
        if self._closing:
            raise RuntimeError("cannot schedule new work after the pool was shut down")
        pending = _Pending(batch, future)
        errors = self._pickle(pending)
        if errors is not None:
            # Every item that could not be pickled fails here; the rest run.
            if not pending.items:
                if future.set_running_or_notify_cancel():
                    self._count(errors, len(batch.items))
                    future.set_result(BatchResult(_placeholders(batch, errors), errors))
                return future
            pending.early_errors = errors
        with self._lock:
            self._pending[id(future)] = pending
            if batch.call.timeout is not None:
                if self._timed_running >= self.workers:
                    self._timed_waiting.append(pending)
                    self._ensure_watchdog()
                    return future
                self._timed_running += 1
        self._send(pending)
        return future

    def _pickle(self, pending: _Pending) -> dict[int, BaseException] | None:
        batch = pending.batch
        call = batch.call
        if call not in self._fn_blobs:
            try:
                self._fn_blobs[call] = _dumps(call.fn)
            except BaseException as e:
                err = _serialization_error(
                    f"could not pickle the function {describe_callable(call.fn)} for Dask", e
                )
                return dict.fromkeys(range(len(batch.items)), err)
        try:
            pending.items_blob = _dumps(batch.items)
            pending.items = batch.items
            pending.positions = list(range(len(batch.items)))
            return None
        except BaseException:
            pass
        errors: dict[int, BaseException] = {}
        for pos, item in enumerate(batch.items):
            try:
                _dumps(item)
            except BaseException as e:
                errors[pos] = _serialization_error(
                    f"could not pickle item {batch.start + pos}, a {type(item).__qualname__}, "
                    "for a Dask worker",
                    e,
                    item_index=batch.start + pos,
                )
                if call.stop_on_error:
                    break
                continue
            pending.items.append(item)
            pending.positions.append(pos)
        if call.stop_on_error and errors:
            first = min(errors)
            keep = [k for k, p in enumerate(pending.positions) if p < first]
            pending.items = [pending.items[k] for k in keep]
            pending.positions = [pending.positions[k] for k in keep]
        if pending.items:
            pending.items_blob = _dumps(pending.items)
        return errors

    def _send(self, pending: _Pending) -> None:
        call = pending.batch.call
        if call.timeout is not None:
            pending.deadline = time.monotonic() + call.timeout
        self._submit_task(pending)

    def _submit_task(self, pending: _Pending) -> None:
        call = pending.batch.call
        try:
            pending.dask = self._client.submit(
                run_remote_batch,
                self._fn_blobs[call],
                pending.items_blob,
                call.star,
                call.stop_on_error,
                [pending.batch.start + pos for pos in pending.positions],
                pure=False,
                key=f"parkit-{describe_callable(call.fn)}-{call.id}-{pending.batch.start}-"
                f"{os.urandom(6).hex()}",
            )
        except BaseException as e:
            with self._lock:
                self._pending.pop(id(pending.future), None)
            if pending.future.set_running_or_notify_cancel():
                pending.future.set_exception(_broken(f"could not submit to Dask ({e!r})", e))
            return
        with self._lock:
            if pending.deadline is not None:
                heapq.heappush(self._deadlines, (pending.deadline, next(self._seq), pending))
            self._ensure_watchdog()
            self._wake.notify()
        pending.dask.add_done_callback(lambda _f, p=pending: self._finished(p))

    # -- resolving -------------------------------------------------------------

    def _finished(self, pending: _Pending) -> None:
        """A Dask future is done (Dask's callback thread): resolve ours."""
        dask = pending.dask
        try:
            status = dask.status
            if status in ("lost", "pending"):
                # It finished, then the worker holding its result died before we
                # read it: the scheduler computes it again. Wait for that (the
                # watchdog bounds the wait if the cluster is gone for good).
                dask.add_done_callback(lambda _f, p=pending: self._finished(p))
                return
            if status == "finished":
                outcome = self._outcome(pending, dask.result(timeout=self._lost_after))
            elif status == "error":
                exc = dask.exception(timeout=self._lost_after)
                if isinstance(exc, self._killed_worker) and not pending.retried:
                    # The scheduler counts a death against every task assigned to
                    # the dying worker, queued ones too: a batch that only stood
                    # next to the culprit gets one more chance, as on one machine
                    # (SPEC §3); the culprit kills again and is reported.
                    pending.retried = True
                    with self._lock:
                        alive = id(pending.future) in self._pending
                    if alive:
                        self._submit_task(pending)
                    return
                if isinstance(exc, self._killed_worker):
                    outcome = self._crashed_outcome(pending, exc)
                else:
                    self._resolve_exception(
                        pending, _broken(f"the Dask task of a batch failed: {exc!r}", exc)
                    )
                    return
            else:  # cancelled: by forget/interrupt/shutdown (already resolved), or Dask
                self._resolve_exception(
                    pending,
                    _broken(f"Dask dropped the task of a batch (status {status!r})", None),
                )
                return
        except BaseException as e:
            self._resolve_exception(pending, _broken(f"could not read a Dask result: {e!r}", e))
            return
        self._resolve(pending, outcome)

    def _outcome(self, pending: _Pending, blob: bytes) -> BatchResult:
        batch = pending.batch
        call = batch.call
        n = len(batch.items)
        errors: dict[int, BaseException] = dict(pending.early_errors)
        values: list[Any] = _placeholders(batch, errors)
        try:
            sent_values, records, busy, where = pickle.loads(blob)
        except BaseException as e:
            err = _serialization_error(
                f"could not unpickle the results of items {batch.start}..{batch.start + n - 1} "
                "from a Dask worker",
                e,
                direction="result",
                stage="unpickle",
            )
            for pos in pending.positions:
                errors[pos] = err
            return BatchResult(values, errors)
        fn_name = describe_callable(call.fn)
        if -1 in records:  # the worker couldn't unpickle what was sent
            exc = _remote.rebuild(records[-1], note=f"[parkit] in {where}")
            for pos in pending.positions:
                errors[pos] = exc
            return BatchResult(values, errors)
        for k, pos in enumerate(pending.positions):
            if k < len(sent_values):
                values[pos] = sent_values[k]
            record = records.get(k)
            if record is not None:
                index = batch.start + pos
                exc = _remote.rebuild(
                    record, note=f"[parkit] raised by {fn_name} on item {index} in {where}"
                )
                if isinstance(exc, SerializationError) and exc.item_index is None:
                    exc.item_index = index
                errors[pos] = exc
                values[pos] = None
        if call.stop_on_error and errors:
            first = min(errors)
            errors = {first: errors[first]}
            values[first + 1 :] = [NOT_RUN] * (n - first - 1)
        with self._lock:
            self._busy[where] = self._busy.get(where, 0.0) + busy
        return BatchResult(values, errors, busy)

    def _crashed_outcome(self, pending: _Pending, exc: BaseException) -> BatchResult:
        from .._broken import WorkerCrashed  # noqa: PLC0415

        batch = pending.batch
        errors: dict[int, BaseException] = dict(pending.early_errors)
        fn_name = describe_callable(batch.call.fn)
        for pos in pending.positions:
            crashed = WorkerCrashed(None, None, batch.start + pos, fn_name)
            crashed.add_note(
                "[parkit] the Dask worker running its batch died, and the scheduler "
                f"gave up retrying it: {exc}"
            )
            crashed.__cause__ = exc
            errors[pos] = crashed
        with self._lock:
            self._crashed += len(pending.positions)
        return BatchResult(_placeholders(batch, errors), errors)

    def _resolve(self, pending: _Pending, outcome: BatchResult) -> None:
        with self._lock:
            if self._pending.pop(id(pending.future), None) is None:
                return  # resolved already (timed out, forgotten)
            self._release_timed(pending)
        if pending.future.set_running_or_notify_cancel():
            self._count(outcome.errors, len(outcome.values))
            pending.future.set_result(outcome)

    def _resolve_exception(self, pending: _Pending, exc: BaseException) -> None:
        with self._lock:
            if self._pending.pop(id(pending.future), None) is None:
                return
            self._release_timed(pending)
        if pending.future.set_running_or_notify_cancel():
            pending.future.set_exception(exc)

    def _release_timed(self, pending: _Pending) -> None:
        """Under the lock: a timed batch is over; hand the next one to Dask."""
        if pending.batch.call.timeout is None or pending.dask is None:
            return
        self._timed_running -= 1
        self._wake.notify()  # the watchdog sends the next waiting batch

    def _count(self, errors: dict[int, BaseException], n: int) -> None:
        with self._lock:
            self._failed += len(errors)
            self._done += n - len(errors)

    # -- the watchdog: deadlines, waiting timed batches, a lost cluster -----------

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._watch, name=f"{self._name}-watchdog", daemon=True
            )
            self._watchdog.start()

    def _watch(self) -> None:
        lost_since: float | None = None
        next_check = 0.0
        with self._lock:
            while self._pending:
                now = time.monotonic()
                self._start_waiting_timed()
                self._expire(now)
                if now >= next_check:
                    next_check = now + _CHECK_EVERY
                    if self._healthy():
                        lost_since = None
                    elif lost_since is None:
                        lost_since = now
                    elif now - lost_since >= self._lost_after:
                        self._fail_all(now - lost_since)
                        continue
                wait = next_check - now
                if self._deadlines:
                    wait = min(wait, self._deadlines[0][0] - now)
                self._wake.wait(max(wait, 0.001))
            self._watchdog = None

    def _start_waiting_timed(self) -> None:
        while self._timed_waiting and self._timed_running < self.workers:
            pending = self._timed_waiting.popleft()
            if id(pending.future) not in self._pending:
                continue
            self._timed_running += 1
            self._lock.release()
            try:
                self._send(pending)
            finally:
                self._lock.acquire()

    def _expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, pending = heapq.heappop(self._deadlines)
            if self._pending.pop(id(pending.future), None) is None:
                continue
            self._release_timed(pending)
            batch = pending.batch
            call = batch.call
            assert call.timeout is not None
            self._timed_out += 1
            err = TaskTimeout(call.timeout, batch.start, describe_callable(call.fn), stopped=False)
            values = [None] + [NOT_RUN] * (len(batch.items) - 1)
            if pending.future.set_running_or_notify_cancel():
                pending.future.set_result(BatchResult(values, {0: err}))
            # The task may keep running on its worker; its result is dropped.
            self._cancel_dask([pending])

    def _healthy(self) -> bool:
        return self._threads() > 0

    def _fail_all(self, lost_for: float) -> None:
        pendings = list(self._pending.values())
        self._pending.clear()
        self._timed_waiting.clear()
        self._timed_running = 0
        status = self._client.status
        why = (
            f"the Dask client is {status}"
            if status != "running"
            else "the Dask cluster has no workers"
        )
        err = _broken(f"{why} (for {lost_for:.1f} s); the call can't finish", None)
        for pending in pendings:
            if pending.future.set_running_or_notify_cancel():
                pending.future.set_exception(err)
        self._cancel_dask(pendings)

    def _cancel_dask(self, pendings: list[_Pending]) -> None:
        futures = [p.dask for p in pendings if p.dask is not None]
        if not futures:
            return
        # Asynchronous: called under the lock or from Dask's callback thread. The
        # tasks may run on (Dask can't stop a running one); their results are dropped.
        with contextlib.suppress(Exception):
            self._client.loop.add_callback(self._client._cancel, futures)

    # -- the protocol's other half ---------------------------------------------

    def forget(self, call: Call, after: int) -> None:
        """The caller needs no item of ``call`` past ``after``.

        Its pending batches are cancelled on the cluster.

        Args:
            call: the call concerned.
            after: the last input index the caller still needs.
        """
        self._drop(lambda p: p.batch.call is call and p.batch.start > after)

    def interrupt(self, call: Call) -> None:
        """Stop ``call``'s items: its pending tasks are cancelled.

        A Dask task that runs already finishes: it can't be stopped from here.

        Args:
            call: the call whose items to stop.
        """
        self._drop(lambda p: p.batch.call is call)

    def _drop(self, which: Any) -> list[_Pending]:
        with self._lock:
            dropped = [p for p in self._pending.values() if which(p)]
            for p in dropped:
                del self._pending[id(p.future)]
                self._release_timed(p)
        for p in dropped:
            if p.future.cancel():
                p.future.set_running_or_notify_cancel()  # counts as done for wait()
        self._cancel_dask(dropped)
        return dropped

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more batches; finish the submitted ones.

        The client is closed if this backend connected it.

        Args:
            wait: block until the backend's workers are gone.
            cancel_futures: cancel the batches that have not started.
        """
        with self._lock:
            self._closing = True
        if cancel_futures:
            self._drop(lambda p: True)
        if wait:
            for p in list(self._pending.values()):
                # Bounded: the watchdog fails what a lost cluster can't finish.
                with contextlib.suppress(BaseException):
                    p.future.exception()
            watchdog = self._watchdog
            if watchdog is not None and watchdog is not threading.current_thread():
                with self._lock:
                    self._wake.notify()
                watchdog.join()
        if self._owns_client:
            self._client.close()

    def terminate(self) -> None:
        """Cancel every pending batch; close the client if this backend connected it."""
        self._closing = True
        dropped = self._drop(lambda p: True)
        del dropped
        if self._owns_client:
            self._client.close()

    def stats(self) -> PoolStats:
        """What the backend has done so far (``busy`` per Dask worker address; no restarts).

        Returns:
            A :class:`parkit.PoolStats`.
        """
        from ._stats import PoolStats  # noqa: PLC0415

        with self._lock:
            return PoolStats(
                tasks_done=self._done,
                tasks_failed=self._failed - self._crashed,
                crashed=self._crashed,
                timed_out=self._timed_out,
                worker_restarts=0,
                busy=tuple(self._busy[k] for k in sorted(self._busy)),
            )


def _placeholders(batch: Batch, errors: dict[int, BaseException]) -> list[Any]:
    values: list[Any] = [NOT_RUN] * len(batch.items)
    for pos in errors:
        values[pos] = None
    return values


def _serialization_error(
    message: str,
    cause: BaseException,
    *,
    item_index: int | None = None,
    direction: Any = "argument",
    stage: Any = "pickle",
) -> SerializationError:
    if isinstance(cause, LocalOnlyError):
        message = f"{message}: {cause}"
    else:
        message = f"{message}: {_wire.describe_error(cause)}"
    err = SerializationError(message, direction=direction, stage=stage, item_index=item_index)
    err.__cause__ = cause
    return err


def _broken(message: str, cause: BaseException | None) -> BaseException:
    from .._broken import PoolBroken  # noqa: PLC0415

    err = PoolBroken(message)
    err.__cause__ = cause
    return err
