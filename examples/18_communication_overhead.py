"""Communication overhead: what crosses between processes, and what it costs.

Shows the tutorial's sender and receiver, two processes joined by a
``parkit.Pipe``; the same with a sender that dies before sending; and the size of
what a task argument costs to send: a 4 MB NumPy array is pickled and copied to
the worker for every task, a ``parkit.SharedArray`` holding the same numbers
travels as a small handle while the worker maps the same memory. The sizes are
exact; the timings are printed for you to read, and vary with the machine.

What the stdlib version gets wrong: when the tutorial's sender dies before it
sends (an exception, a crash), the receiver's ``recv()`` waits for ever — the
parent still holds a copy of the sender's end, so the pipe never reports end of
file. A parkit ``Connection`` knows which process uses its other end and raises
``EOFError`` once that process is gone. Also, the stdlib can't pass shared memory
(``multiprocessing.Array``, ``SharedMemory`` objects by name) to pool tasks as
an argument, so the tutorial's advice "minimize data transfer" has no tool behind
it; with parkit a ``SharedArray`` is an ordinary argument.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable

import numpy as np

import parkit


def sender(conn: parkit.Connection[list[str]]) -> None:
    conn.send(["data"])
    conn.close()


def dies_before_sending(conn: parkit.Connection[list[str]]) -> None:
    os._exit(1)


def receiver(conn: parkit.Connection[list[str]]) -> str:
    try:
        return repr(conn.recv(timeout=60))
    except EOFError as error:
        return f"EOFError ({error})"


def total(numbers: np.ndarray | parkit.SharedArray) -> float:
    return float(np.asarray(numbers).sum())


def pipe_between(send_with: Callable[[parkit.Connection[list[str]]], None]) -> str:
    parent_conn, child_conn = parkit.Pipe[list[str]]()
    p1 = parkit.Process(send_with, args=(parent_conn,))
    p2 = parkit.Process(receiver, args=(child_conn,))
    p1.start()
    p2.start()
    p1.join()
    received = p2.result(timeout=60)
    p2.join()
    return received


def main() -> None:
    print("the receiver got", pipe_between(sender))
    print("the sender died; the receiver got", pipe_between(dies_before_sending).split(" (")[0])

    numbers = np.ones(500_000)  # 4 MB of float64
    with parkit.SharedArray.copy_of(numbers) as shared:
        print(
            f"an ndarray argument pickles to {len(pickle.dumps(numbers)) // 1_000_000} MB;"
            f" a SharedArray to under 1 KB: {len(pickle.dumps(shared)) < 1000}"
        )
        parkit.map(total, [shared] * 2)  # start the workers before timing
        start = time.perf_counter()
        copied = parkit.map(total, [numbers] * 8)
        copied_s = time.perf_counter() - start
        start = time.perf_counter()
        mapped = parkit.map(total, [shared] * 8)
        shared_s = time.perf_counter() - start
        print("same results:", copied == mapped == [500_000.0] * 8)
        print(f"8 tasks: ndarray {copied_s * 1000:.0f} ms, SharedArray {shared_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
