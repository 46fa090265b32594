"""parkit.Queue: typed, closable, never silent, never deadlocked (SPEC §5)."""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import parkit
import sync_tasks as st

SLACK = 0.5

_values = hs.recursive(
    hs.none()
    | hs.booleans()
    | hs.integers()
    | hs.floats(allow_nan=False)
    | hs.text(max_size=20)
    | hs.binary(max_size=64),
    lambda inner: (
        hs.lists(inner, max_size=4)
        | hs.tuples(inner, inner)
        | hs.dictionaries(hs.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(hs.lists(_values, max_size=40))
def test_anything_put_comes_out_equal_and_in_order(items: list[Any]) -> None:
    q = parkit.Queue[Any]()
    for item in items:
        q.put(item)
    assert q.qsize() == len(items)
    assert [q.get(timeout=1) for _ in items] == items
    assert q.empty()


@given(hs.lists(hs.binary(min_size=1000, max_size=40_000), min_size=1, max_size=30))
def test_growing_and_compacting_keeps_order(blobs: list[bytes]) -> None:
    # Interleave puts and gets so the live region moves, grows and shrinks.
    q = parkit.Queue[bytes]()
    out: list[bytes] = []
    for k, blob in enumerate(blobs):
        q.put(blob)
        if k % 3 == 2:
            out.append(q.get(timeout=1))
    out.extend(q.get(timeout=1) for _ in range(q.qsize()))
    assert out == blobs
    # Memory is given back once a quieter spell shows it is not needed.
    q.put(b"small")
    assert q.get(timeout=1) == b"small"
    assert q.statistics().capacity <= 4 * 64 * 1024


def test_anything_sent_through_another_process_comes_back_equal_and_in_order(
    context: str,
) -> None:
    q_in, q_out = parkit.Queue[Any](), parkit.Queue[Any]()
    echo = parkit.Process(st.echo, (q_in, q_out), context=context)
    echo.start()
    sent = 0

    @settings(max_examples=10)
    @given(hs.lists(_values, max_size=20))
    def round_trip(items: list[Any]) -> None:
        nonlocal sent
        for item in items:
            q_in.put(item)
        sent += len(items)
        assert [q_out.get(timeout=10) for _ in items] == items

    try:
        round_trip()
    finally:
        q_in.close()
        assert echo.result(timeout=30) == sent
        echo.join(10)


def test_producer_and_consumer_processes(context: str) -> None:
    items: list[Any] = [1, "two", (3.0, None), {"four": [4]}, b"5" * 100_000]
    q = parkit.Queue[Any]()
    consumer = parkit.Process(st.consume_all, (q,), context=context)
    producer = parkit.Process(st.produce, (q, items * 20), context=context)
    consumer.start()
    producer.start()
    producer.join(30)
    assert producer.exitcode == 0
    q.close()
    assert consumer.result(timeout=30) == items * 20
    consumer.join(10)


def test_a_child_that_put_a_big_item_and_exits_never_blocks_join(context: str) -> None:
    # FAULTS F10: with the stdlib, join() deadlocks against the feeder thread.
    q = parkit.Queue[bytes]()
    p = parkit.Process(st.put_big_and_exit, (q, 1_000_000), context=context)
    start = time.monotonic()
    p.start()
    p.join(10)
    assert p.exitcode == 0
    assert time.monotonic() - start < 5
    assert q.get(timeout=1) == b"x" * 1_000_000


def test_a_producer_killed_mid_frame_leaves_nothing_half_written(context: str) -> None:
    # FAULTS F40: the stdlib's get(timeout=2) blocks for ever on the truncated frame.
    q = parkit.Queue[Any]()
    q.put("before")
    p = parkit.Process(st.die_mid_put, (q,), context=context)
    p.start()
    p.join(10)
    assert p.exitcode == -9
    assert q.get(timeout=1) == "before"
    start = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=1)
    assert time.monotonic() - start < 1 + SLACK
    q.put("after")  # the guard the dead producer held is free again
    assert q.get(timeout=1) == "after"


def test_unpicklable_items_raise_in_put_and_the_queue_goes_on() -> None:
    # FAULTS F27: the stdlib's put() returns and the consumer waits for ever.
    q = parkit.Queue[Any]()
    with pytest.raises(parkit.SerializationError, match="could not pickle the item") as info:
        q.put(threading.Lock())
    assert info.value.stage == "pickle"
    assert isinstance(info.value.__cause__, TypeError)
    assert q.qsize() == 0
    q.put(lambda x: x + 1)  # cloudpickle carries lambdas
    assert q.get(timeout=1)(1) == 2


def test_an_item_that_fails_to_unpickle_is_consumed_and_reported() -> None:
    q = parkit.Queue[Any]()
    q.put(_FailsToLoad())
    q.put("next")
    with pytest.raises(parkit.SerializationError, match="could not unpickle") as info:
        q.get(timeout=1)
    assert info.value.stage == "unpickle"
    assert q.get(timeout=1) == "next"


class _FailsToLoad:
    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse, ())


def _refuse() -> None:
    raise ValueError("refused")


@pytest.mark.parametrize("timeout", [0.2, 1.0])
def test_get_and_put_timeouts(timeout: float) -> None:
    q = parkit.Queue[int](maxsize=1)
    start = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=timeout)
    assert timeout - 0.01 <= time.monotonic() - start <= timeout + SLACK
    q.put(1)
    assert q.full()
    start = time.monotonic()
    with pytest.raises(queue.Full):
        q.put(2, timeout=timeout)
    assert timeout - 0.01 <= time.monotonic() - start <= timeout + SLACK
    with pytest.raises(queue.Full):
        q.put_nowait(2)
    assert q.get_nowait() == 1
    with pytest.raises(queue.Empty):
        q.get_nowait()


