"""Task functions for the cold-start rows (IMPORT, D-cold), importing nothing.

A fresh interpreter per measurement runs one of ``run.py``'s snippets; the
children find these functions by reference in every library alike, and import
no more than this file to do so.
"""

from __future__ import annotations

import sys


def square(x: int) -> int:
    return x * x


def reply(conn: object, x: int) -> None:
    """The bare stdlib's one call: send ``x*x`` on a ``Pipe`` end."""
    conn.send(x * x)  # type: ignore[attr-defined]
    conn.close()  # type: ignore[attr-defined]


def footprint(_: object) -> tuple[int, int]:
    """This worker's module count and private memory in KiB (Linux)."""
    kib = 0
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    kib += int(line.split()[1])
    except OSError:
        kib = -1
    return len(sys.modules), kib
