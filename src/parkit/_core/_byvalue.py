"""The by-value pickler: cloudpickle, for what the receiver can't import by name.

Separate from ``_wire.py`` so that cloudpickle, the heaviest import parkit has
(~20 modules, ~2 MiB per process), is loaded only when something must travel
by value (a lambda, a closure, a function of an interactive ``__main__``), not
by every pool worker and every script that sends importable functions
(docs/performance.md, "Import weight"). See ``_wire.py`` for when it is used.
"""

from __future__ import annotations

import io
import pickle
import types
from collections import ChainMap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cloudpickle

from ._wire import (
    _MAIN_NAMES,
    _MP_REDUCERS,
    GLOBAL_REDUCERS,
    PROTOCOL,
    _rebuild_code,
    _receiver_finds,
)

if TYPE_CHECKING:
    from ._wire import MainPolicy

__all__ = ["ByValuePickler"]


_cloud_code_reduce: Callable[[types.CodeType], tuple[Any, ...]] = (
    cloudpickle.Pickler.dispatch_table[types.CodeType]
)


def _code_reduce(code: types.CodeType) -> tuple[Any, ...]:
    # cloudpickle >= 3 writes "<dynamic-code>" as every code object's file name;
    # put the real one back so the worker's traceback names the user's file and
    # linecache can show the source line in the parent.
    make, args = _cloud_code_reduce(code)[:2]
    return (_rebuild_code, (make, args, code.co_filename))


class ByValuePickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle, keeping real file names, and by reference where possible."""

    # cloudpickle's own reducers, then the global ones without tblib's
    # (_wire.GLOBAL_REDUCERS): not cloudpickle.Pickler.dispatch_table, which
    # chains the global table as it is.
    dispatch_table = ChainMap(
        {types.CodeType: _code_reduce},
        _MP_REDUCERS,
        cloudpickle.Pickler.dispatch_table.maps[0],
        GLOBAL_REDUCERS,  # type: ignore[arg-type]
    )

    def __init__(
        self,
        file: io.BytesIO,
        main_policy: MainPolicy,
        buffer_callback: Callable[[pickle.PickleBuffer], bool] | None = None,
    ) -> None:
        super().__init__(file, protocol=PROTOCOL, buffer_callback=buffer_callback)
        self._main_policy = main_policy

    def reducer_override(self, obj: Any) -> Any:
        if (
            self._main_policy != "value"
            and isinstance(obj, types.FunctionType | type)
            and getattr(obj, "__module__", None) in _MAIN_NAMES
            and (self._main_policy == "reference" or _receiver_finds(self._main_policy, obj))
        ):
            return NotImplemented  # the plain pickler's save_global: by reference
        return super().reducer_override(obj)
