"""``cpus=``: CPU affinity set in the child before user code runs (issue 15, SPEC §8)."""

from __future__ import annotations

import os

import pytest

import observe_tasks
import parkit
from parkit._core import _platform

#: One CPU this test process may run on, and the CPUs the machine has.
CPU = min(os.sched_getaffinity(0))
MACHINE = os.cpu_count() or 1

#: The tests that set an affinity: not where the probe says there is none (the
#: forced-portable pass, as on macOS), where cpus= raises (the last test).
needs_affinity = pytest.mark.skipif(
    not _platform.AFFINITY, reason="no os.sched_setaffinity here (or the probe is forced)"
)


@needs_affinity
def test_process_runs_on_the_given_cpus(context: str) -> None:
    with parkit.Process(observe_tasks.affinity, context=context, cpus={CPU}) as process:
        process.start()
        assert process.result(timeout=60) == ({CPU}, None)
    assert process.exitcode == 0


@needs_affinity
def test_pool_workers_run_on_the_given_cpus_before_the_initializer(context: str) -> None:
    with parkit.Pool(
        2, context=context, cpus=[CPU], initializer=observe_tasks.remember_affinity
    ) as pool:
        assert pool.map(observe_tasks.affinity, range(4), chunksize=1) == [({CPU}, {CPU})] * 4


@needs_affinity
def test_pool_with_cpus_and_no_workers_has_one_worker_per_cpu() -> None:
    cpus = os.sched_getaffinity(0)
    with parkit.Pool(cpus=cpus, context="fork") as pool:
        assert pool.workers == len(cpus)
        assert pool.submit(observe_tasks.affinity).result(timeout=60) == (cpus, None)
    with parkit.Pool(cpus={CPU}) as pool:
        assert pool.workers == 1


@needs_affinity
def test_executor_takes_cpus(context: str) -> None:
    with parkit.ProcessPoolExecutor(mp_context=context, cpus=frozenset({CPU})) as ex:
        assert ex._max_workers == 1
        assert ex.submit(observe_tasks.affinity).result(timeout=60) == ({CPU}, None)


@pytest.mark.parametrize(
    ("cpus", "error", "message"),
    [
        (set(), ValueError, "cpus must name at least one CPU, not an empty set"),
        pytest.param(
            {-1},
            ValueError,
            f"cpus names CPUs this machine does not have: [-1] (it has CPUs 0 to {MACHINE - 1})",
            marks=needs_affinity,
        ),
        pytest.param(
            {0, MACHINE, MACHINE + 3},
            ValueError,
            f"cpus names CPUs this machine does not have: [{MACHINE}, {MACHINE + 3}] "
            f"(it has CPUs 0 to {MACHINE - 1})",
            marks=needs_affinity,
        ),
        ("0", TypeError, "cpus must be a set of CPU numbers (ints), not '0'"),
        (0, TypeError, "cpus must be a set of CPU numbers (ints), not 0"),
        ({1.0}, TypeError, "cpus must be a set of CPU numbers (ints), not {1.0}"),
        ({True}, TypeError, "cpus must be a set of CPU numbers (ints), not {True}"),
    ],
)
def test_bad_cpus_are_refused_in_the_parent(
    cpus: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        parkit.Process(observe_tasks.affinity, cpus=cpus)  # type: ignore[arg-type]
    assert str(info.value) == message
    with pytest.raises(error) as info:
        parkit.Pool(1, cpus=cpus)  # type: ignore[arg-type]
    assert str(info.value) == message
    with pytest.raises(error) as info:
        parkit.ProcessPoolExecutor(1, cpus=cpus)  # type: ignore[arg-type]
    assert str(info.value) == message


@needs_affinity
def test_cpus_is_for_the_process_backend_only() -> None:
    with pytest.raises(ValueError, match="cpus= applies") as info:
        parkit.Pool(1, backend="thread", cpus={CPU})
    assert str(info.value) == "cpus= applies to the 'process' backend only, not 'thread'"


def test_platform_without_affinity_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the probe answers on macOS and Windows (and in the forced-portable pass).
    monkeypatch.setattr(_platform, "AFFINITY", False)
    expected = f"cpus= needs os.sched_setaffinity, which Python does not offer on {_platform.NAME}"
    with pytest.raises(NotImplementedError) as info:
        parkit.Process(observe_tasks.affinity, cpus={CPU})
    assert str(info.value) == expected
    with pytest.raises(NotImplementedError) as info:
        parkit.Pool(1, cpus={CPU})
    assert str(info.value) == expected
    with pytest.raises(NotImplementedError) as info:
        parkit.ProcessPoolExecutor(1, cpus={CPU})
    assert str(info.value) == expected


def test_the_probe_decides_whether_cpus_is_offered() -> None:
    # Forced portable: no affinity, whatever this machine has; else Linux's answer.
    assert _platform.AFFINITY is (_platform.FORCED is None and hasattr(os, "sched_setaffinity"))


@needs_affinity
def test_affinity_refused_in_the_worker_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    # The parent's checks pass, but the worker's call fails (say, a cgroup took
    # the CPU away meanwhile): the pool breaks with an error naming cpus=, not
    # the initializer. Forked workers inherit the patched call.
    from parkit._core import _worker

    def refuse(cpus: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(_worker, "set_affinity", refuse)
    with (
        parkit.Pool(1, context="fork", cpus={CPU}) as pool,
        pytest.raises(parkit.PoolBroken) as info,
    ):
        pool.map(observe_tasks.affinity, [0])
    message = str(info.value)
    assert message.startswith(
        "the worker could not set its CPU affinity (cpus=): "
        "PermissionError: [Errno 1] Operation not permitted (in "
    )
    assert message.endswith("); the pool cannot run anything")
    assert type(info.value.__cause__) is PermissionError
