"""The framed pipe ends of parkit's own children (_core/_frames.py), and the shared block."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from typing import Any

import pytest

import tasks
from parkit._core import _context, _frames, _segments


def test_frames_read_back_whole_and_in_order() -> None:
    reader, writer = _frames.pipe()
    try:
        writer.send_bytes(b"")
        writer.send_bytes(b"small")
        writer.send_bytes(b"\x80")
        assert reader.recv_bytes() == b""
        assert reader.recv_bytes() == b"small"
        assert reader.recv_bytes() == b"\x80"
        assert not reader.poll(0)
    finally:
        reader.close()
        writer.close()


def test_a_frame_larger_than_the_pipe_arrives_whole() -> None:
    # Written in pieces while the reader reads in pieces: the frame does not fit
    # a pipe (64 KiB), and goes as header and bytes in two writes.
    data = os.urandom(3 << 20)
    reader, writer = _frames.pipe()
    sender = threading.Thread(target=writer.send_bytes, args=(data,))
    sender.start()
    try:
        got = reader.recv_bytes()
    finally:
        sender.join()
        reader.close()
        writer.close()
    assert type(got) is bytearray
    assert got == data


def test_frames_are_multiprocessing_frames() -> None:
    # One parser (the pool's WorkerChannel) reads both: the same bytes on the wire.
    r, w = os.pipe()
    reader = multiprocessing.connection.Connection(r, writable=False)
    writer = _frames.Writer(w)
    try:
        writer.send_bytes(b"abc" * 10000)
        assert reader.recv_bytes() == b"abc" * 10000
    finally:
        reader.close()
        writer.close()
    assert _frames.header(5) == (5).to_bytes(4, "big")
    assert _frames.header(0x80000000) == b"\xff\xff\xff\xff" + (0x80000000).to_bytes(8, "big")


def test_the_long_header_is_read() -> None:
    reader, writer = _frames.pipe()
    try:
        os.write(writer.fileno(), b"\xff\xff\xff\xff" + (3).to_bytes(8, "big") + b"xyz")
        assert reader.recv_bytes() == b"xyz"
    finally:
        reader.close()
        writer.close()


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (b"", "the pipe ended"),
        (b"\x00\x00", "the pipe ended in the middle of a frame"),
        ((10).to_bytes(4, "big") + b"abc", "the pipe ended in the middle of a frame"),
    ],
    ids=["nothing", "half-a-header", "half-a-frame"],
)
def test_a_writer_gone_mid_frame_is_eof(written: bytes, message: str) -> None:
    reader, writer = _frames.pipe()
    os.write(writer.fileno(), written)
    writer.close()
    try:
        with pytest.raises(EOFError) as info:
            reader.recv_bytes()
        assert str(info.value) == message
    finally:
        reader.close()


def test_a_closed_end_says_so() -> None:
    reader, writer = _frames.pipe()
    reader.close()
    reader.close()  # twice is fine
    assert reader.closed
    assert not writer.closed
    with pytest.raises(OSError, match="the pipe end is closed"):
        reader.recv_bytes()
    with pytest.raises(BrokenPipeError):
        writer.send_bytes(b"x")
    writer.close()
    with pytest.raises(OSError, match="the pipe end is closed"):
        writer.send_bytes(b"x")


def test_poll_waits_for_a_frame_or_the_end() -> None:
    reader, writer = _frames.pipe()
    try:
        assert not reader.poll(0.01)
        writer.close()
        assert reader.poll(None)  # the end of the pipe is readable
    finally:
        reader.close()


def test_ends_travel_to_a_started_child(context: str) -> None:
    # Pickled while the child starts (spawn, forkserver), inherited under fork.
    ctx: Any = multiprocessing.get_context(context)
    reader, writer = _frames.pipe()
    child = ctx.Process(target=tasks.send_frame, args=(writer, b"from the child"))
    _context.start_process(child, "print")
    writer.close()
    try:
        assert reader.recv_bytes() == b"from the child"
        with pytest.raises(EOFError):
            reader.recv_bytes()
    finally:
        child.join()
        reader.close()
    assert child.exitcode == 0


def test_a_block_is_shared_with_a_started_child_and_leaves_no_name(context: str) -> None:
    block = _segments.Block(64, "test block")
    mine = f"parkit-{os.getpid()}-b-"
    assert [n for n in os.listdir(_segments.DIR) if n.startswith(mine)] == []  # removed at once
    view = block.memoryview()
    assert bytes(view) == bytes(64)
    ctx: Any = multiprocessing.get_context(context)
    child = ctx.Process(target=tasks.fill_block, args=(block, 7))
    _context.start_process(child, "print")
    child.join()
    assert child.exitcode == 0
    assert bytes(view) == bytes([7]) * 64
    view.release()
    block.close()


def test_join_process_waits_then_returns_as_the_stdlib(context: str) -> None:
    ctx: Any = multiprocessing.get_context(context)
    ready, gate = ctx.Event(), ctx.Event()
    child = ctx.Process(target=tasks.wait_for, args=(ready, gate))
    with pytest.raises(AssertionError, match="can only join a started process"):
        _context.join_process(child, 0.01)
    _context.start_process(child, "print")
    assert ready.wait(60)
    _context.join_process(child, 0.05)
    assert child.is_alive()  # still running: the timeout passed
    gate.set()
    _context.join_process(child, 60)
    assert child.exitcode == 0
    child.close()
    with pytest.raises(ValueError, match="closed"):
        _context.join_process(child, 1)
