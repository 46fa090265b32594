"""Run-time stand-ins for the few names of ``typing`` that parkit's code runs.

``typing`` costs a cold start about 2-3 ms (its import, and its objects at
interpreter exit): more than a fifth of what parkit added to a fresh
interpreter's first pool (issue 12, docs/performance.md). The pool's and
``parkit.run``'s modules therefore never import it at run time. To mypy the
names are ``typing``'s own; each module writes::

    TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
    if TYPE_CHECKING:
        from typing import Generic, TypeVar
    else:
        from .._core._typing import Generic, TypeVar

Overloads go in an ``if TYPE_CHECKING:`` block before their implementation
(mypy's conditional overloads), and type aliases are strings. What the
stand-ins keep at run time: ``C[int]`` is a :class:`types.GenericAlias` (what
``typing.get_args``/``get_origin`` read), ``C[int](...)`` makes a ``C``, and a
subclass of ``C[int]`` is a subclass of ``C``.
"""

from __future__ import annotations

import types

__all__ = ["Generic", "TypeVar"]


class Generic:
    """``class C(Generic[T])``: ``C[int]`` is ``types.GenericAlias(C, int)``."""

    __slots__ = ()

    def __class_getitem__(cls, params: object) -> object:
        if cls is Generic:
            return Generic  # in a class's bases: the class itself
        return types.GenericAlias(cls, params)


class TypeVar:
    """A type variable's name; only :class:`Generic`'s subscription sees it."""

    __slots__ = ("__name__",)

    def __init__(self, name: str, *_constraints: object, **_options: object) -> None:
        self.__name__ = name

    def __repr__(self) -> str:
        return f"~{self.__name__}"
