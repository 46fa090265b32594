"""One figure of the PORT workload, in an interpreter of its own (``run.py`` starts it).

    python benchmarks/portable.py lock|queue parkit|multiprocessing COUNT METHOD

Prints the milliseconds that COUNT hand-offs of a lock between this process and a
child took (COUNT / 2 round trips: the parent releases one lock to the child and
takes another back), or that COUNT small items (ints) took through a queue from
one producer child to this process. The child is started and past a handshake
before the clock. With ``PARKIT_FORCE_PORTABLE=1`` in the environment parkit's
capability probe gives macOS's answers (``src/parkit/_core/_platform.py``), so
parkit runs its portable paths: ``shm_open`` segments, a ``flock`` guard, the
futex's poll fallback. ``run.py --only PORT`` runs it both ways, interleaved,
beside the stdlib's ``multiprocessing.Lock``/``Queue``.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import _hand_off, _q_transfer

import parkit


def lock_ms(library: str, count: int, method: str) -> float:
    ctx = multiprocessing.get_context(method)
    make: Callable[[], Any] = (
        (lambda: parkit.Lock(context=method)) if library == "parkit" else ctx.Lock
    )
    ping, pong = make(), make()
    ping.acquire()  # created held: each side releases what the other takes
    pong.acquire()
    rounds = count // 2
    us_per_round_trip = _hand_off(method, ping, pong, rounds + 1)
    return us_per_round_trip * rounds / 1000


def queue_ms(library: str, count: int, method: str) -> float:
    ctx = multiprocessing.get_context(method)
    q: Any = parkit.Queue(context=method) if library == "parkit" else ctx.Queue()
    items_per_s = _q_transfer(q, method, 1, count, 12345)
    q.close()
    return count / items_per_s * 1000


def main() -> None:
    kind, library, count, method = sys.argv[1:5]
    measure = {"lock": lock_ms, "queue": queue_ms}[kind]
    print(measure(library, int(count), method))


if __name__ == "__main__":
    main()
