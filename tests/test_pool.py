"""parkit.Pool and the one-shot calls: API, laziness, lifecycle, nesting, stats."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from typing import Any, Literal

import psutil
import pytest

import hostile
import parkit
from conftest import METHODS
from parkit._backends._batch import Batch, BatchResult
from parkit._backends._serial import SerialBackend
from tasks import (
    ItemError,
    get_env,
    nested_pids,
    pid_after,
    pid_of,
    poly,
    set_env,
    sleep_then,
    square,
    tag,
)

BOUND_S = 10.0


def _children() -> set[int]:
    return {
        p.pid
        for p in psutil.Process().children(recursive=True)
        if p.status() != psutil.STATUS_ZOMBIE
    }


# ----------------------------------------------------------------- one-shot calls


def test_map_returns_a_list_in_input_order() -> None:
    assert parkit.map(square, range(50)) == [x * x for x in range(50)]
    assert parkit.map(square, []) == []


def test_lambdas_and_closures_travel_under_every_start_method(context: str) -> None:
    k = 3
    assert parkit.map(lambda x: x + k, [1, 2], context=context) == [4, 5]


def test_the_second_call_reuses_the_kept_pool(context: str) -> None:
    first = set(parkit.map(pid_of, range(8), context=context, workers=2))
    second = set(parkit.map(pid_of, range(8), context=context, workers=2))
    assert second <= first | second
    assert len(first | second) <= 2


def test_shutdown_releases_the_kept_pools() -> None:
    before = _children()
    parkit.map(pid_of, range(4), workers=2)
    assert len(_children() - before) >= 2
    parkit.shutdown()
    deadline = time.monotonic() + BOUND_S
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (_children() - before - _stdlib_helpers())
    assert parkit.map(square, [3]) == [9]  # the next call starts afresh


def _stdlib_helpers() -> set[int]:
    out = set()
    for p in psutil.Process().children():
        cmd = " ".join(p.cmdline())
        if "forkserver import main" in cmd or "resource_tracker import main" in cmd:
            out.add(p.pid)
    return out


def test_the_global_start_method_is_left_alone(context: str) -> None:
    before = multiprocessing.get_start_method(allow_none=True)
    parkit.map(square, range(3), context=context)
    assert multiprocessing.get_start_method(allow_none=True) == before


def test_starmap_and_imap() -> None:
    assert parkit.starmap(pow, [(2, 3), (4, 5)]) == [8, 1024]
    assert list(parkit.imap(square, range(5))) == [0, 1, 4, 9, 16]
    assert sorted(parkit.imap(square, range(5), ordered=False)) == [0, 1, 4, 9, 16]


def test_imap_unordered_yields_as_completed() -> None:
    items = [(1.0, "slow"), (0.0, "fast")]
    got = list(parkit.imap(sleep_then, items, ordered=False, workers=2, chunksize=1))
    assert got == ["fast", "slow"]


def test_errors_return_puts_exceptions_in_place() -> None:
    out = parkit.map(poly, [1, -2, 3], errors="return")
    assert out[0] == 2
    assert out[2] == 10
    assert type(out[1]) is ItemError
    assert out[1].args == (-2,)


def test_progress_callback_sees_every_item() -> None:
    seen: list[tuple[int, int | None]] = []
    parkit.map(
        square, range(20), chunksize=3, progress=lambda done, total: seen.append((done, total))
    )
    assert seen[-1] == (20, 20)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    seen.clear()
    parkit.map(square, iter(range(4)), chunksize=2, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(2, None), (4, None)]


def test_progress_true_draws_a_tqdm_bar(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tqdm.std

    # tqdm's own monitor thread would outlive the test (the leak guard).
    monkeypatch.setattr(tqdm.std.tqdm, "monitor_interval", 0)
    assert parkit.map(square, range(5), progress=True) == [0, 1, 4, 9, 16]
    assert "5/5" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunksize": 0}, "chunksize must be a positive int"),
        ({"timeout": -1}, "timeout must be a positive number"),
        ({"timeout": float("inf")}, "timeout must be a positive number"),
        ({"errors": "ignore"}, 'errors must be "raise" or "return"'),
        ({"workers": 0}, "workers must be a positive int"),
        ({"backend": "gpu"}, "backend must be one of"),
        ({"context": "nope"}, "nope"),
    ],
)
def test_bad_options_are_value_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parkit.map(square, [1], **options)


def test_a_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="chunksize must be a positive int"):
        parkit.map(square, [1], chunksize=1.5)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="fn must be callable"):
        parkit.map(3, [1])  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="progress must be"):
        parkit.map(square, [1], progress="yes")  # type: ignore[call-overload]


@pytest.mark.parametrize("name", ["ray", "processes"])
def test_an_unknown_backend_lists_the_available_ones(name: str) -> None:
    message = (
        "backend must be one of 'process', 'thread', 'serial', 'dask' or a backend object, "
        f"not {name!r}"
    )
    with pytest.raises(ValueError, match="backend must be one of") as info:
        parkit.map(square, [1], backend=name)  # type: ignore[call-overload]
    assert str(info.value) == message
    with pytest.raises(ValueError, match="backend must be one of") as info:
        parkit.Pool(1, backend=name)  # type: ignore[arg-type]
    assert str(info.value) == message


# ------------------------------------------------------------------- laziness


def test_imap_over_an_endless_generator_is_lazy_and_bounded(context: str) -> None:
    pulled = itertools.count()
    last = [0]

    def endless() -> Iterator[int]:
        for i in itertools.count():
            last[0] = next(pulled)
            yield i

    workers, chunksize = 2, 10
    with parkit.Pool(workers, context=context) as pool:
        it = pool.imap(square, endless(), chunksize=chunksize)
        t0 = time.monotonic()
        first = [next(it) for _ in range(1000)]
        assert time.monotonic() - t0 < BOUND_S
        assert first == [i * i for i in range(1000)]
        bound = 1000 + (2 * workers + 1) * chunksize
        assert last[0] < bound
        seen = last[0]
        time.sleep(0.5)  # nobody consumes: nothing more is pulled
        assert last[0] == seen
        it.close()  # type: ignore[attr-defined]
        assert pool.map(square, [2]) == [4]


def _settled(read: Callable[[], int], *, apart_s: float = 0.5, deadline_s: float = BOUND_S) -> int:
    """``read()`` once two reads ``apart_s`` apart agree; fails after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    before = read()
    while time.monotonic() < deadline:
        time.sleep(apart_s)
        now = read()
        if now == before:
            return now
        before = now
    pytest.fail(f"the count still grew after {deadline_s} s: {before}")


