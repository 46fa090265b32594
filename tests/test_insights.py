"""Pool(insights=True) and Pool(profile=True): the workers' own account of their time."""

from __future__ import annotations

import dataclasses
import pstats
import time

import pytest

import parkit
from tasks import SlowToPickle, SlowToUnpickle, profiled_twice, slow_phases, square

#: Each phase of slow_phases sleeps this long per item.
NAP = 0.05
#: Clock granularity and sleep() rounding: a measured phase may fall short of
#: the sleeps in it by this much per item (sleep() never returns early on
#: Linux, this only covers the arithmetic of the clocks).
SLACK = 0.002


def _calls(stats: pstats.Stats, name: str) -> int:
    """Calls of the function ``name`` defined in tests/tasks.py, in ``stats``."""
    found = [
        value[1]  # (primitive calls, total calls, tottime, cumtime, callers)
        for (filename, _, function), value in stats.stats.items()  # type: ignore[attr-defined]
        if function == name and filename.endswith("tasks.py")
    ]
    assert len(found) == 1, found
    calls: int = found[0]
    return calls


def test_phases_account_for_the_known_work(context: str) -> None:
    items = [SlowToUnpickle(NAP) for _ in range(4)]
    began = time.perf_counter()
    with parkit.Pool(2, context=context, insights=True, chunksize=1) as pool:
        results = pool.map(slow_phases, items)
    lifetime = time.perf_counter() - began  # outlives every worker of the pool
    assert [type(r) for r in results] == [SlowToPickle] * 4
    insights = pool.insights()  # after shutdown: every worker has written its last figures
    assert type(insights) is parkit.Insights
    assert len(insights.workers) == 2
    assert all(type(w) is parkit.WorkerInsights for w in insights.workers)
    assert insights.tasks == 4
    # Each phase holds at least the sleeps done in it...
    assert insights.unpickle >= 4 * (NAP - SLACK)
    assert insights.function >= 4 * (NAP - SLACK)
    assert insights.pickle >= 4 * (NAP - SLACK)
    # ...and the phases of one worker add up to no more than its life, which
    # the pool's lifetime in the parent bounds (the tolerance is the clocks').
    for w in insights.workers:
        assert w.total == pytest.approx(
            w.startup + w.idle + w.unpickle + w.function + w.pickle + w.send
        )
        assert 0.0 <= w.total <= lifetime + SLACK
        assert min(w.startup, w.idle, w.unpickle, w.function, w.pickle, w.send) >= 0.0
    assert insights.total == pytest.approx(sum(w.total for w in insights.workers))
    assert 0.0 < insights.efficiency < 1.0
    assert insights.overhead == pytest.approx(insights.unpickle + insights.pickle + insights.send)
    assert insights.overhead_ratio == pytest.approx(insights.overhead / insights.function)
    assert insights.idle_share == pytest.approx(insights.idle / insights.total)
    assert pool.stats().insights == insights
    lines = insights.summary().splitlines()
    assert len(lines) == 1 + 2 + 1 + 1  # header, workers, total, ratios
    assert lines[0].split() == [
        "startup",
        "idle",
        "unpickle",
        "function",
        "pickle",
        "send",
        "tasks",
    ]


def test_a_difference_of_readings_is_one_call() -> None:
    with parkit.Pool(2, insights=True) as pool:
        pool.map(square, range(10), chunksize=5)
        before = pool.insights()
        pool.map(slow_phases, [SlowToUnpickle(NAP)] * 3, chunksize=1)
        # Counted before its results are sent: the parent that has them sees the task.
        call = pool.insights() - before
        assert type(call) is parkit.Insights
        assert call.tasks == 3
        assert call.function >= 3 * (NAP - SLACK)
        assert call.pickle >= 3 * (NAP - SLACK)
        assert call.startup == 0.0  # the workers had started before the first reading


