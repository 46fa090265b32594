"""Child processes of the Q and LOCK workloads (queues, locks, semaphores, pipes).

Each child is started before the clock and waits for ``go`` (a stdlib pipe, the
same for every contender), so a figure is the steady state between two running
processes, never a process start. The objects arrive as ``Process`` arguments:
the stdlib's can travel no other way.
"""

from __future__ import annotations

from typing import Any


def producer(q: Any, go: Any, count: int, item: Any) -> None:
    """Put ``item`` ``count`` times once ``go`` says so."""
    go.send(None)  # up, with the queue
    go.recv()
    put = q.put
    for _ in range(count):
        put(item)
    # multiprocessing.Queue: the feeder thread flushes before the process exits.


def echo_pipe(end: Any, rounds: int) -> None:
    """Send back what arrives, ``rounds`` times (plus the warm-up)."""
    for _ in range(rounds):
        end.send(end.recv())


def ping_pong(ping: Any, pong: Any, go: Any, rounds: int) -> None:
    """Take ``ping``, give ``pong``: the other side of a hand-off round trip."""
    go.recv()
    acquire, release = ping.acquire, pong.release
    for _ in range(rounds):
        acquire()
        release()


def count_up(counter: Any, ready: Any, go: Any, times: int, parkit_way: bool) -> None:
    """Add 1 to ``counter`` ``times`` times, race-free, once ``go`` says so."""
    ready.send(None)
    go.recv()
    if parkit_way:
        add = counter.add
        for _ in range(times):
            add(1)
    else:
        lock = counter.get_lock()
        for _ in range(times):
            with lock:
                counter.value += 1