def test_a_bounded_put_wakes_when_room_is_made() -> None:
    q = parkit.Queue[int](maxsize=1)
    q.put(1)
    threading.Timer(0.2, q.get).start()
    start = time.monotonic()
    q.put(2, timeout=5)
    assert time.monotonic() - start < 0.2 + SLACK
    assert q.get(timeout=1) == 2


def test_close_ends_iteration_for_every_process(context: str) -> None:
    q = parkit.Queue[int]()
    consumers = [parkit.Process(st.consume_all, (q,), context=context) for _ in range(2)]
    for c in consumers:
        c.start()
    for i in range(100):
        q.put(i)
    q.close()
    got = [c.result(timeout=30) for c in consumers]
    for c in consumers:
        c.join(10)
    assert sorted(got[0] + got[1]) == list(range(100))
    assert q.closed
    with pytest.raises(ValueError, match="closed"):
        q.put(1)
    with pytest.raises(parkit.QueueClosed) as info:
        q.get(timeout=5)
    assert isinstance(info.value, EOFError)


def test_close_wakes_a_blocked_getter() -> None:
    q = parkit.Queue[int]()
    threading.Timer(0.2, q.close).start()
    start = time.monotonic()
    with pytest.raises(parkit.QueueClosed):
        q.get()
    assert time.monotonic() - start < 0.2 + SLACK


def test_a_queue_passes_to_pool_tasks(context: str) -> None:
    q = parkit.Queue[int]()
    with parkit.Pool(2, context=context) as pool:
        assert pool.map(st.pool_task_put, [(q, x) for x in range(10)]) == list(range(10))
    assert sorted(q.get(timeout=1) for _ in range(10)) == list(range(10))


def test_statistics_and_bad_arguments() -> None:
    q = parkit.Queue[str](maxsize=3)
    q.put("a")
    stats = q.statistics()
    assert (stats.size, stats.maxsize, stats.closed, stats.puts, stats.gets) == (1, 3, False, 1, 0)
    assert stats.nbytes >= 8
    assert q.maxsize == 3
    with pytest.raises(ValueError, match=r"maxsize must be an int >= 0 \(0: unbounded\), not -1"):
        parkit.Queue(-1)
    with pytest.raises(TypeError, match="maxsize must be an int"):
        parkit.Queue("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown start method"):
        parkit.Queue(context="nope")
    with pytest.raises(ValueError, match="timeout must be"):
        q.get(timeout=-1)


