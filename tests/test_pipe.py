"""parkit.Pipe and parkit.Connection (SPEC §5; FAULTS F26, F40).

In-process cases check the transport (frames, timeouts, EOF, pickling errors);
cases with a child run under every start method through the ``context`` fixture,
each bounded, and join their child so that nothing is left behind.
"""

from __future__ import annotations

import os
import pickle
import select
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hostile
import parkit
from parkit._core._channel import HEADER as _HEADER

# Every child must start, do its part and end well within this.
BOUND_S = 20.0


@pytest.fixture
def duplex() -> Iterator[tuple[parkit.Connection[Any], parkit.Connection[Any]]]:
    a, b = parkit.Pipe[Any]()
    with a, b:
        yield a, b


# -- children (module level: spawn and forkserver import them) ---------------


def echo(conn: parkit.Connection[Any], n: int) -> None:
    for _ in range(n):
        conn.send(conn.recv(timeout=BOUND_S))


def call_and_send(conn: parkit.Connection[Any]) -> None:
    fn = conn.recv(timeout=BOUND_S)
    conn.send((fn(20), os.getpid()))


def echo_until_empty(conn: parkit.Connection[Any]) -> None:
    while data := conn.recv_bytes(timeout=BOUND_S):
        conn.send(pickle.loads(data))


def exit_unused(conn: parkit.Connection[Any]) -> None:
    os._exit(1)


def send_huge(conn: parkit.Connection[Any]) -> None:
    conn.send(b"x" * 50_000_000)  # blocks once the socket buffer is full


# -- in-process ----------------------------------------------------------------


def test_pipe_is_generic_at_runtime_and_returns_two_connections() -> None:
    a, b = parkit.Pipe[int]()
    with a, b:
        assert isinstance(a, parkit.Connection)
        assert isinstance(b, parkit.Connection)
        assert (a.readable, a.writable, b.readable, b.writable) == (True,) * 4
        assert repr(parkit.Connection) == "<class 'parkit.Connection'>"
        a.send(41)
        assert b.recv() == 41
        b.send(42)
        assert a.recv() == 42


@pytest.mark.parametrize("context", [None, "spawn", "fork", "forkserver"])
def test_pipe_accepts_every_context(context: str | None) -> None:
    a, b = parkit.Pipe[str](context=context)
    with a, b:
        a.send("x")
        assert b.recv(timeout=1) == "x"


def test_pipe_rejects_an_unknown_context() -> None:
    with pytest.raises(ValueError, match="unknown start method 'bogus'"):
        parkit.Pipe(context="bogus")


def test_lambdas_and_closures_travel(duplex: tuple[parkit.Connection[Any], ...]) -> None:
    a, b = duplex
    k = 3
    a.send(lambda x: x * k)
    assert b.recv(timeout=1)(5) == 15


def test_one_way_pipe_refuses_the_wrong_direction() -> None:
    r, w = parkit.Pipe[int](duplex=False)
    with r, w:
        assert (r.readable, r.writable) == (True, False)
        assert (w.readable, w.writable) == (False, True)
        with pytest.raises(OSError, match="can only receive"):
            r.send(1)
        with pytest.raises(OSError, match="can only send"):
            w.recv()
        with pytest.raises(OSError, match="can only send"):
            w.poll()
        w.send(7)
        assert r.recv(timeout=1) == 7


def test_unpicklable_send_raises_and_writes_nothing(
    duplex: tuple[parkit.Connection[Any], ...],
) -> None:
    a, b = duplex
    with pytest.raises(parkit.SerializationError) as info:
        a.send(threading.Lock())
    err = info.value
    assert (err.direction, err.stage) == ("argument", "pickle")
    assert isinstance(err.__cause__, TypeError)
    assert not b.poll(0.1)
    with pytest.raises(parkit.SerializationError):
        a.send(hostile.ErrorAtPickle())
    a.send("still usable")
    assert b.recv(timeout=1) == "still usable"


@pytest.mark.parametrize("obj", [hostile.ErrorAtUnpickle(), hostile.ExitAtUnpickle()])
def test_unpicklable_on_recv_raises_and_consumes_the_frame(
    duplex: tuple[parkit.Connection[Any], ...], obj: Any
) -> None:
    a, b = duplex
    a.send(obj)
    a.send("next")
    with pytest.raises(parkit.SerializationError) as info:
        b.recv(timeout=1)
    assert info.value.stage == "unpickle"
    assert info.value.__cause__ is not None
    assert b.recv(timeout=1) == "next"


