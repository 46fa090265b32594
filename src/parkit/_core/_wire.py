"""Pickling for the wire: by reference when the receiver can import, else by value.

Two costs pull in opposite directions. Plain ``pickle`` sends a function as its
module and name: a few dozen bytes, fast, and the receiver runs the code from
the real file. ``cloudpickle`` sends the function's code by value: it works for
lambdas, closures and functions of an interactive ``__main__``, but costs several
times more and (cloudpickle >= 3) rewrites ``co_filename`` to ``<dynamic-code>``,
so a traceback from the worker would show neither the user's file nor the line.

So :func:`dumps` tries the C pickler first, by reference, and falls back to
cloudpickle only when something can't be sent that way. ``__main__`` needs care:
plain pickle happily sends ``__main__.f`` by reference, but the worker has ``f``
only if it imported the main script *and* ``f`` is defined by the script's
top-level code (not under ``if __name__ == "__main__":``, not in a REPL). The
script's syntax tree says which names that is (:func:`_main_top_level_names`);
everything else of ``__main__`` goes by value. When cloudpickle is used, code
objects keep their real ``co_filename`` (:func:`_code_reduce`).

Both picklers include ``multiprocessing``'s own reducers (connections, fds), so
stdlib objects that are allowed to travel while a process is being started still
can.
"""

from __future__ import annotations

import copyreg
import functools
import io
import os
import pickle
import sys
import types
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.reduction import ForkingPickler

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    from typing import Any, Literal, TypeAlias

    from ..errors import SerializationError

__all__ = [
    "ForkedMain",
    "MainPolicy",
    "describe_error",
    "dumps",
    "dumps_or_raise",
    "loads",
    "loads_or_raise",
    "main_snapshot",
]


