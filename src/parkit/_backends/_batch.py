"""What travels through the backend protocol: :class:`Call`, :class:`Batch`, :class:`BatchResult`.

The mapping layer cuts a call's items into batches; a backend runs each batch
and resolves its future with a :class:`BatchResult` that has an outcome for
every item (see :mod:`parkit._backends._protocol`, the protocol itself). These
are plain classes, and this module imports nothing heavier than ``itertools``:
every backend and the map path load it, the protocol class (a
``typing.Protocol``) only where a backend object must be checked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (_core/_typing.py)
if TYPE_CHECKING:
    from typing import Any, Final

__all__ = ["NOT_RUN", "Batch", "BatchResult", "Call", "new_call_id"]

_ids = itertools.count(1)


def new_call_id() -> int:
    """A number unique to one map call in this process."""
    return next(_ids)


class _NotRun:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_RUN"


#: Placeholder value of an item that was not run: its batch stopped at an
#: earlier failure (``errors="raise"``) or its call was abandoned.
NOT_RUN: Final = _NotRun()
"""Placeholder value of an item that was not run.

A backend puts it in :attr:`BatchResult.values` for an item of a batch that
stopped at an earlier failure (``errors="raise"``) or whose call was abandoned.
"""


# Plain classes, not dataclasses: ``dataclasses`` imports ``inspect`` (~5 ms of
# a cold start, before the first pool can start). Identity equality, as the
# dataclasses had (eq=False); ``Final`` keeps a Call immutable to mypy.


class Call:
    """What every batch of one ``map``/``imap``/``submit`` call shares.

    Args:
        id: a number unique to the call in this process.
        fn: the function to run on each item.
        star: call ``fn(*item)`` (``starmap``) instead of ``fn(item)``.
        timeout: seconds each item may run, or ``None``.
        stop_on_error: stop a batch at its first failing item (``errors="raise"``):
            the items after it are ``NOT_RUN``.

    Attributes:
        id: as passed.
        fn: as passed.
        star: as passed.
        timeout: as passed.
        stop_on_error: as passed.
    """

    # __weakref__: the process engine memoizes the function's pickle per Call.
    __slots__ = ("__weakref__", "fn", "id", "star", "stop_on_error", "timeout")

    def __init__(
        self,
        id: int,
        fn: Callable[..., Any],
        star: bool = False,
        timeout: float | None = None,
        stop_on_error: bool = False,
    ) -> None:
        self.id: Final = id
        self.fn: Final = fn
        self.star: Final = star
        self.timeout: Final = timeout
        self.stop_on_error: Final = stop_on_error

    def __repr__(self) -> str:
        return (
            f"Call(id={self.id!r}, fn={self.fn!r}, star={self.star!r}, "
            f"timeout={self.timeout!r}, stop_on_error={self.stop_on_error!r})"
        )


class Batch:
    """Consecutive items of one call: ``items[k]`` is input item ``start + k``.

    Args:
        call: the call the items belong to.
        start: the input index of the first item.
        items: the items (argument tuples when ``call.star``).

    Attributes:
        call: as passed.
        start: as passed.
        items: as passed.
    """

    __slots__ = ("call", "items", "start")

    def __init__(self, call: Call, start: int, items: list[Any]) -> None:
        self.call = call
        self.start = start
        self.items = items

    def __repr__(self) -> str:
        return f"Batch(call={self.call!r}, start={self.start!r}, items={self.items!r})"


class BatchResult:
    """Every item's outcome.

    ``values[k]`` is item ``k``'s return value, or ``NOT_RUN``, or ``None`` where
    ``errors`` has the item's exception (already rebuilt, with its note).
    ``busy`` is the seconds workers spent on the batch.

    Args:
        values: one entry per item of the batch.
        errors: item position in the batch -> its exception.
        busy: seconds the workers spent on the batch.

    Attributes:
        values: as passed.
        errors: as passed.
        busy: as passed.
    """

    __slots__ = ("busy", "errors", "values")

    def __init__(
        self, values: list[Any], errors: dict[int, BaseException], busy: float = 0.0
    ) -> None:
        self.values = values
        self.errors = errors
        self.busy = busy

    def __repr__(self) -> str:
        return f"BatchResult(values={self.values!r}, errors={self.errors!r}, busy={self.busy!r})"
