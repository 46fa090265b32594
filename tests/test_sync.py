"""Locks, semaphores, conditions, events and barriers across processes (SPEC §5)."""

from __future__ import annotations

import errno
import os
import pickle
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import parkit
import sync_tasks as st
from parkit._core._cpus import allowed_cpus
from parkit._sync import _base, _mutex

#: parkit, typed loosely: for calls with arguments of the wrong type.
_pk: Any = parkit

# Timeouts are checked to within this many seconds of their value (issue #5: ±0.5 s).
SLACK = 0.5


def _elapsed(start: float) -> float:
    return time.monotonic() - start


# ----------------------------------------------------------------- abandoned holders


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_lock_whose_holder_died_is_reported_to_the_next_acquirer(context: str, how: str) -> None:
    lock, ready = parkit.Lock(), parkit.Event()
    p = parkit.Process(st.hold_then_exit, (lock, ready, how), context=context)
    p.start()
    p.join(10)
    assert ready.is_set()
    start = time.monotonic()
    with pytest.raises(parkit.LockAbandoned) as info:
        lock.acquire(timeout=2)
    assert _elapsed(start) < 1.0
    assert info.value.holder_pid == p.pid
    assert f"pid {p.pid}" in str(info.value)
    assert "died while holding it" in str(info.value)
    # The dead holder's hold is gone: the lock works again.
    assert lock.acquire(timeout=1) is True
    stats = lock.statistics()
    assert (stats.holder_pid, stats.abandoned, stats.depth) == (os.getpid(), 1, 1)
    lock.release()


def test_a_waiter_finds_a_holder_that_dies_while_it_waits(context: str) -> None:
    lock, ready = parkit.Lock(), parkit.Event()
    p = parkit.Process(st.hold_for, (lock, ready, 30.0), context=context)
    p.start()
    try:
        assert ready.wait(10)
        killer = threading.Timer(0.5, p.kill)
        killer.start()
        start = time.monotonic()
        with pytest.raises(parkit.LockAbandoned) as info:
            lock.acquire()  # no timeout: the death ends the wait
        assert 0.4 < _elapsed(start) < 0.5 + 2.0
        assert info.value.holder_pid == p.pid
        killer.join()
    finally:
        p.kill()
        p.join(10)


def test_recover_policy_takes_over_silently(context: str) -> None:
    lock, ready = parkit.RLock(abandoned="recover"), parkit.Event()
    p = parkit.Process(st.hold_then_exit, (lock, ready, "kill"), context=context)
    p.start()
    p.join(10)
    with lock.hold(timeout=2):
        assert lock.statistics().holder_pid == os.getpid()
    assert lock.statistics().abandoned == 1


def test_a_semaphore_gets_back_the_units_of_a_dead_holder(context: str) -> None:
    sem, ready = parkit.BoundedSemaphore(1), parkit.Event()
    p = parkit.Process(st.hold_then_exit, (sem, ready, "kill"), context=context)
    p.start()
    p.join(10)
    assert sem.get_value() == 0
    assert sem.statistics().holder_pids == (p.pid,)
    with pytest.raises(parkit.LockAbandoned) as info:
        sem.acquire(timeout=2)
    assert info.value.holder_pid == p.pid
    assert sem.get_value() == 1
    with sem.hold(timeout=1):
        assert sem.statistics().holder_pids == (os.getpid(),)
    assert sem.statistics().abandoned == 1


# ------------------------------------------------------------------------- timeouts


@pytest.mark.parametrize("timeout", [0.3, 1.2])
def test_lock_timeout_names_the_holder_within_its_bound(context: str, timeout: float) -> None:
    lock, ready = parkit.Lock(timeout=timeout), parkit.Event()
    p = parkit.Process(st.hold_for, (lock, ready, timeout + 2.0), context=context)
    p.start()
    try:
        assert ready.wait(10)
        start = time.monotonic()
        with pytest.raises(parkit.LockTimeout) as info, lock:
            pass
        took = _elapsed(start)
        assert timeout - 0.01 <= took <= timeout + SLACK
        err = info.value
        assert isinstance(err, TimeoutError)
        assert (err.holder_pid, err.holder_alive, err.timeout) == (p.pid, True, timeout)
        assert err.held_for is not None
        assert err.held_for >= timeout - 0.01
        assert f"held by pid {p.pid} (alive)" in str(err)
        # acquire() keeps the stdlib bool.
        start = time.monotonic()
        assert lock.acquire(timeout=0.2) is False
        assert 0.19 <= _elapsed(start) <= 0.2 + SLACK
        assert lock.acquire(block=False) is False
        assert p.result(timeout=20) == p.pid
    finally:
        p.join(20)


