"""What a child inherits from its parent, and how to hand it what it needs.

Shows a global that the main process changes before starting children: a
``fork`` child sees the change (it is a copy of the parent), a ``spawn`` or
``forkserver`` child does not (it is a fresh interpreter that imported the script
and saw only its top level). Then three ways that work under every start method:
an argument, a closure, and a pool initializer that sets a worker's globals.

What the stdlib version gets wrong: nothing warns that the two kinds of children
see different globals, so code that relies on inheritance works under ``fork`` on
Linux and silently reads stale values on macOS and Windows (``spawn``), or under
``forkserver`` (the Linux default from Python 3.14). parkit can't change what a
fresh interpreter sees, so it never picks ``fork`` by default — you meet the
difference on your own machine, not in production — and it makes the explicit
ways easy: closures and lambdas travel by value, and an initializer's globals are
the ones the tasks of your script read.
"""

from __future__ import annotations

from collections.abc import Callable

import parkit

SETTING = "as the script's top level set it"
WORKER_SETTING = "not set"


def read_setting() -> str:
    return SETTING


def read_argument(setting: str) -> str:
    return setting


def make_reader(setting: str) -> Callable[[], str]:
    return lambda: setting  # a closure: carries `setting` with it


def setup_worker(setting: str) -> None:
    global WORKER_SETTING
    WORKER_SETTING = setting


def read_worker_setting(_: int) -> str:
    return WORKER_SETTING


def main() -> None:
    global SETTING
    SETTING = "changed by the main process"
    for method in ("fork", "spawn", "forkserver"):
        print(f"{method:>10}: the global reads {parkit.run(read_setting, context=method)!r}")
    for method in ("fork", "spawn", "forkserver"):
        as_argument = parkit.run(read_argument, SETTING, context=method)
        as_closure = parkit.run(make_reader(SETTING), context=method)
        print(f"{method:>10}: as an argument {as_argument!r}, in a closure {as_closure!r}")
    with parkit.Pool(2, context="spawn", initializer=setup_worker, initargs=(SETTING,)) as pool:
        print("spawn pool, set by the initializer:", set(pool.map(read_worker_setting, range(4))))


if __name__ == "__main__":
    main()
