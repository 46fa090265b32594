"""Where parkit runs items: the backend protocol and the backends it ships.

``backend=`` of :func:`parkit.map`, :func:`parkit.imap`, :func:`parkit.starmap`
and :class:`parkit.Pool` takes a name (``"process"``, ``"thread"``,
``"serial"``, ``"dask"``) or a backend object: one of the classes here
(``parkit.backends.Thread(8)``), or any object that implements
:class:`Backend`, which is how a third party adds one (docs/backends.md).

The backend classes load on first use, like the names of ``parkit`` itself.
"""

from ._backends._batch import NOT_RUN, Batch, BatchResult, Call
from ._backends._protocol import Backend

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from ._backends._dask import DaskBackend as Dask
    from ._backends._process._engine import ProcessEngine as Process
    from ._backends._serial import SerialBackend as Serial
    from ._backends._thread import ThreadBackend as Thread

__all__ = [
    "NOT_RUN",
    "Backend",
    "Batch",
    "BatchResult",
    "Call",
    "Dask",
    "Process",
    "Serial",
    "Thread",
]

# Public name -> registry name (parkit._backends._registry, the one table of
# backends): the class is the one ``backend="<name>"`` makes.
_REGISTERED = {"Dask": "dask", "Process": "process", "Serial": "serial", "Thread": "thread"}

if not TYPE_CHECKING:  # to mypy, a module __getattr__ would make any name valid

    def __getattr__(name: str) -> object:
        registered = _REGISTERED.get(name)
        if registered is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from ._backends._registry import backend_class  # noqa: PLC0415

        value = backend_class(registered)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


del TYPE_CHECKING
