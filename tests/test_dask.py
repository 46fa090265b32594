"""The ``"dask"`` backend against a real cluster (SPEC §9).

The session fixture ``dask_cluster`` (conftest.py) starts a scheduler and two
one-thread workers as separate processes on 127.0.0.1, from the command line,
as on a cluster; the workers can't import this file or ``tasks.py``, so every
function here reaches them by value. One test runs an in-process
``LocalCluster`` and takes its workers away.
"""

from __future__ import annotations

import functools
import itertools
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

import parkit
from parkit._backends._dask import DaskBackend
from tasks import ItemError, poly

distributed = pytest.importorskip("distributed")

#: Timeouts of tests that wait on the cluster (a loaded two-core machine).
BOUND_S = 60.0


@pytest.fixture
def dask_pool(dask_client: Any) -> Iterator[parkit.Pool]:
    """A pool on the session's cluster, through a client the test does not own."""
    pool = parkit.Pool(backend=DaskBackend(dask_client))
    yield pool
    pool.shutdown()


def test_map_equals_the_serial_loop_and_the_workers_are_the_clusters_threads(
    dask_pool: parkit.Pool,
) -> None:
    assert dask_pool.workers == 2
    assert dask_pool.map(poly, range(100)) == [poly(x) for x in range(100)]
    offset = 7
    assert dask_pool.map(lambda x: x + offset, range(5), chunksize=2) == [7, 8, 9, 10, 11]
    assert dask_pool.starmap(pow, [(2, 3), (4, 5)]) == [8, 1024]


def test_an_exception_comes_back_with_its_type_frames_and_the_workers_address(
    dask_pool: parkit.Pool,
) -> None:
    with pytest.raises(ItemError) as info:
        dask_pool.map(poly, [1, 2, -3, -4, 5])
    assert info.value.args == (-3,)
    notes = info.value.__notes__
    assert len(notes) == 1
    assert notes[0].startswith(
        "[parkit] raised by tasks.poly on item 2 in dask worker tcp://127.0.0.1:"
    )
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "poly"  # the worker's frame, from tasks.py


def test_errors_return_ordering_and_progress(dask_pool: parkit.Pool) -> None:
    seen: list[tuple[int, int | None]] = []
    got = dask_pool.map(
        poly,
        [0, -1, 2, -3],
        chunksize=1,
        errors="return",
        progress=lambda d, t: seen.append((d, t)),
    )
    assert (got[0], got[2]) == (1, 5)
    assert type(got[1]) is ItemError
    assert got[1].args == (-1,)
    assert type(got[3]) is ItemError
    assert got[3].args == (-3,)
    assert seen[-1] == (4, 4)
    assert sorted(dask_pool.imap(poly, range(20), ordered=False)) == sorted(map(poly, range(20)))


def test_an_endless_imap_pulls_a_bounded_number_of_items(dask_pool: parkit.Pool) -> None:
    pulled = 0

    def endless() -> Iterator[int]:
        nonlocal pulled
        for i in itertools.count():
            pulled = i + 1
            yield i

    results = dask_pool.imap(poly, endless())
    got = list(itertools.islice(results, 2000))
    assert got == [poly(x) for x in range(2000)]
    # The window: 2 * workers batches of at most 256 items ahead of the consumer.
    assert pulled - 2000 <= 4 * 256
    results.close()  # type: ignore[attr-defined]


def _kill_own_worker(x: int) -> int:
    if x == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def _kill_own_worker_when_told(x: int, event_name: str) -> int:
    if x == 2:
        # Kill only once the other items are done: Dask counts a worker's death
        # against every task queued on it, so an item that merely stood next to
        # the killer may be blamed too (docs/dask.md); not what this test is about.
        distributed.Event(event_name).wait(BOUND_S)
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_a_worker_that_dies_is_worker_crashed_for_the_items_of_its_batch(
    dask_pool: parkit.Pool, dask_client: Any
) -> None:
    # The item kills every worker that runs it: the scheduler retries it once
    # (allowed-failures is 1 in the fixture) and gives up: KilledWorker; parkit
    # tries the batch once more (a batch queued on a dying worker is counted as
    # a suspect too). The nannies restart the workers.
    name = f"parkit-test-kill-{os.getpid()}-{time.monotonic_ns()}"
    results = dask_pool.imap(
        functools.partial(_kill_own_worker_when_told, event_name=name),
        [0, 1, 3, 4, 2],
        chunksize=1,
        errors="return",
    )
    got = [next(results) for _ in range(4)]
    assert got == [0, 1, 3, 4]
    distributed.Event(name, client=dask_client).set()
    crashed = next(results)
    assert isinstance(crashed, parkit.WorkerCrashed)
    assert crashed.item_index == 4
    assert (crashed.pid, crashed.exitcode) == (None, None)  # as the fault matrix says
    assert type(crashed.__cause__).__name__ == "KilledWorker"
    assert list(results) == []
    backend = dask_pool.backend
    assert isinstance(backend, DaskBackend)
    crashed_before = backend.stats().crashed
    with pytest.raises(parkit.WorkerCrashed) as info:
        dask_pool.map(_kill_own_worker, [2])
    assert info.value.item_index == 0
    assert backend.stats().crashed == crashed_before + 1
    assert dask_pool.map(poly, range(4)) == [1, 2, 5, 10]  # still usable


