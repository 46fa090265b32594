"""``parkit.PoolStats``: what ``Pool.stats()`` returns; ``parkit.Insights`` in it.

In a module of its own because it is a dataclass: ``dataclasses`` imports
``inspect`` (~5 ms), which a script that starts a pool and never asks for its
statistics should not pay. It loads on the first ``stats()`` call (or
``parkit.PoolStats``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Insights", "PoolStats", "WorkerInsights"]


@dataclass(frozen=True)
class WorkerInsights:
    """How one worker slot's time split, in seconds, from its workers' own clocks.

    The phases cut the worker's life at their boundaries, so they add up to
    the time from the start of its loop to the end of its last task (or its
    last wait for one). A slot whose worker was replaced adds the
    replacements' time.

    Attributes:
        startup: from the start of the worker's loop until it was ready
            (the pool's ``initializer`` included; the interpreter's start and
            imports before it are not).
        idle: waiting for work (the pipe was empty).
        unpickle: loading the function (once per call) and the items'
            arguments.
        function: running the user's function over the items.
        pickle: pickling the results.
        send: writing the results to the parent (waits when the parent is
            slow to read).
        tasks: tasks (chunks of items) run.
    """

    startup: float
    idle: float
    unpickle: float
    function: float
    pickle: float
    send: float
    tasks: int

    @property
    def total(self) -> float:
        """The sum of the phases: the worker's time accounted for."""
        return self.startup + self.idle + self.unpickle + self.function + self.pickle + self.send

    @property
    def overhead(self) -> float:
        """Seconds spent moving data: ``unpickle + pickle + send``."""
        return self.unpickle + self.pickle + self.send

    @property
    def efficiency(self) -> float:
        """``function / total``: the share of the time spent in the user's function."""
        return self.function / self.total if self.total else 0.0

    def __sub__(self, other: WorkerInsights) -> WorkerInsights:
        return WorkerInsights(
            *(getattr(self, f.name) - getattr(other, f.name) for f in fields(self))
        )


@dataclass(frozen=True)
class Insights:
    """How a pool's workers spent their time: ``Pool.insights()``.

    ``workers`` has one :class:`WorkerInsights` per worker slot; the
    attributes below are their sums (worker-seconds), and the ratios are of
    those sums. ``later - earlier`` is what happened between two readings
    (one call's figures). docs/observability.md tells how to read them.

    Attributes:
        workers: one :class:`WorkerInsights` per worker slot, in slot order.
    """

    workers: tuple[WorkerInsights, ...]

    def _sum(self, name: str) -> float:
        return float(sum(getattr(w, name) for w in self.workers))

    @property
    def startup(self) -> float:
        """Worker-seconds from each worker's loop start until it was ready."""
        return self._sum("startup")

    @property
    def idle(self) -> float:
        """Worker-seconds spent waiting for work."""
        return self._sum("idle")

    @property
    def unpickle(self) -> float:
        """Worker-seconds spent loading functions and arguments."""
        return self._sum("unpickle")

    @property
    def function(self) -> float:
        """Worker-seconds spent in the user's function."""
        return self._sum("function")

    @property
    def pickle(self) -> float:
        """Worker-seconds spent pickling results."""
        return self._sum("pickle")

    @property
    def send(self) -> float:
        """Worker-seconds spent writing results to the parent."""
        return self._sum("send")

    @property
    def tasks(self) -> int:
        """Tasks (chunks of items) run by all the workers."""
        return sum(w.tasks for w in self.workers)

    @property
    def total(self) -> float:
        """Worker-seconds accounted for (every phase of every worker)."""
        return self._sum("total")

    @property
    def overhead(self) -> float:
        """Worker-seconds spent moving data: ``unpickle + pickle + send``."""
        return self._sum("overhead")

    @property
    def efficiency(self) -> float:
        """``function / total``: 1.0 means the workers only ever ran the function."""
        total = self.total
        return self.function / total if total else 0.0

    @property
    def overhead_ratio(self) -> float:
        """``overhead / function``: near or above 1, the data costs as much as the work."""
        function = self.function
        return self.overhead / function if function else 0.0

    @property
    def idle_share(self) -> float:
        """``idle / total``: workers waiting for the parent to send work."""
        total = self.total
        return self.idle / total if total else 0.0

    def __sub__(self, other: Insights) -> Insights:
        if len(other.workers) != len(self.workers):
            raise ValueError("insights of pools with different numbers of workers")
        return Insights(tuple(a - b for a, b in zip(self.workers, other.workers, strict=True)))

    def summary(self) -> str:
        """A small table: one line per worker, one for the total, in seconds.

        Returns:
            The table as text, with a last line of the three ratios.
        """
        head = ("", "startup", "idle", "unpickle", "function", "pickle", "send", "tasks")
        rows = [f"{head[0]:>8}" + "".join(f"{h:>10}" for h in head[1:])]
        for name, w in [(f"w{k}", w) for k, w in enumerate(self.workers)] + [("total", self)]:
            figures = (w.startup, w.idle, w.unpickle, w.function, w.pickle, w.send)
            rows.append(f"{name:>8}" + "".join(f"{x:10.4f}" for x in figures) + f"{w.tasks:>10}")
        rows.append(
            f"efficiency {self.efficiency:.1%}, overhead/function {self.overhead_ratio:.2f}, "
            f"idle {self.idle_share:.1%}"
        )
        return "\n".join(rows)


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
        insights: how the workers' time split (``None`` unless the pool
            was made with ``insights=True``; process backend only).
    """

    tasks_done: int
    tasks_failed: int
    crashed: int
    timed_out: int
    worker_restarts: int
    busy: tuple[float, ...]
    insights: Insights | None = None


# Its public name: reprs and pickles say parkit.PoolStats (which parkit's module
# __getattr__ resolves), however the class was first loaded.
PoolStats.__module__ = "parkit"
Insights.__module__ = "parkit"
WorkerInsights.__module__ = "parkit"
