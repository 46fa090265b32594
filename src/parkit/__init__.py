"""parkit: typed parallel tasks that behave like the serial code they replace.

This module is the whole public surface; everything else is internal.
"""

from . import errors as errors
from ._core._context import default_context as default_context
from ._pipe import Connection as Connection
from ._pipe import Pipe as Pipe
from ._pool._default import imap as imap
from ._pool._default import map as map
from ._pool._default import shutdown as shutdown
from ._pool._default import starmap as starmap
from ._pool._engine import PoolStats as PoolStats
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
from .errors import LockAbandoned as LockAbandoned
from .errors import LockTimeout as LockTimeout
from .errors import MainModuleError as MainModuleError
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
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Connection",
    "Event",
    "Lock",
    "LockAbandoned",
    "LockTimeout",
    "MainModuleError",
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
    "WorkerCrashed",
    "default_context",
    "errors",
    "imap",
    "map",
    "run",
    "shutdown",
    "starmap",
]


def _fixup_module_metadata() -> None:
    # Tracebacks, reprs, pickles and docs say parkit.Process, not
    # parkit._process.Process (trio's fixup_module_metadata). Errors keep
    # parkit.errors as their module: that is where they are defined publicly.
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) and obj.__module__.startswith("parkit._"):
            obj.__module__ = "parkit"


_fixup_module_metadata()
del _fixup_module_metadata
