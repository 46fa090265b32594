"""The future ``Pool.submit`` returns: a ``concurrent.futures.Future`` (SPEC §2).

In a module of its own, loaded by the first ``submit``: ``concurrent.futures``
imports ``logging`` (~3-5 ms of a cold start), which ``map`` does without.
"""

from __future__ import annotations

from concurrent.futures import CancelledError, Future
from typing import Any

from .._backends._batch import NOT_RUN, BatchResult

__all__ = ["ItemFuture"]


class ItemFuture(Future[Any]):
    """The future ``submit`` returns: resolved from a one-item batch's outcome."""

    def set_result(self, result: Any) -> None:
        if isinstance(result, BatchResult):
            if result.errors:
                super().set_exception(result.errors[0])
                return
            result = result.values[0]
            if result is NOT_RUN:
                super().set_exception(CancelledError("the task was not run"))
                return
        super().set_result(result)
