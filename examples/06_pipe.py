"""``parkit.Pipe``: two connected ends, one for each process.

Shows the tutorial's two-way conversation between a parent and a child, then a
child that dies before sending anything, and ``recv(timeout=...)``.

What the stdlib version gets wrong: the parent still holds its own copy of the
child's end (it made the pipe), so when the child dies without sending, the
kernel never reports end of file and ``parent_conn.recv()`` waits for ever. A
parkit end knows which process uses the other end, and ``recv()`` raises
``EOFError`` naming it within about half a second once that process is gone.
``multiprocessing``'s ``recv()`` has no timeout either.
"""

from __future__ import annotations

import os

import parkit


def worker(conn: parkit.Connection[str]) -> None:
    conn.send("Hello from the worker process")
    message = conn.recv(timeout=60)
    conn.send(f"Worker received message: {message}")
    conn.close()


def dies_silently(conn: parkit.Connection[str]) -> None:
    os._exit(1)  # never sends


def main() -> None:
    parent_conn, child_conn = parkit.Pipe[str]()
    p = parkit.Process(worker, args=(child_conn,))
    p.start()
    print(f"Main process received message: {parent_conn.recv(timeout=60)}")
    parent_conn.send("Hello from the main process")
    print(parent_conn.recv(timeout=60))
    p.join()

    parent_conn, child_conn = parkit.Pipe[str]()
    p = parkit.Process(dies_silently, args=(child_conn,))
    p.start()
    try:
        parent_conn.recv()  # no timeout: the stdlib would wait here for ever
    except EOFError as error:
        print("the child died without sending: EOFError, names its pid:", str(p.pid) in str(error))
    p.join()

    quiet, _other = parkit.Pipe[str]()
    try:
        quiet.recv(timeout=0.2)
    except TimeoutError:
        print("recv(timeout=0.2) with nothing sent: TimeoutError")


if __name__ == "__main__":
    main()
