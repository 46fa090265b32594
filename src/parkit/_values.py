"""``parkit.Value`` and ``parkit.Array``: typed ctypes data in shared memory.

The data live in a segment of their own (``_core/_segments.py``: created by
this process, readable by its owner only, removed by the owner when it is done
with it, swept if the owner is SIGKILLed), mapped by every process that uses
them. Pickling sends a small handle (the segment's name, the typecode, the
length and the lock's own handle), so a value or an array is an argument of
pool tasks and ``Process`` targets under every start method — where the
stdlib's raise ``RuntimeError: Synchronized objects should only be shared
between processes through inheritance``.

``.lock`` is a parkit lock (an ``RLock`` unless given: timeouts, the holder's
pid, dead-holder detection). ``v.value += 1`` from several processes is a
lost-update race with or without it (a read, then a write); :meth:`Value.add`
and :meth:`Value.update` do the read-modify-write under the lock, so they are
right by construction.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from ._core import _segments
from ._core._context import ContextLike, start_method

if TYPE_CHECKING:
    from ._sync._locks import Lock, RLock

__all__ = ["Array", "Value"]

T = TypeVar("T")
R = TypeVar("R")

#: Typecodes (those of the ``array`` module, as ``multiprocessing`` takes them,
#: plus ``"?"``) and their ctypes types.
_TYPECODES: dict[str, Any] = {
    "c": ctypes.c_char,
    "u": ctypes.c_wchar,
    "b": ctypes.c_byte,
    "B": ctypes.c_ubyte,
    "h": ctypes.c_short,
    "H": ctypes.c_ushort,
    "i": ctypes.c_int,
    "I": ctypes.c_uint,
    "l": ctypes.c_long,
    "L": ctypes.c_ulong,
    "q": ctypes.c_longlong,
    "Q": ctypes.c_ulonglong,
    "f": ctypes.c_float,
    "d": ctypes.c_double,
    "?": ctypes.c_bool,
}
#: Python types and the typecode they stand for: 64-bit ints, doubles.
_PYTHON_TYPES: dict[type, str] = {int: "q", float: "d", bool: "?", bytes: "c", str: "u"}


def _int_range(code: str) -> tuple[int, int] | None:
    if code == "?":
        return (0, 1)
    if code not in "bBhHiIlLqQ":
        return None
    bits = 8 * ctypes.sizeof(_TYPECODES[code])
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if code.islower() else (0, 2**bits - 1)


#: The range of each integer typecode: ctypes wraps a value outside it round
#: silently (2**31 stored in an "i" reads back as -2**31), parkit refuses it.
_INT_RANGES: dict[str, tuple[int, int] | None] = {code: _int_range(code) for code in _TYPECODES}


def _typecode(kind: object) -> str:
    if isinstance(kind, str):
        if kind not in _TYPECODES:
            raise ValueError(f"typecode must be one of {''.join(_TYPECODES)!r}, not {kind!r}")
        return kind
    if isinstance(kind, type) and kind in _PYTHON_TYPES:
        return _PYTHON_TYPES[kind]
    raise TypeError(
        "kind must be int, float, bool, bytes, str or a ctypes typecode such as 'i' or "
        f"'d', not {kind!r}"
    )


def _make_lock(lock: object, context: ContextLike) -> Lock | RLock | None:
    from ._sync._locks import Lock, RLock  # noqa: PLC0415

    if lock is True:
        return RLock(context=context)
    if lock is False:
        return None
    if isinstance(lock, Lock | RLock):
        return lock
    raise TypeError(f"lock must be True, False, or a parkit Lock or RLock, not {lock!r}")


class _Shared:
    """What a value and an array share: the segment, the lock, the ownership."""

    _what = "parkit.Value"
    __slots__ = ("__weakref__", "_code", "_data", "_finalizer", "_length", "_lock",
                 "_method", "_name", "_range", "_region")  # fmt: skip

    def _names(self) -> tuple[str, str]:
        # What it is, and the stdlib's twin (for the error on Windows).
        return self._what, self._what.replace("parkit", "multiprocessing")

    def _require(self) -> None:
        # Before its lock is made: the error names this object, not the lock.
        _segments.require(*self._names())

    def _setup(
        self,
        code: str,
        length: int | None,
        lock: Lock | RLock | None,
        method: str,
        name: str | None = None,
    ) -> None:
        ctype = _TYPECODES[code]
        layout = ctype if length is None else ctype * length
        if name is None:
            name, region = _segments.map_new("val", ctypes.sizeof(layout), *self._names())
            self._finalizer: Any = _segments.owned(self, name)
        else:
            region = _segments.map_existing(name, ctypes.sizeof(layout), self._what)
            self._finalizer = None
        self._name = name
        self._region = region
        self._code = code
        self._range = _INT_RANGES[code]
        self._length = length
        self._lock = lock
        self._method = method
        self._data: Any = layout.from_buffer(region)

    def _fit(self, item: Any, what: str) -> Any:
        # Every write goes through here: an int out of the type's range would be
        # wrapped round by ctypes without a word (2**31 into "i" reads -2**31).
        bounds = self._range
        if bounds is not None and isinstance(item, int) and not bounds[0] <= item <= bounds[1]:
            raise ValueError(
                f"{what} {item} is out of range for typecode {self._code!r} "
                f"({_TYPECODES[self._code].__name__}): {bounds[0]} to {bounds[1]}"
            )
        return item

    @property
    def lock(self) -> Lock | RLock:
        """The lock that :meth:`get_lock` returns.

        Raises:
            AttributeError: made with ``lock=False``.
        """
        if self._lock is None:
            raise AttributeError(f"this {self._what} was made with lock=False: it has no lock")
        return self._lock

    def get_lock(self) -> Lock | RLock:
        """The lock (as ``multiprocessing``'s ``get_lock()``).

        Returns:
            The parkit ``Lock`` or ``RLock`` that guards the data.

        Raises:
            AttributeError: made with ``lock=False``.
        """
        return self.lock

    @property
    def typecode(self) -> str:
        """The ctypes typecode of the data (``"q"`` for ``int``)."""
        return self._code

    @property
    def start_method(self) -> str:
        """The start method ``context=`` named (informational: any process can attach)."""
        return self._method

    def close(self) -> None:
        """Remove the segment now, in its owner (processes that mapped it keep it)."""
        if self._finalizer is not None:
            self._finalizer()

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _attach,
            (type(self), self._name, self._code, self._length, self._lock, self._method),
        )


def _attach(
    cls: type[_Shared],
    name: str,
    code: str,
    length: int | None,
    lock: Lock | RLock | None,
    method: str,
) -> _Shared:
    self = object.__new__(cls)
    self._setup(code, length, lock, method, name=name)
    return self


class Value(_Shared, Generic[T]):
    """One number (or character) in shared memory, with a parkit lock.

    ``parkit.Value(int, 0)``, ``parkit.Value("i", 7)``, ``parkit.Value(float)``.
    ``int`` is a 64-bit signed integer (``"q"``), ``float`` a double (``"d"``).

    Args:
        kind: ``int``, ``float``, ``bool``, ``bytes`` (one byte), ``str`` (one
            character) or a ctypes typecode (``"i"``, ``"d"``, ...).
        value: the initial value (zero if left out).
        lock: ``True`` (a new ``parkit.RLock``, the default), ``False`` (none),
            or a parkit ``Lock``/``RLock`` to use.
        context: start method, validated and recorded; the value works with
            processes of every start method.

    Raises:
        TypeError: an unsupported kind, or a value of the wrong type.
        ValueError: an unknown typecode, or a value out of the type's range.
    """

    __slots__ = ()

    @overload
    def __init__(
        self: Value[T],
        kind: type[T],
        value: T | None = None,
        *,
        lock: bool | Lock | RLock = True,
        context: ContextLike = None,
    ) -> None: ...
    @overload
    def __init__(
        self: Value[Any],
        kind: str,
        value: Any = None,
        *,
        lock: bool | Lock | RLock = True,
        context: ContextLike = None,
    ) -> None: ...
    def __init__(
        self,
        kind: type[Any] | str,
        value: Any = None,
        *,
        lock: bool | Lock | RLock = True,
        context: ContextLike = None,
    ) -> None:
        code = _typecode(kind)
        method = start_method(context)
        self._require()
        if value is not None:
            check_item(code, value, "value")
        self._setup(code, None, _make_lock(lock, context), method)
        if value is not None:
            self._data.value = value

    @property
    def value(self) -> T:
        """The value now (a plain read: use :meth:`add`/:meth:`update` to change it
        from several processes)."""
        return self._data.value  # type: ignore[no-any-return]

    @value.setter
    def value(self, new: T) -> None:
        self._data.value = self._fit(new, "value")

    @overload
    def add(self: Value[int], delta: int) -> int: ...
    @overload
    def add(self: Value[float], delta: float) -> float: ...
    def add(self, delta: Any) -> Any:
        """Add ``delta`` under the lock; the new value (an atomic ``+=``).

        Args:
            delta: what to add (negative to subtract).

        Returns:
            The value after the addition.

        Raises:
            AttributeError: made with ``lock=False``.
        """
        data = self._data

        def added() -> Any:
            data.value = self._fit(data.value + delta, "result")
            return data.value

        return self._exclusive(added)

    def update(self, fn: Callable[[T], T]) -> T:
        """Replace the value by ``fn(value)`` under the lock; the new value.

        Args:
            fn: called with the current value, under the lock; keep it short,
                since every other process that wants the lock waits for it.

        Returns:
            The new value, ``fn``'s result as stored.

        Raises:
            AttributeError: made with ``lock=False``.
        """
        data = self._data

        def updated() -> T:
            data.value = self._fit(fn(data.value), "result")
            return data.value  # type: ignore[no-any-return]

        return self._exclusive(updated)

    def _exclusive(self, change: Callable[[], R]) -> R:
        # Under the lock, as if with self.lock: but when nobody else holds it,
        # only its internal guard is taken (a microsecond, no hand-off), which
        # excludes every other holder just as well (_run_if_free).
        lock = self.lock
        ran, result = lock._run_if_free(change)
        if ran:
            return result  # type: ignore[return-value]
        with lock:
            return change()

    def __repr__(self) -> str:
        return f"<parkit.Value {self._code!r} {self._data.value!r}>"


def check_item(code: str, item: object, what: str) -> None:
    # ctypes' own errors say "int expected instead of str", and an int out of
    # range wraps around silently: say which argument, and refuse.
    ctype = _TYPECODES[code]
    try:
        stored = ctype(item).value
    except TypeError:
        raise TypeError(
            f"{what} {item!r} does not fit typecode {code!r} ({ctype.__name__})"
        ) from None
    if isinstance(item, int) and not isinstance(item, bool) and stored != item:
        raise ValueError(f"{what} {item} is out of range for typecode {code!r} ({ctype.__name__})")


class Array(_Shared, Generic[T]):
    """A fixed-length array of numbers (or characters) in shared memory.

    ``parkit.Array(float, 100)`` (zeros), ``parkit.Array("d", [1.0, 2.0])``
    (a copy of the items). Indexing and slicing read and write the shared
    memory (a slice gives a list, as ``multiprocessing.Array``).

    Args:
        kind: as for :class:`Value`.
        size_or_items: the length (zeros), or the initial items.
        lock: as for :class:`Value`.
        context: as for :class:`Value`.

    Raises:
        TypeError: an unsupported kind, or items of the wrong type.
        ValueError: an unknown typecode, or a negative length.
    """

    __slots__ = ()
    _what = "parkit.Array"

    @overload
    def __init__(
        self: Array[T],
        kind: type[T],
        size_or_items: int | Iterable[T],
        *,
        lock: bool | Lock | RLock = True,
        context: ContextLike = None,
    ) -> None: ...
    @overload
    def __init__(
        self: Array[Any],
        kind: str,
        size_or_items: int | Iterable[Any],
        *,
        lock: bool | Lock | RLock = True,
        context: ContextLike = None,
    ) -> None: ...
    def __init__(
        self,
        kind: type[Any] | str,
        size_or_items: int | Iterable[Any],
        *,
        lock: bool | Lock | RLock = True,
        context: ContextLike = None,
    ) -> None:
        code = _typecode(kind)
        method = start_method(context)
        self._require()
        if isinstance(size_or_items, int) and not isinstance(size_or_items, bool):
            if size_or_items < 0:
                raise ValueError(f"size must not be negative, not {size_or_items}")
            items: list[Any] | None = None
            length = size_or_items
        elif isinstance(size_or_items, Iterable) and not isinstance(size_or_items, str | bytes):
            items = list(size_or_items)
            for item in items:
                check_item(code, item, "item")
            length = len(items)
        else:
            raise TypeError(
                f"size_or_items must be a length or an iterable of items, not {size_or_items!r}"
            )
        self._setup(code, length, _make_lock(lock, context), method)
        if items:
            self._data[:] = items

    def __len__(self) -> int:
        return self._length or 0

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        return self._data[index]  # type: ignore[no-any-return]

    @overload
    def __setitem__(self, index: int, value: T) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[T]) -> None: ...
    def __setitem__(self, index: int | slice, value: Any) -> None:
        if isinstance(index, slice):
            value = [self._fit(item, "item") for item in value]
        else:
            self._fit(value, "item")
        self._data[index] = value

    def __iter__(self) -> Iterator[T]:
        return iter(self._data[:])

    def tolist(self) -> list[T]:
        """A copy of the items, as a list.

        Returns:
            A new list of the items.
        """
        return self._data[:]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        shown = self._data[:8]
        more = ", ..." if len(self) > 8 else ""
        return (
            f"<parkit.Array {self._code!r} len={len(self)} [{', '.join(map(repr, shown))}{more}]>"
        )
