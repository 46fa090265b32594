"""Exit codes: what ``exitcode`` means, and where a target's return value goes.

Shows the tutorial's worker that ends with ``return 1``, then the ways a process
really sets its exit code — ``sys.exit(3)``, an exception, ``os._exit(7)``, a
signal — each with its ``exitcode`` and what ``result()`` gives the parent.

What the stdlib version gets wrong: the tutorial's ``return 1  # Exit code`` does
not set the exit code: a target's return value is thrown away and the process
exits with 0, so the check it prints says "success". parkit's ``exitcode`` is the
same as the stdlib's (so ported code reading it is unchanged), and ``result()``
returns the 1; ``sys.exit(3)`` comes back as ``SystemExit(3)``, an exception as
itself, and a process that died without reporting (``os._exit``, a signal) as
``parkit.WorkerCrashed`` with the exit code and the signal.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable

import parkit


def returns_one() -> int:
    print(f"Worker Function running on {multiprocessing.current_process().name}", flush=True)
    return 1  # not an exit code: the return value


def calls_exit() -> None:
    sys.exit(3)


def raises() -> None:
    raise RuntimeError("failed")


def exits_hard() -> None:
    os._exit(7)


def killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def outcome(p: parkit.Process[object]) -> str:
    try:
        return f"result() returned {p.result(timeout=60)!r}"
    except parkit.WorkerCrashed as error:
        name = error.signal.name if error.signal is not None else None
        return f"WorkerCrashed(exitcode={error.exitcode}, signal={name})"
    except BaseException as error:  # SystemExit included: it is what the target raised
        return f"result() raised {error!r}"


def main() -> None:
    targets: list[Callable[[], object]] = [returns_one, calls_exit, raises, exits_hard, killed]
    for target in targets:
        p = parkit.Process(target, name="worker")
        p.start()
        p.join()
        print(f"{target.__name__:>11}: Exit Code: {p.exitcode}; {outcome(p)}")


if __name__ == "__main__":
    main()