def test_hold_overrides_the_default_timeout() -> None:
    lock = parkit.Lock(timeout=30)
    lock.acquire()
    start = time.monotonic()
    with (
        pytest.raises(parkit.LockTimeout, match=r"this same thread.*not re-entrant"),
        lock.hold(timeout=0.2),
    ):
        pass
    assert _elapsed(start) < 0.2 + SLACK
    lock.release()
    with lock.hold(timeout=0.2):
        assert lock.locked()
    assert not lock.locked()


def test_semaphore_timeout_names_the_holders() -> None:
    sem = parkit.Semaphore(2, timeout=0.2)
    with sem.hold(), sem.hold():
        start = time.monotonic()
        with pytest.raises(parkit.LockTimeout) as info, sem:
            pass
        assert _elapsed(start) < 0.2 + SLACK
        assert (info.value.holder_pid, info.value.holder_alive) == (os.getpid(), True)
        assert f"held by pid {os.getpid()}, {os.getpid()}" in str(info.value)
    assert sem.get_value() == 2
    assert sem.statistics().holder_pids == ()
    # Units taken by bare acquire() record no holder; the message says so.
    sem.acquire()
    sem.acquire()
    with pytest.raises(parkit.LockTimeout, match="record no holder") as info, sem:
        pass
    assert info.value.holder_pid is None
    sem.release(2)


# ------------------------------------------------------------- enforced across processes