def test_the_guard_holds_across_a_remap_and_a_fork(context: str) -> None:
    # Regression: with fcntl record locks, unmapping the old data area (its
    # duplicate descriptor closed) silently dropped this process's guard, and
    # producers and consumers corrupted the frames. A forked child must not
    # share its parent's guard either.
    q = parkit.Queue[int]()
    segment = q._segment
    segment.lock()
    try:
        q._resize(segment.words, 256 * 1024, keep=0)
        assert parkit.run(st.guard_is_free, q, context=context, timeout=30) is False
    finally:
        segment.unlock()
    assert parkit.run(st.guard_is_free, q, context=context, timeout=30) is True


def test_a_waiter_killed_in_its_sleep_is_no_longer_counted(context: str) -> None:
    q, ready = parkit.Queue[int](), parkit.Event()
    p = parkit.Process(st.block_in_get, (q, ready), context=context)
    p.start()
    assert ready.wait(20)
    deadline = time.monotonic() + 10
    while q.statistics().waiters != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert q.statistics().waiters == 1
    p.kill()
    p.join(10)
    assert q.statistics().waiters == 0


def test_one_big_item_at_a_time_does_not_regrow_the_queue_each_time() -> None:
    q = parkit.Queue[bytes]()
    blob = b"b" * (1 << 20)
    capacities = []
    for _ in range(4):
        q.put(blob)
        assert q.get(timeout=1) == blob
        capacities.append(q.statistics().capacity)
    assert capacities == [capacities[0]] * 4
    assert capacities[0] >= 1 << 20


# ------------------------------------------------------- the cost of a put (issue #12)


class _Count(int):
    """An int subclass: not a plain item, so it takes parkit's own pickler."""


def test_plain_items_come_out_of_their_exact_type() -> None:
    # int, float, bool, None, complex and small str, bytes and bytearray are
    # pickled directly; everything else as before, subclasses included.
    items: list[Any] = [
        0, -1, 2**200, True, False, None, 1.5, -0.0, float("inf"),
        "", "héllo", b"", b"\x00" * 100, bytearray(b"ab"), 3 - 4j, _Count(7),
        "z" * 40_000, b"y" * 100_000, bytearray(b"w" * 20_000),  # large: parkit's pickler
    ]  # fmt: skip
    q = parkit.Queue[Any]()
    for item in items:
        q.put(item)
    out = [q.get(timeout=1) for _ in items]
    assert [type(x) for x in out] == [type(x) for x in items]
    assert out == items
    assert str(out[7]) == "-0.0"
    q.put(float("nan"))
    nan = q.get(timeout=1)
    assert type(nan) is float
    assert math.isnan(nan)


def test_puts_and_gets_nobody_waits_for_make_no_wake_up_call() -> None:
    q = parkit.Queue[int](maxsize=2)
    wakes = st.record_wakes(q)
    for k in range(5):
        q.put(k)
        q.put(k)
        assert (q.get(timeout=1), q.get(timeout=1)) == (k, k)
    assert wakes == []


def test_a_blocked_getter_is_woken_after_the_guard_is_left() -> None:
    q = parkit.Queue[str]()
    wakes = st.record_wakes(q)
    got: list[str] = []
    getter = threading.Thread(target=lambda: got.append(q.get(timeout=20)))
    getter.start()
    deadline = time.monotonic() + 20
    while q.statistics().waiters == 0:
        assert time.monotonic() < deadline, "the getter never started waiting"
        time.sleep(0.001)
    q.put("x")
    getter.join(20)
    assert got == ["x"]
    assert wakes == [False]
