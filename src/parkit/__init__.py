"""parkit: typed parallel tasks that behave like the serial code they replace.

This module is the whole public surface; everything else is internal.

The names load on first use (PEP 562): ``import parkit`` costs next to nothing,
and ``parkit.Queue`` (or ``from parkit import Queue``) imports the queue's
module then. Scripts pay only for what they use, and a pool worker, which
imports ``parkit`` to reach its own loop, does not import the whole library
(docs/performance.md, "Import weight"). Type checkers read the imports below.
"""

import sys as _sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from . import backends as backends
    from . import errors as errors
    from ._backends._stats import Insights as Insights
    from ._backends._stats import PoolStats as PoolStats
    from ._backends._stats import WorkerInsights as WorkerInsights
    from ._core._context import default_context as default_context
    from ._managers import Manager as Manager
    from ._pipe import Connection as Connection
    from ._pipe import Pipe as Pipe
    from ._pool._async import aimap as aimap
    from ._pool._async import amap as amap
    from ._pool._async import astarmap as astarmap
    from ._pool._default import imap as imap
    from ._pool._default import map as map
    from ._pool._default import shutdown as shutdown
    from ._pool._default import starmap as starmap
    from ._pool._executor import ProcessPoolExecutor as ProcessPoolExecutor
    from ._pool._pool import Pool as Pool
    from ._process import Process as Process
    from ._process import run as run
    from ._shared import SharedArray as SharedArray
    from ._sync._cond import Barrier as Barrier
    from ._sync._cond import Condition as Condition
    from ._sync._cond import Event as Event
    from ._sync._locks import BoundedSemaphore as BoundedSemaphore
    from ._sync._locks import Lock as Lock
    from ._sync._locks import RLock as RLock
    from ._sync._locks import Semaphore as Semaphore
    from ._sync._queue import Queue as Queue
    from ._values import Array as Array
    from ._values import Value as Value
    from .errors import LockAbandoned as LockAbandoned
    from .errors import LockTimeout as LockTimeout
    from .errors import MainModuleError as MainModuleError
    from .errors import ManagerGone as ManagerGone
    from .errors import ParkitError as ParkitError
    from .errors import PoolBroken as PoolBroken
    from .errors import QueueClosed as QueueClosed
    from .errors import RemoteError as RemoteError
    from .errors import SerializationError as SerializationError
    from .errors import TaskTimeout as TaskTimeout
    from .errors import TooManyWaiters as TooManyWaiters
    from .errors import WorkerCrashed as WorkerCrashed

__version__ = "0.1.0.dev0"

__all__ = [
    "Array",
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Connection",
    "Event",
    "Insights",
    "Lock",
    "LockAbandoned",
    "LockTimeout",
    "MainModuleError",
    "Manager",
    "ManagerGone",
    "ParkitError",
    "Pipe",
    "Pool",
    "PoolBroken",
    "PoolStats",
    "Process",
    "ProcessPoolExecutor",
    "Queue",
    "QueueClosed",
    "RLock",
    "RemoteError",
    "Semaphore",
    "SerializationError",
    "SharedArray",
    "TaskTimeout",
    "TooManyWaiters",
    "Value",
    "WorkerCrashed",
    "WorkerInsights",
    "aimap",
    "amap",
    "astarmap",
    "backends",
    "default_context",
    "errors",
    "imap",
    "map",
    "run",
    "shutdown",
    "starmap",
]

# Where each public name lives; must match the imports above (a test checks).
_WHERE = {
    "Array": "_values",
    "Barrier": "_sync._cond",
    "BoundedSemaphore": "_sync._locks",
    "Condition": "_sync._cond",
    "Connection": "_pipe",
    "Event": "_sync._cond",
    "Insights": "_backends._stats",
    "Lock": "_sync._locks",
    "LockAbandoned": "errors",
    "LockTimeout": "errors",
    "MainModuleError": "errors",
    "Manager": "_managers",
    "ManagerGone": "errors",
    "ParkitError": "errors",
    "Pipe": "_pipe",
    "Pool": "_pool._pool",
    "PoolBroken": "errors",
    "PoolStats": "_backends._stats",
    "Process": "_process",
    "ProcessPoolExecutor": "_pool._executor",
    "Queue": "_sync._queue",
    "QueueClosed": "errors",
    "RLock": "_sync._locks",
    "RemoteError": "errors",
    "Semaphore": "_sync._locks",
    "SerializationError": "errors",
    "SharedArray": "_shared",
    "TaskTimeout": "errors",
    "TooManyWaiters": "errors",
    "Value": "_values",
    "WorkerCrashed": "errors",
    "WorkerInsights": "_backends._stats",
    "aimap": "_pool._async",
    "amap": "_pool._async",
    "astarmap": "_pool._async",
    "default_context": "_core._context",
    "imap": "_pool._default",
    "map": "_pool._default",
    "run": "_process",
    "shutdown": "_pool._default",
    "starmap": "_pool._default",
}


def _bind(name: str, value: object) -> None:
    # Tracebacks, reprs, pickles and docs say parkit.Process, not
    # parkit._process.Process (trio's fixup_module_metadata). Errors keep
    # parkit.errors as their module: that is where they are defined publicly.
    if isinstance(value, type) and value.__module__.startswith("parkit._"):
        value.__module__ = "parkit"
    globals()[name] = value


if not TYPE_CHECKING:  # to mypy, a module __getattr__ would make any name valid

    def __getattr__(name: str) -> object:
        if name in ("backends", "errors"):
            __import__(f"{__name__}.{name}")  # binds parkit.<name> as a side effect
            return globals()[name]
        where = _WHERE.get(name)
        if where is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = __import__(f"{__name__}.{where}", fromlist=[name])
        _bind(name, getattr(module, name))
        # Bind every public name whose module is loaded by now, not only this
        # one: a class that reaches the user without going through parkit.X
        # (the PoolStats that Pool.stats() returns, the Connection that Pipe()
        # makes) still says parkit.X. Only names already defined there:
        # parkit.errors defines two of its classes on first use (errors.py).
        for other, where in _WHERE.items():
            loaded = _sys.modules.get(f"{__name__}.{where}")
            if other not in globals() and loaded is not None and other in vars(loaded):
                _bind(other, vars(loaded)[other])
        return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


del TYPE_CHECKING
