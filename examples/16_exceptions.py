"""Exceptions raised in a child: caught in the parent, as the serial code would.

Shows the tutorial's ``try: p.start(); p.join() except Exception`` — which catches
nothing, with parkit as with the stdlib, because ``start()`` and ``join()`` don't
raise what the child raised — then the ways that do: ``p.result()``,
``parkit.run``, and ``parkit.map``, which raises the lowest failing item's
exception (as the serial loop would) or, with ``errors="return"``, puts each
exception in its item's place. The exception arrives with its own type and
message, the child's frames in its traceback and a note naming where it ran.

What the stdlib version gets wrong: an exception in a ``multiprocessing.Process``
target is printed on the child's stderr and lost; the parent's ``except`` never
runs, and all that is left is ``exitcode == 1``. (The child still prints it here
too, and exits with 1, so code that reads ``exitcode`` is unchanged.)
"""

from __future__ import annotations

import traceback

import parkit


def faulty_worker() -> None:
    raise ValueError("Something went wrong!")


def parse(text: str) -> int:
    return int(text)


def main() -> None:
    p = parkit.Process(faulty_worker)
    try:
        p.start()
        p.join()
        print("start() and join() raised nothing; exit code", p.exitcode)
    except Exception as e:
        print(f"Caught exception: {e}")

    try:
        p.result()
    except ValueError as e:
        print(f"p.result() raised: {e!r}")
        print("its note:", e.__notes__[0].split(" (pid")[0])
        frames = traceback.extract_tb(e.__traceback__)
        print("the traceback ends in the child's frame:", frames[-1].name)

    try:
        parkit.run(faulty_worker)
    except ValueError as e:
        print(f"parkit.run raised: {e!r}")

    rows = ["1", "2", "x", "4", "y"]
    try:
        parkit.map(parse, rows)
    except ValueError as e:
        print(f"parkit.map raised the first bad item's error: {e}")
    print("errors='return':", parkit.map(parse, rows, errors="return"))


if __name__ == "__main__":
    main()