@pytest.mark.parametrize("timeout", [0.0, 0.3, 1.0])
def test_recv_timeout(duplex: tuple[parkit.Connection[Any], ...], timeout: float) -> None:
    a, _ = duplex
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="no object received"):
        a.recv(timeout=timeout)
    assert abs(time.monotonic() - start - timeout) < 0.5


def test_poll(duplex: tuple[parkit.Connection[Any], ...]) -> None:
    a, b = duplex
    assert not a.poll()
    start = time.monotonic()
    assert not a.poll(0.3)
    assert 0.2 < time.monotonic() - start < 0.8
    b.send(1)
    assert a.poll(1)
    assert a.recv(timeout=0) == 1
    b.close()
    assert a.poll(1)  # EOF: recv would not wait


def test_eof_after_the_peer_closes_delivers_what_was_sent_first() -> None:
    a, b = parkit.Pipe[int]()
    with a:
        b.send(1)
        b.send(2)
        b.close()
        assert a.recv(timeout=1) == 1
        assert a.recv(timeout=1) == 2
        with pytest.raises(EOFError, match="closed"):
            a.recv(timeout=1)
        with pytest.raises(EOFError):
            a.recv()


def test_closed_connection_refuses_everything() -> None:
    a, b = parkit.Pipe[int]()
    b.close()
    with a:
        pass
    assert a.closed
    a.close()  # twice is harmless
    for op in (lambda: a.send(1), a.recv, a.poll, a.fileno):
        with pytest.raises(OSError, match="closed"):
            op()


def test_send_bytes_and_recv_bytes(duplex: tuple[parkit.Connection[Any], ...]) -> None:
    a, b = duplex
    a.send_bytes(b"raw")
    a.send_bytes(memoryview(b"x" * 200_000))
    assert b.recv_bytes(timeout=1) == b"raw"
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(b.recv_bytes(timeout=5)))
    reader.start()
    reader.join(10)
    assert got == [b"x" * 200_000]


def test_a_partial_frame_then_writer_closed_is_eof() -> None:
    r, w = parkit.Pipe[bytes](duplex=False)
    with r:
        os.write(w.fileno(), _HEADER.pack(0, 1000) + b"half")
        w.close()
        start = time.monotonic()
        with pytest.raises(EOFError, match="unfinished frame"):
            r.recv(timeout=2)
        assert time.monotonic() - start < 1


def test_a_partial_frame_times_out_and_completes_later() -> None:
    r, w = parkit.Pipe[bytes](duplex=False)
    with r, w:
        data = pickle.dumps(b"y" * 1000)
        frame = _HEADER.pack(0, len(data)) + data
        os.write(w.fileno(), frame[:100])
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="100 bytes of it so far"):
            r.recv(timeout=0.5)
        assert abs(time.monotonic() - start - 0.5) < 0.5
        os.write(w.fileno(), frame[100:])
        assert r.recv(timeout=1) == b"y" * 1000


def test_pickling_outside_a_process_start_names_the_queue(
    duplex: tuple[parkit.Connection[Any], ...],
) -> None:
    a, b = duplex
    with pytest.raises(parkit.SerializationError, match=r"parkit\.Queue"):
        pickle.dumps(a)
    with pytest.raises(parkit.SerializationError, match=r"parkit\.Queue"):
        b.send(a)
    b.send("usable")
    assert a.recv(timeout=1) == "usable"


def test_concurrent_sends_never_interleave(duplex: tuple[parkit.Connection[Any], ...]) -> None:
    a, b = duplex
    per_thread, size = 10, 150_000
    got: list[bytes] = []

    def read() -> None:
        for _ in range(4 * per_thread):
            got.append(b.recv(timeout=BOUND_S))

    def write(tag: int) -> None:
        for _ in range(per_thread):
            a.send(bytes([tag]) * size)

    threads = [threading.Thread(target=read)]
    threads += [threading.Thread(target=write, args=(tag,)) for tag in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND_S)
    assert len(got) == 4 * per_thread
    assert all(len(x) == size and x == bytes([x[0]]) * size for x in got)


