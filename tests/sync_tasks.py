"""Functions that the Queue and lock tests run in child processes (importable by all)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import signal
import time
from typing import Any

import parkit


def hold_then_exit(lock: Any, ready: parkit.Event, how: str) -> None:
    """Enter ``lock`` (a lock or a semaphore), signal ``ready``, then die holding it."""
    lock.__enter__()
    ready.set()
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(3)


def hold_for(lock: Any, ready: parkit.Event, seconds: float) -> int:
    """Hold ``lock`` for ``seconds`` (after setting ``ready``); return this pid."""
    with lock:
        ready.set()
        time.sleep(seconds)
    return os.getpid()


def overlap_probe(sem: parkit.Semaphore, seconds: float) -> tuple[float, float]:
    """Hold ``sem`` for ``seconds``; return when this process held it (monotonic)."""
    with sem.hold(timeout=30):
        start = time.monotonic()
        time.sleep(seconds)
        end = time.monotonic()
    return start, end


def locked_increment(lock: parkit.Lock, q: parkit.Queue[int], path: str, n: int) -> None:
    """``n`` read-modify-write cycles of the integer in file ``path``, under ``lock``."""
    for _ in range(n):
        with lock.hold(timeout=30):
            with open(path) as f:
                value = int(f.read() or 0)
            with open(path, "w") as f:
                f.write(str(value + 1))
    q.put(os.getpid())


def produce(q: parkit.Queue[Any], items: list[Any]) -> None:
    """Put every item, then return (the process exits at once)."""
    for item in items:
        q.put(item)


def consume_all(q: parkit.Queue[Any]) -> list[Any]:
    """Everything the queue yields until it is closed and drained."""
    return list(q)


def put_big_and_exit(q: parkit.Queue[bytes], nbytes: int) -> None:
    """The FAULTS F10 trigger: put an item larger than any pipe buffer, then exit."""
    q.put(b"x" * nbytes)


def die_mid_put(q: parkit.Queue[bytes]) -> None:
    """Die half-way through writing a frame: inside the guard, TAIL not yet moved."""
    segment = q._segment
    segment.lock()
    words = segment.words
    # The data area: its generation (word 16) at its current capacity (word 12).
    area = segment.data(int(words[16]), int(words[12]))
    assert area is not None
    tail = int(words[9])
    area[tail : tail + 16] = (1 << 40).to_bytes(8, "little") + b"partial!"
    os.kill(os.getpid(), signal.SIGKILL)


def wait_event(ev: parkit.Event, timeout: float) -> bool:
    return ev.wait(timeout)


def set_event_after(ev: parkit.Event, seconds: float) -> None:
    time.sleep(seconds)
    ev.set()


def barrier_party(barrier: parkit.Barrier, timeout: float) -> int:
    return barrier.wait(timeout)


def condition_consumer(cond: parkit.Condition, q: parkit.Queue[str], path: str) -> bool:
    """Wait (under ``cond``) until file ``path`` exists, then report on ``q``."""
    with cond:
        q.put("waiting")
        ok = cond.wait_for(lambda: os.path.exists(path), timeout=20)
    q.put("done")
    return bool(ok)


def pool_task_with_lock(args: tuple[parkit.Lock, parkit.Semaphore, parkit.Event, int]) -> int:
    lock, sem, event, x = args
    assert event.wait(10)
    with sem.hold(timeout=10), lock.hold(timeout=10):
        return x * x


def pool_task_with_rlock(args: tuple[parkit.RLock, parkit.Semaphore, int]) -> int:
    rlock, sem, x = args
    assert sem.acquire(timeout=10)
    try:
        with rlock, rlock:  # re-entrant in the worker too
            return x + 1
    finally:
        sem.release()


def pool_task_put(args: tuple[parkit.Queue[int], int]) -> int:
    q, x = args
    q.put(x)
    return x


def guard_is_free(q: parkit.Queue[Any]) -> bool:
    """Whether this process could take the queue's guard at once."""
    segment = q._segment
    if not segment.try_lock():
        return False
    segment.unlock()
    return True


def echo(q_in: parkit.Queue[Any], q_out: parkit.Queue[Any]) -> int:
    """Put back every item taken, until ``q_in`` is closed; return how many."""
    n = 0
    for item in q_in:
        q_out.put(item)
        n += 1
    return n