def test_a_lock_serializes_read_modify_write_across_processes(context: str, tmp_path: Path) -> None:
    lock, done = parkit.Lock(), parkit.Queue[int]()
    path = tmp_path / "counter"
    path.write_text("0")
    procs = [
        parkit.Process(st.locked_increment, (lock, done, str(path), 50), context=context)
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(done.get(timeout=5) for _ in procs) == sorted(p.pid or 0 for p in procs)
    assert path.read_text() == "150"
    assert lock.statistics().acquisitions == 150


def test_a_semaphore_limit_is_enforced_across_processes(context: str) -> None:
    # The tutorial's module-level Semaphore(3) enforces nothing under spawn; a
    # parkit.Semaphore handed to each process does, under every start method.
    sem = parkit.Semaphore(2)
    procs = [parkit.Process(st.overlap_probe, (sem, 0.3), context=context) for _ in range(5)]
    for p in procs:
        p.start()
    spans = [p.result(timeout=60) for p in procs]
    for p in procs:
        p.join(10)
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    inside = most = 0
    for _, step in events:
        inside += step
        most = max(most, inside)
    assert most == 2
    assert sem.get_value() == 2


def test_event_across_processes(context: str) -> None:
    ev = parkit.Event()
    waiter = parkit.Process(st.wait_event, (ev, 20.0), context=context)
    setter = parkit.Process(st.set_event_after, (ev, 0.3), context=context)
    waiter.start()
    setter.start()
    assert waiter.result(timeout=30) is True
    setter.join(10)
    waiter.join(10)
    assert ev.is_set()
    ev.clear()
    start = time.monotonic()
    assert ev.wait(0.3) is False
    assert 0.29 <= _elapsed(start) <= 0.3 + SLACK


def test_barrier_across_processes(context: str) -> None:
    barrier = parkit.Barrier(3)
    procs = [parkit.Process(st.barrier_party, (barrier, 20.0), context=context) for _ in range(2)]
    for p in procs:
        p.start()
    mine = barrier.wait(20)
    indexes = sorted([mine] + [p.result(timeout=30) for p in procs])
    for p in procs:
        p.join(10)
    assert indexes == [0, 1, 2]
    assert (barrier.n_waiting, barrier.broken) == (0, False)


def test_a_barrier_timeout_breaks_it_and_says_who_came() -> None:
    barrier = parkit.Barrier(3, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(threading.BrokenBarrierError, match=rf"1 of 3 parties.*{os.getpid()}"):
        barrier.wait()
    assert 0.29 <= _elapsed(start) <= 0.3 + SLACK
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.1)
    barrier.reset()
    assert not barrier.broken


def test_barrier_action_runs_once_and_abort_breaks() -> None:
    ran: list[int] = []
    barrier = parkit.Barrier(2, action=lambda: ran.append(1))
    results: list[int] = []
    t = threading.Thread(target=lambda: results.append(barrier.wait(10)))
    t.start()
    results.append(barrier.wait(10))
    t.join()
    assert (sorted(results), ran) == ([0, 1], [1])
    barrier.abort()
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(1)


def test_condition_across_processes(context: str, tmp_path: Path) -> None:
    cond, q = parkit.Condition(), parkit.Queue[str]()
    path = tmp_path / "ready"
    p = parkit.Process(st.condition_consumer, (cond, q, str(path)), context=context)
    p.start()
    assert q.get(timeout=20) == "waiting"
    with cond.hold(timeout=10):
        path.touch()
        cond.notify_all()
    assert q.get(timeout=20) == "done"
    assert p.result(timeout=20) is True
    p.join(10)


def test_condition_wait_times_out_and_notify_needs_the_lock() -> None:
    cond = parkit.Condition(parkit.Lock())
    with pytest.raises(RuntimeError, match="un-acquired"):
        cond.notify()
    with pytest.raises(RuntimeError, match="un-acquired"):
        cond.wait(0.1)
    with cond:
        start = time.monotonic()
        assert cond.wait(0.3) is False
        assert 0.29 <= _elapsed(start) <= 0.3 + SLACK
        assert cond.statistics().lock_holder_pid == os.getpid()
    assert cond.statistics().waiting_pids == ()


def test_condition_notify_wakes_threads_oldest_first() -> None:
    cond = parkit.Condition()
    woken: list[int] = []

    def waiter(k: int) -> None:
        with cond:
            assert cond.wait(10)
            woken.append(k)

    threads = []
    for k in range(3):
        t = threading.Thread(target=waiter, args=(k,))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 5
        while len(cond.statistics().waiting_pids) < k + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    with cond:
        cond.notify(2)
    for t in threads[:2]:
        t.join(5)
    assert sorted(woken) == [0, 1]
    with cond:
        cond.notify_all()
    threads[2].join(5)
    assert woken[-1] == 2


def test_one_waiter_too_many_is_a_parkit_error() -> None:
    cond = parkit.Condition()
    limit = 96
    woken: list[bool] = []

    def waiter() -> None:
        with cond:
            woken.append(cond.wait(60))

    threads = [threading.Thread(target=waiter) for _ in range(limit)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while len(cond.statistics().waiting_pids) < limit and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(cond.statistics().waiting_pids) == limit
        with cond:
            with pytest.raises(parkit.TooManyWaiters) as info:
                cond.wait(1)
            assert isinstance(info.value, RuntimeError)
            assert info.value.limit == limit
            assert str(info.value).startswith("96 threads already wait on this Condition")
            # Nothing changed: the caller still holds the lock.
            assert cond.statistics().lock_holder_pid == os.getpid()
    finally:
        with cond:
            cond.notify_all()
        for t in threads:
            t.join(10)
    assert woken == [True] * limit


# ------------------------------------------------------------- stdlib semantics


def test_rlock_is_reentrant_and_only_its_holder_releases_it() -> None:
    lock = parkit.RLock()
    with lock, lock:
        assert lock.statistics().depth == 2
        errors: list[BaseException] = []

        def other() -> None:
            try:
                lock.release()
            except RuntimeError as e:
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(errors) == 1
    assert lock.statistics().locked is False
    with pytest.raises(RuntimeError):
        lock.release()


def test_lock_release_when_unlocked_and_bounded_semaphore_overflow() -> None:
    with pytest.raises(ValueError, match="unlocked"):
        parkit.Lock().release()
    sem = parkit.BoundedSemaphore(1)
    with pytest.raises(ValueError, match="too many"):
        sem.release()
    plain = parkit.Semaphore(0)
    plain.release(3)
    assert plain.get_value() == 3
    assert plain.statistics().holder_pids == ()
    # The count is a 64-bit word: a release past it is refused whole.
    with pytest.raises(ValueError, match=r"release\(9223372036854775805\) would take its count"):
        plain.release(2**63 - 3)
    assert plain.get_value() == 3
    plain.release(2**63 - 4)
    assert plain.get_value() == 2**63 - 1
    with pytest.raises(ValueError, match="past the most a shared counter holds"):
        plain.release()


def test_a_semaphore_used_as_a_signal_has_no_holders_to_abandon() -> None:
    sem = parkit.Semaphore(0)
    sem.release()
    assert sem.acquire(timeout=1)
    assert sem.statistics().holder_pids == ()


def test_bare_acquires_by_a_process_that_exits_are_not_abandoned(context: str) -> None:
    # A bounded buffer: producers acquire "spaces", the consumer releases them.
    # A producer that took units and exited normally is no dead holder.
    spaces = parkit.BoundedSemaphore(2)
    p = parkit.Process(st.take_units, (spaces, 2), context=context)
    p.start()
    p.join(20)
    assert (spaces.get_value(), spaces.statistics().holder_pids) == (0, ())
    assert spaces.acquire(timeout=0.3) is False  # no LockAbandoned
    spaces.release(2)  # the consumer frees both spaces
    assert spaces.get_value() == 2
    with pytest.raises(ValueError, match="too many"):
        spaces.release()


def test_acquire_minus_one_means_no_limit_as_in_the_stdlib() -> None:
    lock = parkit.Lock()
    assert lock.acquire(timeout=-1) is True
    lock.release()
    with pytest.raises(ValueError, match="timeout"):
        lock.acquire(timeout=-2)


def test_a_set_then_clear_pulse_wakes_a_waiter() -> None:
    ev = parkit.Event()

    def pulse() -> None:
        ev.set()
        ev.clear()

    threading.Timer(0.2, pulse).start()
    start = time.monotonic()
    assert ev.wait(5) is True
    assert _elapsed(start) < 0.2 + SLACK


@pytest.mark.parametrize("action", [None, lambda: time.sleep(0.3)])
def test_a_barrier_lets_no_extra_party_through_a_finishing_generation(action: Any) -> None:
    # Four parties on a Barrier(2): two generations, each party released with a
    # partner of its own generation (threading gives [0, 0, 1, 1]). A party that
    # arrives while the last one runs the action waits for the next generation.
    barrier = parkit.Barrier(2, action=action)
    indexes: list[int] = []
    lock = threading.Lock()

    def party() -> None:
        index = barrier.wait(20)
        with lock:
            indexes.append(index)

    for _ in range(3):
        threads = [threading.Thread(target=party) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sorted(indexes) == [0] * 6 + [1] * 6


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: parkit.Lock(timeout=-1), ValueError, "timeout must be None or a number"),
        (lambda: _pk.Lock(timeout="1"), TypeError, "timeout must be None or a number"),
        (lambda: _pk.Lock(abandoned="ignore"), ValueError, "abandoned must be"),
        (lambda: parkit.Semaphore(-1), ValueError, "value must be an int >= 0, not -1"),
        (lambda: _pk.Semaphore(1.5), TypeError, "value must be an int"),
        (lambda: parkit.Barrier(0), ValueError, "parties must be a positive int, not 0"),
        (lambda: _pk.Barrier(2, action=3), TypeError, "action must be callable"),
        (lambda: _pk.Condition(threading.Lock()), TypeError, "parkit.Lock or parkit.RLock"),
        (lambda: parkit.Lock().acquire(timeout=float("nan")), ValueError, "timeout"),
    ],
)
def test_bad_arguments_say_what_is_allowed(make: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()  # type: ignore[operator]


# ------------------------------------------------------------- passing them around


def test_sync_objects_pass_to_pool_tasks(context: str) -> None:
    lock, sem, ev = parkit.Lock(), parkit.BoundedSemaphore(2), parkit.Event()
    ev.set()
    with parkit.Pool(2, context=context) as pool:
        out = pool.map(st.pool_task_with_lock, [(lock, sem, ev, x) for x in range(6)])
    assert out == [x * x for x in range(6)]
    assert lock.statistics().acquisitions == 6
    assert sem.get_value() == 2
    rlock, plain = parkit.RLock(), parkit.Semaphore(1)
    args = [(rlock, plain, x) for x in range(4)]
    assert parkit.map(st.pool_task_with_rlock, args, context=context) == [1, 2, 3, 4]
    assert (rlock.statistics().acquisitions, plain.get_value()) == (8, 1)


def test_stdlib_locks_as_pool_arguments_name_the_parkit_alternative() -> None:
    import multiprocessing

    with pytest.raises(parkit.SerializationError, match=r"parkit\.Lock, RLock"):
        _pk.map(st.pool_task_with_lock, [(multiprocessing.Lock(), None, None, 1)])


def test_a_handle_pickles_small_and_names_the_same_object() -> None:
    for obj in (parkit.Lock(), parkit.RLock(), parkit.Semaphore(2), parkit.Event()):
        data = pickle.dumps(obj)
        assert len(data) < 400
        copy = pickle.loads(data)
        assert copy._segment is obj._segment  # one view per process
        assert repr(copy).startswith(f"<parkit.{type(obj).__name__} ")


def test_the_owner_removes_the_segment_and_late_copies_say_why() -> None:
    lock = parkit.Lock()
    name = lock._segment.name
    data = pickle.dumps(lock)
    assert os.path.exists(f"/dev/shm/{name}")
    assert os.stat(f"/dev/shm/{name}").st_mode & 0o777 == 0o600
    del lock
    assert not os.path.exists(f"/dev/shm/{name}")
    with pytest.raises(FileNotFoundError, match="keep it alive"):
        pickle.loads(data)


def test_a_waiter_checks_holders_at_the_documented_interval() -> None:
    assert _base.CHECK_INTERVAL == 0.2


def test_a_fork_child_closing_an_inherited_owner_handle_removes_nothing() -> None:
    lock = parkit.Lock()
    queue = parkit.Queue[int]()
    names = [lock._segment.name, queue._segment.name]

    def close_both() -> None:
        lock._segment.close()
        queue._segment.close()

    parkit.run(close_both, context="fork")
    assert all(os.path.exists(f"/dev/shm/{n}") for n in names)
    queue.put(1)
    assert queue.get(timeout=1) == 1


# ------------------------------------------------------- the cost of waking (issue #12)


def test_a_release_nobody_waits_for_makes_no_wake_up_call() -> None:
    lock, sem = parkit.Lock(), parkit.Semaphore(1)
    lock_wakes, sem_wakes = st.record_wakes(lock), st.record_wakes(sem)
    for _ in range(3):
        assert lock.acquire(timeout=1) is True
        lock.release()
        with sem:
            pass
        sem.release()
        assert sem.acquire(timeout=1) is True
    assert (lock_wakes, sem_wakes) == ([], [])


def test_a_waiter_is_woken_after_the_guard_is_left() -> None:
    # Woken inside the guard, the waiter would go straight back to sleep on the
    # guard itself and need a second wake-up (issue #12: the hand-off cost).
    lock = parkit.Lock()
    wakes = st.record_wakes(lock)
    assert lock.acquire(timeout=1) is True
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(lock.acquire(timeout=20)))
    waiter.start()
    deadline = time.monotonic() + 20
    while lock.statistics().waiters == 0:
        assert time.monotonic() < deadline, "the waiter never started waiting"
        time.sleep(0.001)
    lock.release()
    waiter.join(20)
    assert got == [True]
    assert wakes == [False]
    lock.release()