def _wait_for_event(name: str) -> str:
    if name.startswith("parkit-test-"):
        distributed.Event(name).wait(BOUND_S)
    return name


def test_a_timeout_is_reported_on_time_and_the_task_may_keep_running(
    dask_pool: parkit.Pool, dask_client: Any
) -> None:
    name = f"parkit-test-{os.getpid()}-{time.monotonic_ns()}"
    started = time.monotonic()
    got = dask_pool.map(_wait_for_event, ["a", name, "b"], timeout=5.0, errors="return")
    elapsed = time.monotonic() - started
    distributed.Event(name, client=dask_client).set()  # let the stuck task finish
    assert (got[0], got[2]) == ("a", "b")
    assert isinstance(got[1], parkit.TaskTimeout)
    assert got[1].item_index == 1
    assert "keeps running" in str(got[1])
    assert elapsed < BOUND_S / 2
    assert dask_pool.backend.stops_tasks is False


def test_shared_memory_objects_are_refused_with_what_to_do_instead(
    dask_pool: parkit.Pool,
) -> None:
    lock = parkit.Lock()
    queue: parkit.Queue[int] = parkit.Queue()
    try:
        got = dask_pool.map(id, [1, lock, 3, queue], chunksize=4, errors="return")
        assert got[0] == id(1) or isinstance(got[0], int)
        for pos, what, instead in (
            (1, "Lock", "distributed.Lock"),
            (3, "Queue", "distributed.Queue"),
        ):
            err = got[pos]
            assert isinstance(err, parkit.SerializationError)
            assert err.item_index == pos
            assert err.direction == "argument"
            assert f"a parkit.{what} can't be sent to a Dask worker" in str(err)
            assert instead in str(err)
        with pytest.raises(parkit.SerializationError, match=r"distributed\.Lock"):
            dask_pool.map(id, [lock])
    finally:
        queue.close()
    backend = dask_pool.backend
    assert isinstance(backend, DaskBackend)
    assert backend.shares_memory is False


def _lock_at_six(x: int) -> object:
    return threading.Lock() if x == 6 else x


def test_an_unpicklable_result_names_its_input_index_not_its_place_in_the_batch(
    dask_pool: parkit.Pool,
) -> None:
    # Items 4-7 travel as one batch: the error names item 6 of the input.
    got = dask_pool.map(_lock_at_six, range(8), chunksize=4, errors="return")
    assert got[:6] == [0, 1, 2, 3, 4, 5]
    assert got[7] == 7
    err = got[6]
    assert isinstance(err, parkit.SerializationError)
    assert (err.item_index, err.direction, err.stage) == (6, "result", "pickle")
    assert "could not pickle the result of item 6, a lock, on " in str(err)


def test_backend_dask_uses_the_active_client(dask_cluster: str) -> None:
    with distributed.Client(dask_cluster) as client:
        assert distributed.Client.current() is client
        assert parkit.map(poly, range(10), backend="dask") == [poly(x) for x in range(10)]
        with parkit.Pool(backend="dask") as pool:
            assert pool.workers == 2
            assert pool.submit(poly, 3).result(timeout=BOUND_S) == 10


def test_backend_dask_without_a_client_names_the_fix() -> None:
    with pytest.raises(RuntimeError, match=r"needs an active distributed.Client"):
        parkit.map(poly, [1], backend="dask")


def test_an_address_makes_a_client_that_shutdown_closes(dask_cluster: str) -> None:
    backend = DaskBackend(dask_cluster)
    with parkit.Pool(backend=backend) as pool:
        assert pool.map(poly, [1, 2]) == [2, 5]
    assert backend.client.status == "closed"


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"a distributed\.Client or a scheduler address"):
        DaskBackend(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lost_after"):
        DaskBackend("tcp://127.0.0.1:1", lost_after=0)


def test_a_local_cluster_whose_workers_are_gone_fails_the_call_in_bounded_time() -> None:
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        backend = DaskBackend(client, lost_after=1.0)
        with parkit.Pool(backend=backend) as pool:
            assert pool.workers == 1
            assert pool.map(poly, range(10)) == [poly(x) for x in range(10)]
            cluster.scale(0)
            deadline = time.monotonic() + BOUND_S
            while client.nthreads() and time.monotonic() < deadline:
                time.sleep(0.05)
            started = time.monotonic()
            with pytest.raises(parkit.PoolBroken, match="no workers"):
                pool.map(poly, range(3))
            assert time.monotonic() - started < BOUND_S / 2
