"""``parkit.SharedArray``: a NumPy array in shared memory, sent as a small handle.

The array's bytes live in a shared-memory segment (``_core/_segments.py``: a
file in ``/dev/shm`` on Linux, a ``shm_open`` object on macOS) that every
process maps (``MAP_SHARED``): a write in one process is seen by all. Pickling sends only the
handle (name, shape, dtype), so handing a 256 MiB array to a pool task costs the
same as handing it 8 bytes; the worker maps the same pages.

The creating process owns the segment and unlinks it on :meth:`close`, at the
end of its ``with`` block, when the object is garbage-collected, or at
interpreter exit once the non-daemonic children are joined (``_core/_owned.py``)
— also when workers crash, since they never own it. If the
owner is SIGKILLed, pool workers remove its segments as they exit (their
lifeline removes every ``parkit-<owner pid>-*`` segment; see ``_core/_segments.py``).
The file is readable by its owner only (SPEC §7). No ``resource_tracker`` is
involved, so attaching in workers produces none of its warnings.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import operator
import sys
from typing import Any

from ._core import _segments
from ._core._checks import show
from ._core._context import ContextLike, start_method

__all__ = ["SharedArray"]


def _numpy() -> Any:
    try:
        import numpy  # noqa: PLC0415 - optional dependency
    except ImportError as e:
        raise ImportError("parkit.SharedArray needs NumPy: pip install 'parkit[numpy]'") from e
    return numpy


class SharedArray:
    """A NumPy array whose memory is shared between processes.

    Create it with :meth:`zeros` or :meth:`copy_of`; use it where an array is
    expected (``np.asarray(sa)``, ``sa[i]``, ``sa.array``); pass it to
    ``parkit.map``, ``Pool.submit`` or ``parkit.Process`` as an argument.

    Raises:
        ImportError: NumPy is not installed (``pip install 'parkit[numpy]'``).
        TypeError: ``SharedArray(...)`` called directly: use :meth:`zeros` or
            :meth:`copy_of`.
    """

    def __init__(self, *_: object) -> None:
        raise TypeError("use SharedArray.zeros(shape, dtype) or SharedArray.copy_of(array)")

    @classmethod
    def _create(cls, shape: tuple[int, ...], dtype: Any, context: ContextLike) -> SharedArray:
        method = start_method(context)
        np = _numpy()
        dt = np.dtype(dtype)
        if dt.hasobject:
            raise TypeError(f"a SharedArray can't hold Python objects (dtype {dt})")
        nbytes = math.prod(shape) * dt.itemsize
        if nbytes > sys.maxsize:
            raise ValueError(f"shape {shape} of {dt} is too large: {nbytes} bytes")
        # The naming rule of _segments.py: a SIGKILLed owner's pool workers
        # remove every parkit-<owner pid>-* segment, this one included.
        name, region = _segments.map_new(
            "sa",
            nbytes,
            "parkit.SharedArray",
            "multiprocessing.shared_memory.SharedMemory with a NumPy array on its buf",
        )
        self = object.__new__(cls)
        self._init(name, shape, dt, region, owner=True, method=method)
        return self

    def _init(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: Any,
        region: mmap.mmap,
        owner: bool,
        method: str,
    ) -> None:
        np = _numpy()
        self._name = name
        self._method = method
        self._region: mmap.mmap | None = region
        self._owner = owner
        self._array = np.ndarray(shape, dtype=dtype, buffer=region)
        # The owner's segment goes when the owner is done with it, however that
        # happens (close, with, garbage collection, interpreter exit).
        self._finalizer = _segments.owned(self, name) if owner else None

    @classmethod
    def zeros(
        cls, shape: int | tuple[int, ...], dtype: Any = float, *, context: ContextLike = None
    ) -> SharedArray:
        """A new shared array of zeros.

        Args:
            shape: the array's shape.
            dtype: its NumPy dtype (not ``object``).
            context: start-method name or ``multiprocessing`` context, validated
                and recorded as :attr:`start_method`; the array works with
                processes of every start method.

        Returns:
            The new array, owned by this process.

        Raises:
            ValueError: a negative dimension, a shape too large to address, or
                an unknown start method.
            TypeError: a shape that is not an int or a sequence of ints, a
                dtype NumPy does not know or an object dtype (Python objects
                can't be shared), or a ``context`` that is neither a name nor a
                context.
            OSError: ``/dev/shm`` has no room for it (``ENOSPC``).
        """
        return cls._create(_check_shape(shape), dtype, context)

    @classmethod
    def copy_of(cls, array: Any, *, context: ContextLike = None) -> SharedArray:
        """A new shared array holding a copy of ``array``.

        Args:
            array: anything ``numpy.asarray`` takes (not of ``object`` dtype).
            context: as for :meth:`zeros`.

        Returns:
            The new array, owned by this process.

        Raises:
            TypeError: an object dtype.
            ValueError: an unknown start method.
        """
        np = _numpy()
        source = np.asarray(array)
        shared = cls._create(source.shape, source.dtype, context)
        shared._array[...] = source
        return shared

    @property
    def array(self) -> Any:
        """The NumPy view of the shared memory.

        Raises:
            ValueError: the array was closed.
        """
        if self._region is None:
            raise ValueError("the SharedArray is closed")
        return self._array

    @property
    def name(self) -> str:
        """The shared-memory segment's name (under ``/dev/shm`` on Linux)."""
        return self._name

    @property
    def start_method(self) -> str:
        """The start method ``context=`` named when it was made (informational).

        Any process can attach the array, whatever its start method.
        """
        return self._method

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return tuple(self._array.shape)

    @property
    def dtype(self) -> Any:
        """The array's NumPy dtype."""
        return self._array.dtype

    @property
    def nbytes(self) -> int:
        """The size of the data, in bytes."""
        return int(self._array.nbytes)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> Any:
        array = self.array
        if dtype is not None and dtype != array.dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.array[key] = value

    def __len__(self) -> int:
        return len(self.array)

    def __repr__(self) -> str:
        state = "closed" if self._region is None else ("owner" if self._owner else "attached")
        return f"<parkit.SharedArray {self._name} shape={self.shape} dtype={self.dtype} {state}>"

    def __reduce__(self) -> tuple[Any, ...]:
        if self._region is None:
            raise ValueError("a closed SharedArray can't be sent")
        return (_attach, (self._name, self.shape, self.dtype.str, self._method))

    def close(self) -> None:
        """Release this process's mapping; the owner also removes the segment.

        Views taken from :attr:`array` must be dropped first, or the mapping
        stays until they are.
        """
        if self._finalizer is not None:
            self._finalizer()  # unlink now (idempotent)
        region, self._region = self._region, None
        if region is not None:
            self._array = None
            with contextlib.suppress(BufferError):
                region.close()  # still viewed: released with the last view

    def __enter__(self) -> SharedArray:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _attach(name: str, shape: tuple[int, ...], dtype: str, method: str) -> SharedArray:
    np = _numpy()
    size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    region = _segments.map_existing(name, size, "parkit.SharedArray")
    self = object.__new__(SharedArray)
    self._init(name, shape, np.dtype(dtype), region, owner=False, method=method)
    return self


def _check_shape(shape: object) -> tuple[int, ...]:
    """A shape: an int or a sequence of ints, none negative (NumPy integers count)."""
    allowed = "an int or a tuple of ints >= 0"
    dims = (shape,) if not isinstance(shape, tuple | list) else tuple(shape)
    checked = []
    for n in dims:
        if isinstance(n, bool):
            raise TypeError(f"shape must be {allowed}, not {show(shape)}")
        try:
            checked.append(operator.index(n))  # ints, NumPy ints; not floats or strings
        except TypeError:
            raise TypeError(f"shape must be {allowed}, not {show(shape)}") from None
    if any(n < 0 for n in checked):
        raise ValueError(f"shape must not be negative, not {tuple(checked)}")
    return tuple(checked)