def test_unsized_batches_grow_with_the_results_that_came_back() -> None:
    # A fixed cap of 256 items made cheap items of a generator ~2x slower than
    # with the old 4096; the cap now follows the results: at most a quarter of
    # them per batch on one worker (window 2), up to 4096.
    sizes: list[tuple[int, int]] = []  # (results before the batch, its size)
    done = [0]

    class Recording(SerialBackend):
        def submit_batch(
            self, batch: Batch, future: Future[BatchResult] | None = None
        ) -> Future[BatchResult]:
            sizes.append((done[0], len(batch.items)))
            done[0] += len(batch.items)
            return super().submit_batch(batch, future)

    with parkit.Pool(backend=Recording()) as pool:
        it = pool.imap(abs, itertools.count())
        got = [next(it) for _ in range(50_000)]
    assert got == list(range(50_000))
    assert sizes[0] == (0, 1)
    assert max(size for _, size in sizes) == 4096
    # Never more than the first cap or a quarter of what was pulled before it
    # (the results that came back are at most that): the pull follows them.
    assert all(size <= max(256, before // 4) for before, size in sizes)


@pytest.mark.parametrize(
    ("backend", "method"),
    [("process", m) for m in METHODS] + [("thread", None)],
    ids=[f"process-{m}" for m in METHODS] + ["thread"],
)
def test_adaptive_chunks_pull_an_endless_input_only_a_bounded_way_ahead(
    backend: Literal["process", "thread"], method: str | None
) -> None:
    # Without a length the batches grew to 4096 items: 6,000 to 17,000 items were
    # pulled by the 1,000th result. Batches of an unsized input are now at most
    # 256 items, so the input runs at most a window (2 batches per worker, 1,024
    # items) ahead of the consumer: the bound leaves room to spare.
    workers, first, cap = 2, 1000, 256
    bound = first + 4 * workers * cap  # 3,048
    pulled = [0]

    def endless() -> Iterator[int]:
        for i in itertools.count():
            pulled[0] = i + 1
            yield i

    with parkit.Pool(workers, backend=backend, context=method) as pool:
        it = pool.imap(square, endless())
        got = [next(it) for _ in range(first)]
        assert got == [i * i for i in range(first)]
        assert pulled[0] <= bound
        # Nobody consumes now: the count stops growing, and stays within the bound.
        assert _settled(lambda: pulled[0]) <= bound
        it.close()  # type: ignore[attr-defined]
        assert pool.map(square, [3]) == [9]


def test_breaking_out_of_imap_drops_pending_work() -> None:
    with parkit.Pool(1) as pool:
        for value in pool.imap(sleep_then, [(0.0, 1), (0.2, 2), (0.2, 3), (0.2, 4)], chunksize=1):
            assert value == 1
            break
        t0 = time.monotonic()
        assert pool.map(square, [5]) == [25]
        assert time.monotonic() - t0 < 0.9  # not behind all the dropped items


def test_errors_raise_starts_no_new_batches_after_a_failure() -> None:
    ran: list[int] = []

    def record(x: int) -> int:
        ran.append(x)
        if x == 2:
            raise ValueError(x)
        return x

    with pytest.raises(ValueError, match="2"):
        parkit.map(record, range(100), backend="serial", chunksize=1)
    assert max(ran) <= 2 + 2  # the window holds at most 2 batches of 1 ahead


# ---------------------------------------------------------------------- Pool


def test_pool_submit_returns_a_future(context: str) -> None:
    with parkit.Pool(2, context=context) as pool:
        assert pool.submit(pow, 2, 8).result(timeout=BOUND_S) == 256
        assert pool.submit(hostile.add, 2, 3, scale=10).result(timeout=BOUND_S) == 50
        failing = pool.submit(poly, -4)
        with pytest.raises(ItemError) as info:
            failing.result(timeout=BOUND_S)
        assert info.value.args == (-4,)
        assert type(failing.exception()) is ItemError


def test_a_queued_future_can_be_cancelled() -> None:
    with parkit.Pool(1) as pool:
        busy = [pool.submit(time.sleep, 0.3) for _ in range(3)]  # fills the worker's prefetch
        last = pool.submit(square, 3)
        assert last.cancel() is True
        with pytest.raises(CancelledError):
            last.result()
        for f in busy:
            f.result(timeout=BOUND_S)


def test_shutdown_cancel_futures_cancels_what_has_not_started() -> None:
    pool = parkit.Pool(1)
    futures = [pool.submit(time.sleep, 0.2) for _ in range(6)]
    time.sleep(0.1)
    pool.shutdown(wait=True, cancel_futures=True)
    assert sum(f.cancelled() for f in futures) >= 3
    assert all(f.done() for f in futures)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.map(square, [1])


def test_leaving_the_block_by_an_exception_stops_the_workers() -> None:
    before = _children()
    futures: list[Future[None]] = []

    def leave_by_an_exception() -> None:
        with parkit.Pool(2) as pool:
            futures.append(pool.submit(hostile.sleep_forever))
            time.sleep(0.3)
            raise KeyError("leave")

    with pytest.raises(KeyError):
        leave_by_an_exception()
    (future,) = futures
    with pytest.raises(parkit.PoolBroken, match="terminated"):
        future.result(timeout=BOUND_S)
    assert not (_children() - before - _stdlib_helpers())


def test_a_normal_exit_waits_for_submitted_work() -> None:
    with parkit.Pool(1) as pool:
        future = pool.submit(pid_after, 0.3)
    assert future.done()
    assert isinstance(future.result(), int)


def test_max_tasks_per_worker_replaces_workers(context: str) -> None:
    with parkit.Pool(2, context=context, max_tasks_per_worker=2) as pool:
        pids = pool.map(pid_of, range(10), chunksize=1)
        assert len(set(pids)) >= 5
        assert all(pids.count(p) <= 2 for p in set(pids))
        assert pool.stats().worker_restarts >= 3


def test_idle_workers_exit_and_come_back() -> None:
    before = _children()
    with parkit.Pool(2, idle_timeout=0.3) as pool:
        first = set(pool.map(pid_of, range(4)))
        deadline = time.monotonic() + BOUND_S
        while first & _children() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not first & _children()
        assert not [t for t in threading.enumerate() if t.name.startswith("parkit-pool")]
        second = set(pool.map(pid_of, range(4)))
        assert not first & second
    assert not (_children() - before - _stdlib_helpers())


def test_initializer_runs_in_each_worker() -> None:
    with parkit.Pool(2, initializer=set_env, initargs=("PARKIT_T", "set")) as pool:
        assert pool.map(get_env, ["PARKIT_T"] * 4, chunksize=1) == ["set"] * 4
    assert "PARKIT_T" not in os.environ


def test_stats_count_what_happened() -> None:
    with parkit.Pool(2) as pool:
        pool.map(poly, [1, -1, 2, -2, 3], errors="return", chunksize=1)
        stats = pool.stats()
        assert (stats.tasks_done, stats.tasks_failed) == (3, 2)
        assert (stats.crashed, stats.timed_out, stats.worker_restarts) == (0, 0, 0)
        assert len(stats.busy) == 2
        assert sum(stats.busy) > 0


def test_pool_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_tasks_per_worker"):
        parkit.Pool(1, max_tasks_per_worker=0)
    with pytest.raises(ValueError, match="idle_timeout"):
        parkit.Pool(1, idle_timeout=-1)
    with pytest.raises(TypeError, match="initializer must be callable"):
        parkit.Pool(1, initializer=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="applies to the 'process' backend only"):
        parkit.Pool(1, backend="thread", initializer=print)


# ---------------------------------------------------------------------- nesting


def test_nested_map_runs_serially_inside_a_worker(context: str) -> None:
    outer, inner = parkit.map(nested_pids, [4], context=context)[0]
    assert inner == [outer] * 4  # no new processes, no daemonic-children error


def test_one_shot_map_runs_serially_in_a_daemonic_process(context: str) -> None:
    # A daemonic process may not start children: the one-shot calls run in it.
    p = parkit.Process(nested_pids, (3,), daemon=True, context=context)
    p.start()
    outer, inner = p.result(timeout=60)
    p.join(60)
    assert outer == p.pid
    assert inner == [outer] * 3


# ----------------------------------------------------------------- thread backend


def test_thread_backend_times_out_on_time_and_the_task_keeps_running() -> None:
    t0 = time.monotonic()
    out = parkit.map(time.sleep, [0.0, 1.0, 0.0], backend="thread", timeout=0.2, errors="return")
    elapsed = time.monotonic() - t0
    assert type(out[1]) is parkit.TaskTimeout
    assert out[1].item_index == 1
    assert "keeps running" in str(out[1])
    assert out[0] is None
    assert out[2] is None
    assert elapsed < 0.9
    time.sleep(1.0)  # let the abandoned sleep finish before the leak check


def test_serial_backend_reports_a_timeout_after_the_item_returns() -> None:
    out = parkit.map(time.sleep, [0.3], backend="serial", timeout=0.1, errors="return")
    assert type(out[0]) is parkit.TaskTimeout


def test_tag_helper() -> None:
    assert tag("x") == "x"


def test_calls_across_idle_exits_are_served(context: str) -> None:
    # Calls land before, during and after the I/O thread stops idle workers:
    # each is served by exactly one thread, and nothing is left afterwards.
    with parkit.Pool(2, context=context, idle_timeout=0.05) as pool:
        for i in range(12):
            assert pool.map(square, range(i, i + 3), chunksize=1) == [
                x * x for x in range(i, i + 3)
            ]
            time.sleep((i % 4) * 0.03)
        io_threads = [t for t in threading.enumerate() if t.name.startswith("parkit-pool")]
        assert len(io_threads) <= 1


def test_thread_backend_shutdown_does_not_wait_for_a_finished_items_timeout() -> None:
    # The watchdog slept until the item's deadline (here 120 s, past the test's
    # own limit) although the item was done long before.
    gate = threading.Event()
    pool = parkit.Pool(1, backend="thread", timeout=120.0)
    future = pool.submit(gate.wait, 60)
    wake: Any = pool.backend._wake  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while not wake._waiters:  # the watchdog is asleep until the deadline
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gate.set()
    assert future.result(timeout=30) is True
    started = time.monotonic()
    pool.shutdown(wait=True)
    assert time.monotonic() - started < 30