@pytest.mark.parametrize("kind", ["lock", "semaphore"])
def test_a_dead_holder_is_reported_even_with_a_timeout_under_a_millisecond(
    context: str, kind: str
) -> None:
    # A wait looks for dead holders a millisecond in, and on its last try: a
    # timeout shorter than that still reports the death, not a LockTimeout.
    obj: Any = parkit.Lock() if kind == "lock" else parkit.Semaphore(1)
    ready = parkit.Event()
    p = parkit.Process(st.hold_then_exit, (obj, ready, "kill"), context=context)
    p.start()
    p.join(10)
    assert ready.is_set()
    with pytest.raises(parkit.LockAbandoned) as info:
        obj.acquire(timeout=0.0002)
    assert info.value.holder_pid == p.pid


def test_semaphore_holders_are_found_whatever_order_they_release_in() -> None:
    sem = parkit.Semaphore(4)
    entered, leave = threading.Barrier(4), [threading.Event() for _ in range(3)]

    def hold(k: int) -> None:
        with sem:
            entered.wait(10)
            assert leave[k].wait(10)

    threads = [threading.Thread(target=hold, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    entered.wait(10)
    assert sem.statistics().holder_pids == (os.getpid(),) * 3
    leave[1].set()  # the middle one first
    threads[1].join(10)
    assert (sem.statistics().holder_pids, sem.get_value()) == ((os.getpid(),) * 2, 2)
    leave[0].set()
    leave[2].set()
    for t in threads:
        t.join(10)
    stats = sem.statistics()
    assert (stats.holder_pids, stats.value) == ((), 4)


def test_a_process_killed_inside_the_guard_does_not_wedge_the_lock(context: str) -> None:
    # The guard between processes is a robust mutex (a flock where there is
    # none): the next process to take it gets it, though its holder died there.
    lock = parkit.Lock()
    p = parkit.Process(st.die_in_the_guard, (lock,), context=context)
    p.start()
    p.join(30)
    assert p.exitcode == -9
    assert lock.acquire(timeout=5) is True
    assert lock.locked() is True
    lock.release()
    assert lock.statistics().acquisitions == 1


def test_a_hand_off_between_processes_keeps_every_unit(context: str) -> None:
    # Both sides watch before they sleep (SPIN_S): whichever way each wait
    # ends, no release is lost and no waiter stays counted.
    ping, pong = parkit.Semaphore(0), parkit.Semaphore(0)
    p = parkit.Process(st.hand_back, (ping, pong, 200), context=context)
    p.start()
    for _ in range(200):
        ping.release()
        assert pong.acquire(timeout=30) is True
    p.join(30)
    assert p.exitcode == 0
    for sem in (ping, pong):
        stats = sem.statistics()
        assert (stats.value, stats.waiters, stats.acquisitions) == (0, 0, 200)


def test_a_waiter_spins_only_where_another_cpu_can_run_the_changer() -> None:
    expected = 50e-6 if allowed_cpus() > 1 else 0.0
    spin = _base.SPIN_S
    assert spin == expected


@pytest.mark.skipif(not _mutex.AVAILABLE, reason="no robust mutexes here: the guard is a flock")
@pytest.mark.parametrize("spins", [0, 200])
def test_a_held_guard_is_tried_again_before_sleeping_on_it(
    monkeypatch: pytest.MonkeyPatch, spins: int
) -> None:
    # The guard is held for a microsecond or two: where another CPU runs its
    # holder, a locker tries again (SPINS times) before it sleeps in the kernel.
    default = 200 if allowed_cpus() > 1 else 0
    assert default == _mutex.SPINS
    monkeypatch.setattr(_mutex, "SPINS", spins)
    mutex = parkit.Lock()._segment._mutex
    assert mutex is not None
    tries: list[int] = []
    sleeps: list[object] = []
    busy = [errno.EBUSY] * 3 + [0]  # the holder leaves on the fourth try

    def try_lock(pointer: object) -> int:
        tries.append(1)
        return busy.pop(0)

    def sleep_on(pointer: object) -> int:
        sleeps.append(pointer)
        return 0

    real = mutex.try_lock, mutex._lock
    mutex.try_lock, mutex._lock = try_lock, sleep_on
    code = mutex.try_lock(mutex.pointer)
    mutex.lock_slow(code)
    mutex.try_lock, mutex._lock = real
    if spins:
        assert (len(tries), sleeps) == (4, [])
    else:
        assert (len(tries), sleeps) == (1, [mutex.pointer])