def take_units(sem: parkit.Semaphore, n: int) -> None:
    """Take ``n`` units with bare acquire() calls and exit normally (a producer)."""
    for _ in range(n):
        sem.acquire()


def block_in_get(q: parkit.Queue[Any], ready: parkit.Event) -> None:
    """Signal ``ready``, then wait for ever in ``get`` (to be killed there)."""
    ready.set()
    q.get()


# Objects a child keeps until it exits (a module global, as a script's would be).
kept: list[Any] = []


def keep_a_lock_and_a_shared_array() -> list[str]:
    """Make two objects this child owns, keep them to the end; their paths."""
    import numpy as np

    lock = parkit.Lock()
    array = parkit.SharedArray.copy_of(np.arange(3))
    kept.extend([lock, array])
    return [f"/dev/shm/{lock._segment.name}", f"/dev/shm/{array.name}"]


def use_everything(
    lock: parkit.Lock,
    event: parkit.Event,
    q: parkit.Queue[str],
    array: Any,
    conn: parkit.Connection[str],
) -> str:
    """Use one object of each kind: made for another start method than this child's."""
    with lock.hold(timeout=10):
        array[0] = 42
    q.put("queued")
    conn.send("piped")
    event.set()
    return f"{lock.start_method} {event.start_method} {q.start_method}"


def record_wakes(obj: Any) -> list[bool]:
    """Wrap ``obj``'s wake-up call (a lock's or a queue's): each call records
    whether the object's guard was held at that moment."""
    segment = obj._segment
    real_wake = segment._wake
    held: list[bool] = []

    def wake() -> None:
        held.append(segment._thread_lock.locked())
        real_wake()

    segment._wake = wake
    return held


def die_in_the_guard(lock: parkit.Lock) -> None:
    """Die holding a lock's internal guard (not the lock): half-way through a change."""
    lock._segment.lock()
    os.kill(os.getpid(), signal.SIGKILL)


def hand_back(ping: parkit.Semaphore, pong: parkit.Semaphore, rounds: int) -> None:
    """The other side of a hand-off: take ``ping``, give ``pong``, ``rounds`` times."""
    for _ in range(rounds):
        if not ping.acquire(timeout=30):
            return
        pong.release()


def make_objects_and_wait(paths: parkit.Queue[str], how: str) -> None:
    """Make an Event and a Value this child owns, send their paths, then end ``how``.

    ``"wait"``: until stopped (``terminate()``, ``kill()``, the stop of a daemon at
    exit, the parent's death); ``"os._exit"``: at once, skipping the exit hooks.
    """
    event, value = parkit.Event(), parkit.Value(int, 1)
    kept.extend([event, value])
    paths.put(f"/dev/shm/{event._segment.name}")
    paths.put(f"/dev/shm/{value._name}")
    if how == "os._exit":
        os._exit(3)
    while True:
        time.sleep(60)


def parent_gone_with_a_high_sentinel() -> bool:
    """What ``_worker.parent_gone`` says (its parent alive) when the sentinel's
    number is above 1023, as it is where the parent had that many files open."""
    from parkit._core import _worker

    parent = multiprocessing.parent_process()
    assert parent is not None
    high = os.dup2(parent.sentinel, 1500)
    parent._sentinel = high  # type: ignore[attr-defined]
    return _worker.parent_gone()


def make_objects_return_and_exit() -> list[str]:
    """Make an Event and a Value this child owns and return their paths; then
    leave by ``os._exit(0)`` from multiprocessing's exit function, before the
    hook that would remove them: the result arrives, the exit code is 0, and
    nothing of this process removes them."""
    event, value = parkit.Event(), parkit.Value(int, 1)
    kept.extend([event, value])
    multiprocessing.util.Finalize(None, os._exit, (0,), exitpriority=0)
    return [f"/dev/shm/{event._segment.name}", f"/dev/shm/{value._name}"]


def make_segments_and_die(conn: Any) -> None:
    """Make a lock and a queue whose data area grew, send their segments' names,
    and die by SIGKILL: nothing of this process removes them."""
    from parkit._sync import _segment

    lock = parkit.Lock()
    q = parkit.Queue[bytes]()
    q.put(b"x" * (1 << 20))  # the data area grows: a segment of its own, replaced
    segment = q._segment
    data = _segment._data_names(segment.name)[segment.data_gen & 1]
    conn.send([lock._segment.name, segment.name, data])
    conn.close()
    os.kill(os.getpid(), signal.SIGKILL)