def test_a_replaced_worker_adds_to_its_slot(context: str) -> None:
    with parkit.Pool(1, context=context, insights=True, max_tasks_per_worker=1) as pool:
        assert pool.map(square, range(3), chunksize=1) == [0, 1, 4]
    assert pool.stats().worker_restarts == 2
    assert pool.insights().tasks == 3
    assert pool.insights().workers[0].tasks == 3


def test_insights_are_off_by_default(context: str) -> None:
    with parkit.Pool(2, context=context) as pool:
        assert pool.map(square, range(20), chunksize=2) == [x * x for x in range(20)]
        assert pool.stats().insights is None
        with pytest.raises(RuntimeError, match=r"insights=True"):
            pool.insights()
    # The workers took no counting path: every counter of every slot is still zero.
    assert pool.backend._board.counters() == [(0,) * 7] * 2  # type: ignore[attr-defined]


def test_insights_of_an_unused_pool_are_zeros() -> None:
    with parkit.Pool(3, insights=True) as pool:
        insights = pool.insights()
    zero = parkit.WorkerInsights(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    assert insights == parkit.Insights((zero,) * 3)
    assert (insights.total, insights.efficiency, insights.overhead_ratio) == (0.0, 0.0, 0.0)
    assert insights.idle_share == 0.0


def test_insights_are_frozen_and_subtract_only_alike() -> None:
    zero = parkit.WorkerInsights(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        zero.function = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="different numbers of workers"):
        parkit.Insights((zero,)) - parkit.Insights((zero, zero))


def test_profile_merges_every_worker(context: str) -> None:
    with parkit.Pool(2, context=context, profile=True, chunksize=1) as pool:
        assert pool.map(profiled_twice, range(10)) == [2] * 10
        with pytest.raises(RuntimeError, match=r"after shutdown\(\)"):
            pool.profile()
    stats = pool.profile()
    assert type(stats) is pstats.Stats
    assert _calls(stats, "profiled_twice") == 10
    assert _calls(stats, "profiled_leaf") == 20


def test_profile_keeps_what_retired_workers_wrote(context: str) -> None:
    with parkit.Pool(1, context=context, profile=True, max_tasks_per_worker=2) as pool:
        assert pool.map(profiled_twice, range(6), chunksize=1) == [2] * 6
    assert pool.stats().worker_restarts == 2
    assert _calls(pool.profile(), "profiled_leaf") == 12


def test_profile_is_off_by_default() -> None:
    with parkit.Pool(1) as pool:
        pool.map(square, range(2))
    with pytest.raises(RuntimeError, match=r"profile=True"):
        pool.profile()


def test_profile_after_terminate_has_no_workers() -> None:
    with parkit.Pool(1, profile=True) as pool:
        pool.map(square, range(2))
        pool.terminate()  # killed workers write nothing
    assert _calls_total(pool.profile()) == 0


def _calls_total(stats: pstats.Stats) -> int:
    return sum(value[1] for value in stats.stats.values())  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["thread", "serial"])
@pytest.mark.parametrize("option", ["insights", "profile"])
def test_other_backends_refuse_the_options(backend: str, option: str) -> None:
    with pytest.raises(ValueError, match=rf"{option}= applies to the 'process' backend only"):
        parkit.Pool(2, backend=backend, **{option: True})  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["thread", "serial"])
def test_other_backends_report_no_insights(backend: str) -> None:
    with parkit.Pool(2, backend=backend) as pool:  # type: ignore[arg-type]
        pool.map(square, range(3))
        assert pool.stats().insights is None
        with pytest.raises(RuntimeError, match=r"insights=True"):
            pool.insights()
        with pytest.raises(RuntimeError, match=r"profile=True"):
            pool.profile()


@pytest.mark.parametrize("option", ["insights", "profile"])
def test_the_options_are_bools(option: str) -> None:
    with pytest.raises(TypeError, match=rf"^{option} must be True or False, not 1$"):
        parkit.Pool(1, **{option: 1})  # type: ignore[arg-type]
