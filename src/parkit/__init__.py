"""parkit: typed parallel tasks that behave like the serial code they replace.

This module is the whole public surface; everything else is internal.
"""

from . import errors as errors
from ._core._context import default_context as default_context
from ._process import Process as Process
from ._process import run as run
from .errors import LockTimeout as LockTimeout
from .errors import ParkitError as ParkitError
from .errors import QueueClosed as QueueClosed
from .errors import RemoteError as RemoteError
from .errors import SerializationError as SerializationError
from .errors import TaskTimeout as TaskTimeout
from .errors import WorkerCrashed as WorkerCrashed

__version__ = "0.1.0.dev0"

__all__ = [
    "LockTimeout",
    "ParkitError",
    "Process",
    "QueueClosed",
    "RemoteError",
    "SerializationError",
    "TaskTimeout",
    "WorkerCrashed",
    "default_context",
    "errors",
    "run",
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