class ForkedMain:
    """What workers forked from this process find in ``__main__`` by name.

    A forked worker has this process's ``__main__`` as it was at the fork: a
    function defined there before the fork is found by name, and must be sent
    that way, so that the worker runs *its* ``__main__``'s function, whose
    globals are the ones the pool's initializer set (by value, each function
    would arrive with a copy of its own). A function defined after the fork,
    or a name rebound since, is not found (or is another object) there: it
    goes by value.

    The pool calls :meth:`forked` around each fork with what ``__main__`` held
    just before and just after it; names bound to the same object in both, and
    in every earlier worker's fork, are the ones every worker has. Before the
    first fork, every worker is still to come and will have what ``__main__``
    holds now.
    """

    def __init__(self) -> None:
        # Replaced, never changed in place: threads that pickle read it
        # without a lock while the I/O thread forks.
        self._names: dict[str, Any] | None = None

    def forked(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Record a fork; ``before``/``after``: :func:`main_snapshot` around it."""
        names = {k: v for k, v in before.items() if after.get(k) is v}
        if self._names is not None:
            names = {k: v for k, v in self._names.items() if names.get(k) is v}
        self._names = names

    def reset(self) -> None:
        """Every worker is gone: the next ones are forked afresh."""
        self._names = None

    def finds(self, obj: Any) -> bool:
        """Whether every worker forked so far (and to come) finds ``obj`` by name."""
        qualname = getattr(obj, "__qualname__", "")
        if "<locals>" in qualname:
            return False
        main = sys.modules.get("__main__")
        found: Any = main
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is not obj:
            return False  # not by that name even here
        names = self._names
        head = qualname.partition(".")[0]
        return names is None or (head in names and names[head] is getattr(main, head, None))


def main_snapshot() -> dict[str, Any]:
    """``__main__``'s functions and classes by name (the heads of what
    :meth:`ForkedMain.finds` resolves)."""
    main = sys.modules.get("__main__")
    if main is None:
        return {}
    return {k: v for k, v in list(vars(main).items()) if isinstance(v, types.FunctionType | type)}


#: How objects defined in ``__main__`` travel:
#: ``"auto"``: by reference when the receiver imported the main script and the
#: name is defined at its top level, else by value (parent to a spawn/forkserver
#: worker); ``"value"``: always by value (a worker that did not import main);
#: ``"reference"``: always by reference (the receiver *is* the process whose
#: ``__main__`` defined it: worker to parent); a :class:`ForkedMain`: by
#: reference what forked workers find by name, else by value.
if TYPE_CHECKING:
    MainPolicy: TypeAlias = Literal["auto", "value", "reference"] | ForkedMain

PROTOCOL = 5

# Items whose pickle parkit's pickler (by reference, cloudpickle as a fallback)
# writes exactly as the C pickler does: Queue.put and Connection.send pickle
# them with pickle.dumps directly, without building a pickler (three quarters of
# a small item's pickling cost). Not for large strings and bytes: pickle.dumps()
# grows its own buffer (0.5 ms for 1 MiB), where parkit's pickler writes them
# through to a BytesIO.
ATOMS: frozenset[type] = frozenset({int, float, bool, type(None), complex})
SIZED: frozenset[type] = frozenset({str, bytes, bytearray})
SMALL = 16 * 1024

# ``ForkingPickler._extra_reducers`` holds the reducers that multiprocessing
# registers for its own types (Connection, socket, fds); private but stable
# since Python 3.4, and what ForkingPickler itself merges into its table.
_MP_REDUCERS: dict[type, Any] = ForkingPickler._extra_reducers  # type: ignore[attr-defined]


if TYPE_CHECKING:
    _Reducers = Mapping[type, Any]
else:
    _Reducers = Mapping  # no typing at run time: workers don't import it


class _GlobalReducers(_Reducers):
    """``copyreg.dispatch_table``, without what ``tblib.pickling_support.install()``
    puts there.

    That call (made by ``import distributed``, and by ``dask.multiprocessing``)
    registers a reducer for every exception class in the process's global
    table: exceptions then pickle without their attributes (``SystemExit(3)``
    arrives with ``code`` None, ``StopIteration`` without its value) and chains
    come back other than they left. parkit carries tracebacks and chains
    itself (``_remote.py``) and pickles exceptions the standard way, whoever
    else is loaded in the process.
    """

    __slots__ = ()

    def __getitem__(self, cls: type) -> Any:
        reducer = copyreg.dispatch_table[cls]
        if getattr(getattr(reducer, "func", reducer), "__module__", None) == _TBLIB:
            raise KeyError(cls)
        return reducer

    def __iter__(self) -> Iterator[type]:
        return iter(copyreg.dispatch_table)

    def __len__(self) -> int:
        return len(copyreg.dispatch_table)


_TBLIB = "tblib.pickling_support"
#: The global reducers parkit's picklers consult (see :class:`_GlobalReducers`).
GLOBAL_REDUCERS: Mapping[type, Any] = _GlobalReducers()

_MAIN_NAMES = ("__main__", "__mp_main__")


class _NeedsByValue(Exception):
    """Raised inside the fast pickler: this object must travel by value."""


@functools.lru_cache(maxsize=8)
def _top_level_names(path: str, mtime_ns: int) -> frozenset[str]:
    del mtime_ns  # part of the cache key only: a rewritten script is re-read
    import ast  # noqa: PLC0415 - parent side only: ~0.5 MiB a pool worker does without

    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return frozenset(names)


def _main_top_level_names() -> frozenset[str]:
    """Names the main script defines at top level; empty if there is no script."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return frozenset()
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return frozenset()
    return _top_level_names(os.path.abspath(path), mtime)


def _receiver_finds(policy: MainPolicy, obj: Any) -> bool:
    """Whether the receiver finds ``obj`` of ``__main__`` by name (policy "auto" or forked)."""
    if isinstance(policy, ForkedMain):
        return policy.finds(obj)
    return _main_importable(obj)


def _main_importable(obj: Any) -> bool:
    """Whether a receiver that imported the main script finds ``obj`` by name."""
    qualname = getattr(obj, "__qualname__", "")
    head = qualname.partition(".")[0]
    if "<locals>" in qualname or head not in _main_top_level_names():
        return False
    main = sys.modules.get("__main__")
    found: Any = main
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is obj


class _FastPickler(pickle.Pickler):
    """The C pickler, by reference, refusing what the receiver can't import."""

    dispatch_table: ChainMap[type, Any] = ChainMap(_MP_REDUCERS, GLOBAL_REDUCERS)  # type: ignore[arg-type]
    main_policy: MainPolicy = "auto"

    def reducer_override(self, obj: Any) -> Any:
        # Called by the C pickler for every non-atomic object; keep it cheap.
        if (
            self.main_policy != "reference"
            and isinstance(obj, types.FunctionType | type)
            and getattr(obj, "__module__", None) in _MAIN_NAMES
            and (self.main_policy == "value" or not _receiver_finds(self.main_policy, obj))
        ):
            raise _NeedsByValue
        return NotImplemented


