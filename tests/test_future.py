"""parkit's batch future (_backends/_future.py) behaves as concurrent.futures.Future.

Every test runs on both classes, so that a difference shows as one side failing.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, Future, InvalidStateError

import pytest

from parkit._backends._batch import BatchResult
from parkit._backends._future import BatchFuture

KINDS = [Future, BatchFuture]


def _result() -> BatchResult:
    return BatchResult([1], {})


@pytest.fixture(params=KINDS, ids=["stdlib", "parkit"])
def make(request: pytest.FixtureRequest) -> type[Future[BatchResult]]:
    kind: type[Future[BatchResult]] = request.param
    return kind


def test_pending_then_running_then_finished(make: type[Future[BatchResult]]) -> None:
    f = make()
    assert (f.done(), f.running(), f.cancelled()) == (False, False, False)
    assert f.set_running_or_notify_cancel() is True
    assert (f.done(), f.running(), f.cancelled()) == (False, True, False)
    assert f.cancel() is False
    value = _result()
    f.set_result(value)
    assert (f.done(), f.running(), f.cancelled()) == (True, False, False)
    assert f.result() is value
    assert f.exception() is None
    with pytest.raises(InvalidStateError):
        f.set_result(value)
    with pytest.raises(InvalidStateError):
        f.set_exception(ValueError())


def test_cancel_before_running(make: type[Future[BatchResult]]) -> None:
    f = make()
    seen: list[Future[BatchResult]] = []
    f.add_done_callback(seen.append)
    assert f.cancel() is True
    assert f.cancel() is True
    assert seen == [f]
    assert (f.done(), f.cancelled(), f.running()) == (True, True, False)
    assert f.set_running_or_notify_cancel() is False
    assert f.cancelled() is True
    with pytest.raises(CancelledError):
        f.result()
    with pytest.raises(CancelledError):
        f.exception()
    with pytest.raises(RuntimeError):
        f.set_running_or_notify_cancel()


def test_exception(make: type[Future[BatchResult]]) -> None:
    f = make()
    assert f.set_running_or_notify_cancel() is True
    err = ValueError("boom")
    f.set_exception(err)
    assert f.exception() is err
    with pytest.raises(ValueError, match=r"^boom$") as info:
        f.result()
    assert info.value is err


def test_timeout(make: type[Future[BatchResult]]) -> None:
    f = make()
    with pytest.raises(TimeoutError):
        f.result(timeout=0.01)
    with pytest.raises(TimeoutError):
        f.exception(timeout=0)


def test_callbacks_run_once_in_order_and_at_once_when_done(
    make: type[Future[BatchResult]],
) -> None:
    f = make()
    seen: list[str] = []
    f.add_done_callback(lambda _: seen.append("a"))
    f.add_done_callback(lambda _: seen.append("b"))
    assert f.set_running_or_notify_cancel() is True
    f.set_result(_result())
    assert seen == ["a", "b"]
    f.add_done_callback(lambda _: seen.append("c"))
    assert seen == ["a", "b", "c"]


def test_a_failing_callback_is_logged_not_raised(
    make: type[Future[BatchResult]], caplog: pytest.LogCaptureFixture
) -> None:
    f = make()
    seen: list[str] = []

    def bad(_: Future[BatchResult]) -> None:
        raise ValueError("in a callback")

    f.add_done_callback(bad)
    f.add_done_callback(lambda _: seen.append("after"))
    f.set_running_or_notify_cancel()
    f.set_result(_result())
    assert seen == ["after"]
    assert [r.name for r in caplog.records] == ["concurrent.futures"]
    assert caplog.records[0].exc_info is not None
    assert isinstance(caplog.records[0].exc_info[1], ValueError)


def test_result_waits_for_another_thread(make: type[Future[BatchResult]]) -> None:
    f = make()
    value = _result()
    waiting = threading.Event()

    def resolve() -> None:
        waiting.wait()
        f.set_running_or_notify_cancel()
        f.set_result(value)

    t = threading.Thread(target=resolve)
    t.start()
    waiting.set()
    assert f.result(timeout=60) is value
    t.join()


def test_batch_future_is_not_the_stdlib_class() -> None:
    # The point of it: the map path does without concurrent.futures at run
    # time (tests/test_imports.py pins the modules).
    assert not isinstance(BatchFuture(), Future)