def _objects() -> st.SearchStrategy[Any]:
    leaves = (
        st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=50)
        | st.binary(max_size=200)
        | st.none()
        | st.booleans()
    )
    return st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=5)
            | st.tuples(inner, inner)
            | st.dictionaries(st.text(max_size=10), inner, max_size=5)
        ),
        max_leaves=20,
    )


@given(st.lists(_objects(), max_size=20), st.booleans())
def test_objects_arrive_equal_and_in_order(objs: list[Any], duplex: bool) -> None:
    r, w = parkit.Pipe[Any](duplex=duplex)
    with r, w:

        def write() -> None:
            for obj in objs:
                w.send(obj)

        writer = threading.Thread(target=write)
        writer.start()
        got = [r.recv(timeout=BOUND_S) for _ in objs]
        writer.join(BOUND_S)
        assert got == objs
        assert not r.poll()


# -- across processes, under every start method --------------------------------


def test_round_trip_both_ways(context: str) -> None:
    objs: list[Any] = [1, "two", [3.0, {"four": (5, b"six")}], None, b"x" * 300_000]
    a, b = parkit.Pipe[Any](context=context)
    with a, b, parkit.Process(echo, (b, len(objs)), context=context) as p:
        p.start()
        for obj in objs:
            a.send(obj)
            assert a.recv(timeout=BOUND_S) == obj
        assert p.result(timeout=BOUND_S) is None


def test_a_lambda_reaches_the_child_and_its_result_comes_back(context: str) -> None:
    a, b = parkit.Pipe[Any](context=context)
    with a, b, parkit.Process(call_and_send, kwargs={"conn": b}, context=context) as p:
        p.start()
        a.send(lambda x: x + 1)
        assert a.recv(timeout=BOUND_S) == (21, p.pid)


def test_generated_objects_cross_processes(context: str) -> None:
    a, b = parkit.Pipe[Any](context=context)
    with a, b, parkit.Process(echo_until_empty, (b,), context=context) as p:
        p.start()

        @settings(max_examples=10)
        @given(st.lists(_objects(), max_size=10))
        def round_trip(objs: list[Any]) -> None:
            for obj in objs:
                a.send(obj)
            assert [a.recv(timeout=BOUND_S) for _ in objs] == objs

        round_trip()
        a.send_bytes(b"")
        assert p.result(timeout=BOUND_S) is None


def test_f26_dead_child_gives_eof_though_the_parent_keeps_its_end(context: str) -> None:
    parent_conn, child_conn = parkit.Pipe[int](context=context)
    with parent_conn, child_conn:
        p = parkit.Process(exit_unused, (child_conn,), context=context)
        p.start()
        p.join(BOUND_S)
        assert p.exitcode == 1
        start = time.monotonic()
        with pytest.raises(EOFError, match=f"peer process {p.pid} died"):
            parent_conn.recv()  # the stdlib waits here for ever
        assert time.monotonic() - start < 2
        p.close()


def test_a_dead_peer_is_eof_even_with_a_zero_timeout(context: str) -> None:
    # The look at the peer comes a millisecond into a wait, and on the last try
    # before a timeout: recv(timeout=0) still reports the death, not a timeout.
    parent_conn, child_conn = parkit.Pipe[int](context=context)
    with parent_conn, child_conn:
        p = parkit.Process(exit_unused, (child_conn,), context=context)
        p.start()
        p.join(BOUND_S)
        assert p.exitcode == 1
        with pytest.raises(EOFError, match=f"peer process {p.pid} died"):
            parent_conn.recv(timeout=0)
        with pytest.raises(EOFError, match=f"peer process {p.pid} died"):
            parent_conn.recv(timeout=0.01)
        p.close()


