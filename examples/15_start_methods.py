"""Start methods: ``fork``, ``spawn`` and ``forkserver``, chosen per object.

Shows the tutorial's loop over start methods done with ``context=``, which every
parkit object that starts processes takes; parkit's default
(``parkit.default_context()``: ``forkserver`` on Linux, ``spawn`` elsewhere, or
``$PARKIT_START_METHOD``); that the global ``multiprocessing`` start method is
left exactly as it was; and the error for a name this platform lacks.

What the stdlib version gets wrong: the tutorial calls
``multiprocessing.set_start_method()`` in a loop. It is a process-wide setting
that may be set once: the second call raises ``RuntimeError: context has already
been set``, and a library that sets it changes every other library's processes
too. parkit never reads or sets it; ``context=`` applies to one object only.
"""

from __future__ import annotations

import multiprocessing

import parkit


def worker() -> str:
    """The class of this process: ForkProcess, SpawnProcess or ForkServerProcess."""
    return type(multiprocessing.current_process()).__name__


def main() -> None:
    before = multiprocessing.get_start_method(allow_none=True)
    for context in ["spawn", "fork", "forkserver"]:
        print(f"Using {context} start method: the worker is a", parkit.run(worker, context=context))
    ctx = multiprocessing.get_context("spawn")  # a multiprocessing context works too
    with parkit.Pool(2, context=ctx) as pool:
        print("a pool from a context object:", pool.map(len, ["ab", "cde"]))
    print("parkit's default here:", parkit.default_context().get_start_method())
    print(
        "global start method unchanged:",
        multiprocessing.get_start_method(allow_none=True) == before,
    )
    try:
        parkit.Process(worker, context="fork-server")
    except ValueError as error:
        print("context='fork-server':", error)


if __name__ == "__main__":
    main()
