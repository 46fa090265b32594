"""Backends by name: the one place that maps ``backend="..."`` to a class.

Each entry names the module and class of a backend and the options of
``Pool``/``parkit.map`` it takes; the module is imported when the name is
first used, so ``import parkit`` and a process pool's cold start load no other
backend (tests/test_imports.py).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from typing import Any, Literal, TypeAlias

    from ._protocol import Backend

__all__ = ["BACKENDS", "BackendLike", "BackendName", "make_backend", "refuse_workers"]

# Only the backends that exist: a name is added here and to BACKENDS with its
# backend, so that the type never offers a value that fails on every call.
BackendName: TypeAlias = 'Literal["process", "thread", "serial", "dask"]'
BackendLike: TypeAlias = "BackendName | Backend"

#: name -> (module under parkit._backends, class, the options it takes). The
#: constructor takes ``workers`` first if it is listed, then the others by
#: keyword; ``idle_timeout`` is a hint a backend without idle workers ignores.
BACKENDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "process": (
        "._process._engine",
        "ProcessEngine",
        (
            "workers",
            "context",
            "initializer",
            "initargs",
            "max_tasks_per_worker",
            "idle_timeout",
            "insights",
            "profile",
            "cpus",
            "worker_logging",
        ),
    ),
    "thread": ("._thread", "ThreadBackend", ("workers", "idle_timeout")),
    "serial": ("._serial", "SerialBackend", ()),
    # The active distributed.Client: its cluster's threads are the workers.
    "dask": ("._dask", "DaskBackend", ()),
}

#: Options that only some backends take: another backend refuses a value.
_SPECIFIC = ("context", "initializer", "max_tasks_per_worker", "insights", "profile", "cpus")


def _names() -> str:
    return ", ".join(map(repr, BACKENDS))


def backend_class(name: str) -> Callable[..., Backend]:
    """The class registered as ``name`` (its module is imported now)."""
    module, cls, _ = BACKENDS[name]
    found: Callable[..., Backend] = getattr(importlib.import_module(module, __package__), cls)
    return found


def make_backend(backend: BackendLike, workers: int, **options: Any) -> Backend:
    """The backend object for a name (or ``backend`` itself, checked).

    Args:
        backend: a registered name or a backend object.
        workers: how many items run at once, for a backend that takes it.
        options: ``context``, ``initializer``, ``initargs``,
            ``max_tasks_per_worker``, ``idle_timeout``, ``insights``,
            ``profile``, ``cpus``, ``worker_logging``; ``None`` (or absent)
            means unset.

    Raises:
        TypeError: ``backend`` is neither a name nor a backend object.
        ValueError: an unknown name, or an option the backend does not take.
    """
    if not isinstance(backend, str):
        # Loaded only here: a typing.Protocol, and typing costs a cold start ~2-3 ms.
        from ._protocol import Backend  # noqa: PLC0415

        if not isinstance(backend, Backend):
            raise TypeError(
                f"backend must be one of {_names()} or a backend object, not {backend!r}"
            )
        return backend
    entry = BACKENDS.get(backend)
    if entry is None:
        raise ValueError(f"backend must be one of {_names()} or a backend object, not {backend!r}")
    takes = entry[2]
    for name in _SPECIFIC:
        if options.get(name) is not None and name not in takes:
            which = " or ".join(repr(n) for n, e in BACKENDS.items() if name in e[2])
            raise ValueError(f"{name}= applies to the {which} backend only, not {backend!r}")
    kwargs = {k: v for k, v in options.items() if k in takes and k != "workers"}
    cls = backend_class(backend)
    return cls(workers, **kwargs) if "workers" in takes else cls(**kwargs)


def refuse_workers(backend: object, workers: int | None) -> None:
    """Refuse an explicit ``workers=`` where the backend decides the number itself.

    A Dask cluster runs as many items at once as it has threads: a number
    given here would be silently ignored, so it is an error instead.

    Raises:
        ValueError: ``workers`` is not None and ``backend`` is ``"dask"`` or a
            Dask backend object.
    """
    if workers is None:
        return
    dask = sys.modules.get(f"{__package__}._dask")  # loaded if an object of it exists
    if backend == "dask" or (dask is not None and isinstance(backend, dask.DaskBackend)):
        raise ValueError(
            f"workers= does not apply to the 'dask' backend, not {workers!r}: the cluster "
            "decides how many items run at once (its threads); leave workers out"
        )