@pytest.mark.parametrize("duplex", [True, False], ids=["socket-read", "pipe-poll"])
def test_a_reply_that_comes_at_once_reads_nothing_of_proc(
    monkeypatch: pytest.MonkeyPatch, duplex: bool
) -> None:
    # A round trip: the reply arrives while recv() waits, before the first look
    # at the peer is due. The peer is not looked up in /proc for it (that read
    # cost more than the rest of the round trip). A duplex end waits in a read
    # that gives up after PEER_CHECK_S; a one-way end waits in poll().
    from parkit._core import _channel, _peer

    r, w = parkit.Pipe[int](duplex=duplex)
    with r, w:
        assert r._ch._timed is duplex
        looks: list[object] = []

        def is_alive(peer: object) -> bool:
            looks.append(peer)
            return True

        monkeypatch.setattr(_channel, "is_alive", is_alive)
        replies = [7]
        waits: list[str] = []
        real_poll, real_read = select.poll, os.read

        class Poller:
            # select.poll(), that sends the reply as the reader starts waiting.
            def __init__(self) -> None:
                self._poller = real_poll()

            def register(self, fd: int, events: int) -> None:
                self._poller.register(fd, events)

            def poll(self, ms: int | None = None) -> list[tuple[int, int]]:
                waits.append("poll")
                if replies:
                    w.send(replies.pop())
                return self._poller.poll(ms)

        def read(fd: int, n: int) -> bytes:
            # os.read(), that sends the reply as a blocking read starts.
            if fd == r.fileno():
                waits.append("read")
                if replies:
                    w.send(replies.pop())
            return real_read(fd, n)

        monkeypatch.setattr(select, "poll", Poller)
        monkeypatch.setattr(os, "read", read)
        r._ch.learn(_peer.identify(os.getpid()))  # a peer to look at, as after a start
        assert r.recv() == 7
        assert looks == []
        assert waits == (["read"] if duplex else ["poll", "read"])


def test_a_non_blocking_descriptor_still_waits_without_spinning(
    duplex: tuple[parkit.Connection[Any], ...],
) -> None:
    # Someone made the end non-blocking (it is reachable through fileno()): the
    # read that should wait fails at once, and the wait falls back to poll().
    a, b = duplex
    os.set_blocking(a.fileno(), False)
    cpu = time.thread_time()
    with pytest.raises(TimeoutError, match="no object received"):
        a.recv(timeout=1.0)
    assert time.thread_time() - cpu < 0.5  # a busy loop would use about 1 s
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.append(a.recv(timeout=BOUND_S)))
    reader.start()
    b.send(5)
    reader.join(BOUND_S)
    assert got == [5]


def exit_unused_nested(conns: list[parkit.Connection[Any]]) -> None:
    os._exit(1)


@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_an_end_rebuilt_in_a_child_announces_the_child(context: str) -> None:
    # Nested in a list, the end is not seen by Process.start(): the child
    # announces itself when it unpickles it (under fork nothing would).
    parent_conn, child_conn = parkit.Pipe[int](context=context)
    with parent_conn, child_conn:
        p = parkit.Process(exit_unused_nested, ([child_conn],), context=context)
        p.start()
        p.join(BOUND_S)
        start = time.monotonic()
        with pytest.raises(EOFError, match=f"peer process {p.pid} died"):
            parent_conn.recv()
        assert time.monotonic() - start < 2
        p.close()


def test_f40_writer_killed_mid_frame_never_hangs(context: str) -> None:
    parent_conn, child_conn = parkit.Pipe[bytes](context=context)
    with parent_conn, child_conn:
        p = parkit.Process(send_huge, (child_conn,), context=context)
        p.start()
        try:
            # Some of the frame has arrived (the rest can't: nobody reads yet).
            assert select.select([parent_conn.fileno()], [], [], BOUND_S)[0]
            time.sleep(0.2)
        finally:
            p.kill()
            p.join(BOUND_S)
        start = time.monotonic()
        with pytest.raises((EOFError, TimeoutError)):
            parent_conn.recv(timeout=2)
        assert time.monotonic() - start < 3
        p.close()


def test_a_connection_is_refused_as_a_pool_task_argument(context: str) -> None:
    a, b = parkit.Pipe[int]()
    with a, b:
        with pytest.raises(parkit.SerializationError, match=r"parkit\.Queue"):
            parkit.map(hostile.identity, [b], context=context, workers=1)
        with parkit.Pool(1, context=context) as pool:
            future = pool.submit(hostile.identity, b)
            with pytest.raises(parkit.SerializationError, match=r"parkit\.Queue"):
                future.result(timeout=BOUND_S)
