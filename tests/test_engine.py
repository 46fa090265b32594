"""The process engine's own machinery: framing, big payloads, concurrency, bugs."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any

import pytest

import parkit
from parkit._backends._process import _channel, _engine, _workers
from parkit._backends._process._channel import WorkerChannel
from tasks import echo_big, poly, square

BOUND_S = 20.0
F_GETPIPE_SZ = 1032


def test_channel_frames_round_trip_in_both_header_forms() -> None:
    from parkit._core import _frames

    # The worker's ends (blocking) and the parent's, as the pool makes them.
    r, w = _frames.pipe()
    r2, w2 = _frames.pipe()
    channel = WorkerChannel(w, r2)
    try:
        assert channel.send(b"hello") is True
        assert r.recv_bytes() == b"hello"
        w2.send_bytes(b"one")
        w2.send_bytes(b"")
        # More than a default pipe holds: written from a thread, as a worker
        # would, while the channel reads (and grows the pipe once it saw it full).
        writer = threading.Thread(target=w2.send_bytes, args=(b"x" * 300_000,))
        writer.start()
        frames: list[bytes] = []
        deadline = time.monotonic() + 5
        while len(frames) < 3 and time.monotonic() < deadline:
            frames += channel.receive()
        writer.join()
        assert frames == [b"one", b"", b"x" * 300_000]
        assert fcntl.fcntl(r2.fileno(), F_GETPIPE_SZ) == _channel._PIPE_SIZE
        # A large task frame grows the task pipe before it is written.
        reader = threading.Thread(target=lambda: frames.append(bytes(r.recv_bytes())))
        reader.start()
        channel.send(b"y" * 300_000)
        while not channel.flush():
            time.sleep(0.001)
        reader.join()
        assert frames[-1] == b"y" * 300_000
        assert fcntl.fcntl(w.fileno(), F_GETPIPE_SZ) == _channel._PIPE_SIZE
        # The long form (-1, then 8 bytes) that frames over 2 GiB use.
        os.write(
            w2.fileno(), (-1).to_bytes(4, "big", signed=True) + (3).to_bytes(8, "big") + b"abc"
        )
        assert channel.receive() == [b"abc"]
        w2.close()
        assert channel.receive() == []
        assert channel.eof
    finally:
        channel.close()
        r.close()


def test_big_arguments_and_results_at_once_do_not_deadlock(context: str) -> None:
    # 4 MiB each way, several in flight per worker: every pipe fills both ways.
    blobs = [bytes([i]) * (4 << 20) for i in range(8)]
    t0 = time.monotonic()
    with parkit.Pool(2, context=context) as pool:
        out = pool.map(echo_big, blobs, chunksize=1)
    assert time.monotonic() - t0 < BOUND_S
    assert out == [b[::-1] for b in blobs]


def test_concurrent_callers_share_one_pool() -> None:
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def caller(k: int) -> None:
        try:
            results[k] = parkit.map(square, range(k * 100, k * 100 + 50), workers=2)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND_S)
    assert not errors
    assert results == {k: [x * x for x in range(k * 100, k * 100 + 50)] for k in range(4)}


def test_a_bug_in_the_io_thread_fails_callers_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Any) -> None:
        raise RuntimeError("simulated engine bug")

    monkeypatch.setattr(_engine.ProcessEngine, "_check_timeouts", broken)
    seen: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(str(args.exc_value)))
    with parkit.Pool(1) as pool:
        t0 = time.monotonic()
        with pytest.raises(parkit.PoolBroken, match="simulated engine bug"):
            pool.map(poly, range(5))
        assert time.monotonic() - t0 < BOUND_S
    assert seen == ["simulated engine bug"]  # and the thread's traceback was reported


def test_workers_exit_by_themselves_at_shutdown(
    context: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under fork, siblings inherit the parent's end of each task pipe, so only an
    # EXIT frame (not EOF) ends a worker: with a 30 s grace before the kill, a
    # shutdown that relied on EOF would take 30 s.
    monkeypatch.setattr(_workers, "EXIT_GRACE", 30.0)
    pool = parkit.Pool(3, context=context)
    assert pool.map(square, range(6)) == [x * x for x in range(6)]
    t0 = time.monotonic()
    pool.shutdown()
    assert time.monotonic() - t0 < BOUND_S / 2


def test_interrupt_skips_the_jobs_queued_behind_the_interrupted_one() -> None:
    # Ctrl-C in a map: the worker running the call is killed. The job it had
    # waiting in its pipe must not go to the replacement worker (which would
    # run it to the end, and the interpreter's exit would wait for it).
    from parkit._backends._batch import NOT_RUN, Batch, Call, new_call_id

    engine = _engine.ProcessEngine(1)
    try:
        call = Call(new_call_id(), time.sleep, star=False)
        futures = [engine.submit_batch(Batch(call, i, [60])) for i in range(2)]
        deadline = time.monotonic() + BOUND_S
        while not all(f.running() for f in futures):  # both sent to the worker
            assert time.monotonic() < deadline
            time.sleep(0.01)
        engine.interrupt(call)
        for f in futures:
            assert f.result(timeout=BOUND_S).values == [NOT_RUN]
    finally:
        engine.terminate()
