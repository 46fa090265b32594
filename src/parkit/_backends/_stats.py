"""``parkit.PoolStats``: what ``Pool.stats()`` returns.

In a module of its own because it is a dataclass: ``dataclasses`` imports
``inspect`` (~5 ms), which a script that starts a pool and never asks for its
statistics should not pay. It loads on the first ``stats()`` call (or
``parkit.PoolStats``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoolStats"]


@dataclass(frozen=True)
class PoolStats:
    """What a pool has done so far.

    Attributes:
        tasks_done: items that returned a value.
        tasks_failed: items that raised (their own exception, or a
            serialization error).
        crashed: items whose worker died while running them.
        timed_out: items stopped for running past their timeout.
        worker_restarts: workers started to replace one that died, timed out,
            was stopped or reached ``max_tasks_per_worker``.
        busy: seconds each worker slot spent running items, by slot.
    """

    tasks_done: int
    tasks_failed: int
    crashed: int
    timed_out: int
    worker_restarts: int
    busy: tuple[float, ...]


# Its public name: reprs and pickles say parkit.PoolStats (which parkit's module
# __getattr__ resolves), however the class was first loaded.
PoolStats.__module__ = "parkit"