def _rebuild_code(
    make: Callable[..., types.CodeType], args: tuple[Any, ...], filename: str
) -> types.CodeType:
    return make(*args).replace(co_filename=filename)


def dumps(
    obj: Any,
    main: MainPolicy = "auto",
    buffer_callback: Callable[[pickle.PickleBuffer], bool] | None = None,
    on_retry: Callable[[], None] | None = None,
    prefix: bytes = b"",
) -> bytes:
    """Pickle ``obj`` for another process.

    Args:
        obj: anything picklable by ``pickle`` or ``cloudpickle``.
        main: how objects of ``__main__`` travel (see :data:`MainPolicy`).
        buffer_callback: pickle protocol 5's: return False to take a buffer out
            of band (see :mod:`parkit._core._oob`).
        on_retry: called before pickling starts again by value, after the fast
            pickler gave up part-way (``buffer_callback`` is then called again
            for every buffer, from the first).
        prefix: bytes to put before the pickle (a frame's tag), written into
            the same buffer rather than copied in front of it afterwards.

    Returns:
        ``prefix`` and the pickle, protocol 5.

    Raises:
        Exception: whatever the pickler raised (``PicklingError``, ``TypeError``,
            ``RecursionError``, or the object's own ``__reduce__`` error). Callers
            wrap it in :class:`parkit.SerializationError`, which knows the direction.
    """
    buf = io.BytesIO()
    buf.write(prefix)
    pickler = _FastPickler(buf, PROTOCOL, buffer_callback=buffer_callback)
    pickler.main_policy = main
    try:
        pickler.dump(obj)
        return buf.getvalue()
    except _NeedsByValue:
        pass
    except (pickle.PicklingError, TypeError, AttributeError):
        # Lambdas, local functions and classes, objects holding them: retry by
        # value. A genuinely unpicklable object fails again below with the
        # cloudpickle error, which names it.
        pass
    if on_retry is not None:
        on_retry()
    # cloudpickle is the heaviest import parkit has: only what must travel by
    # value pays for it (docs/performance.md, "Import weight").
    from ._byvalue import ByValuePickler  # noqa: PLC0415

    buf = io.BytesIO()
    buf.write(prefix)
    ByValuePickler(buf, main, buffer_callback).dump(obj)
    return buf.getvalue()


def loads(data: bytes | bytearray | memoryview) -> Any:
    """Unpickle what :func:`dumps` produced."""
    return pickle.loads(data)


def describe_error(error: BaseException) -> str:
    """``"Type: message"`` for a pickling error, with a hint where parkit has one."""
    text = f"{type(error).__name__}: {error}"
    if "through inheritance" in str(error):
        text += (
            " (multiprocessing's locks, queues and connections can only be inherited; "
            "parkit.Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event, "
            "Barrier and Queue can be passed to pool tasks)"
        )
    return text


def serialization_error(
    what: str,
    cause: BaseException,
    *,
    stage: Literal["pickle", "unpickle"],
    direction: Literal["argument", "result"],
    item_index: int | None = None,
) -> SerializationError:
    """``SerializationError("could not {stage} {what}: {Type}: {message}")``, ``cause`` chained.

    The one place that words these errors, so that every path (pool, executor,
    ``Process``, ``run``) says the same thing for the same failure.
    """
    # Loaded on first use: parkit.errors defines ~20 classes (~0.3 ms of a
    # cold start) that a call which fails nowhere never needs.
    from ..errors import SerializationError  # noqa: PLC0415

    err = SerializationError(
        f"could not {stage} {what}: {describe_error(cause)}",
        direction=direction,
        stage=stage,
        item_index=item_index,
    )
    err.__cause__ = cause
    return err


def dumps_or_raise(
    obj: Any, what: str, direction: Literal["argument", "result"] = "argument"
) -> bytes:
    """:func:`dumps`, a failure raised as ``SerializationError("could not pickle {what}")``."""
    try:
        return dumps(obj, main="auto")
    except (Exception, SystemExit) as e:
        raise serialization_error(what, e, stage="pickle", direction=direction) from e


def loads_or_raise(
    data: bytes | bytearray | memoryview,
    what: str,
    direction: Literal["argument", "result"] = "result",
) -> Any:
    """:func:`loads`, a failure (``sys.exit`` in a ``__reduce__`` included) raised as
    ``SerializationError("could not unpickle {what}")``."""
    try:
        return loads(data)
    except (Exception, SystemExit) as e:
        raise serialization_error(what, e, stage="unpickle", direction=direction) from e
