"""The mapping layer's future for one batch, without ``concurrent.futures``.

``concurrent.futures`` imports ``logging`` (with ``string``, ~3-5 ms of a cold
start together), and the map path only needs a future to hand to
:meth:`Backend.submit_batch`. :class:`BatchFuture` has every public method of
``concurrent.futures.Future`` (the ones a backend may use, and the caller's
``result``/``exception``/``running``/``cancelled``) with the same semantics,
so to mypy it *is* one (a ``Future[BatchResult]``), while at run time it is a
plain class. What it lacks are the stdlib's private attributes, which only
``concurrent.futures.wait``/``as_completed`` read: the map path never hands it
to those. ``Pool.submit`` and the executor still return the stdlib's futures
(SPEC §2).
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future
    from concurrent.futures import Future as _Base

    from ._batch import BatchResult
else:

    class _Base:
        """Stands in for ``concurrent.futures.Future`` (subscriptable) at run time."""

        __slots__ = ()

        def __class_getitem__(cls, _item: object) -> type:
            return cls


__all__ = ["BatchFuture"]

_PENDING, _RUNNING, _CANCELLED, _NOTIFIED, _FINISHED = range(5)


def _cancelled_error() -> BaseException:
    # Loaded on this rare path only: what the stdlib's future raises.
    from concurrent.futures import CancelledError  # noqa: PLC0415

    return CancelledError()


def _invalid_state(message: str) -> BaseException:
    from concurrent.futures import InvalidStateError  # noqa: PLC0415

    return InvalidStateError(message)


class BatchFuture(_Base["BatchResult"]):
    """A ``concurrent.futures.Future[BatchResult]`` in behaviour; see the module docstring."""

    __slots__ = ("_error", "_lock_cv", "_pending_callbacks", "_phase", "_value")

    def __init__(self) -> None:
        self._lock_cv = threading.Condition()
        self._phase = _PENDING
        self._value: BatchResult | None = None
        self._error: BaseException | None = None
        self._pending_callbacks: list[Callable[[Future[BatchResult]], object]] = []

    def __repr__(self) -> str:
        names = ("pending", "running", "cancelled", "cancelled", "finished")
        return f"<BatchFuture at {id(self):#x} state={names[self._phase]}>"

    def cancel(self) -> bool:
        with self._lock_cv:
            if self._phase in (_RUNNING, _FINISHED):
                return False
            if self._phase in (_CANCELLED, _NOTIFIED):
                return True
            self._phase = _CANCELLED
            self._lock_cv.notify_all()
        self._invoke_callbacks()
        return True

    def cancelled(self) -> bool:
        with self._lock_cv:
            return self._phase in (_CANCELLED, _NOTIFIED)

    def running(self) -> bool:
        with self._lock_cv:
            return self._phase == _RUNNING

    def done(self) -> bool:
        with self._lock_cv:
            return self._phase in (_CANCELLED, _NOTIFIED, _FINISHED)

    def _wait(self, timeout: float | None) -> None:
        # Called with the condition held; returns in a final state or raises.
        if self._phase in (_CANCELLED, _NOTIFIED):
            raise _cancelled_error()
        if self._phase != _FINISHED:
            self._lock_cv.wait(timeout)
            if self._phase in (_CANCELLED, _NOTIFIED):
                raise _cancelled_error()
            if self._phase != _FINISHED:
                raise TimeoutError()

    def result(self, timeout: float | None = None) -> BatchResult:
        with self._lock_cv:
            self._wait(timeout)
            if self._error is not None:
                raise self._error
            assert self._value is not None
            return self._value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        with self._lock_cv:
            self._wait(timeout)
            return self._error

    def add_done_callback(self, fn: Callable[[Future[BatchResult]], object]) -> None:
        with self._lock_cv:
            if self._phase not in (_CANCELLED, _NOTIFIED, _FINISHED):
                self._pending_callbacks.append(fn)
                return
        self._call(fn)

    def set_running_or_notify_cancel(self) -> bool:
        with self._lock_cv:
            if self._phase == _CANCELLED:
                self._phase = _NOTIFIED
                return False
            if self._phase == _PENDING:
                self._phase = _RUNNING
                return True
            raise RuntimeError(f"Future in unexpected state: {self!r}")

    def set_result(self, result: BatchResult) -> None:
        with self._lock_cv:
            if self._phase in (_CANCELLED, _NOTIFIED, _FINISHED):
                raise _invalid_state(f"{self!r}: already done")
            self._value = result
            self._phase = _FINISHED
            self._lock_cv.notify_all()
        self._invoke_callbacks()

    def set_exception(self, exception: BaseException | None) -> None:
        with self._lock_cv:
            if self._phase in (_CANCELLED, _NOTIFIED, _FINISHED):
                raise _invalid_state(f"{self!r}: already done")
            self._error = exception
            self._phase = _FINISHED
            self._lock_cv.notify_all()
        self._invoke_callbacks()

    def _invoke_callbacks(self) -> None:
        callbacks, self._pending_callbacks = self._pending_callbacks, []
        for fn in callbacks:
            self._call(fn)

    def _call(self, fn: Callable[[Future[BatchResult]], object]) -> None:
        try:
            fn(self)
        except Exception:
            # As the stdlib's future does: logged, not raised into the backend.
            import logging  # noqa: PLC0415

            logging.getLogger("concurrent.futures").exception(
                "exception calling callback for %r", self
            )
