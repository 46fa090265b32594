"""Functions the worker-logging and affinity tests run in children (importable by all)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading

#: The logger the tests configure in the parent.
LOGGER = "parkit_test_logs"

_log = logging.getLogger(LOGGER)
_affinity_at_init: set[int] | None = None


def log_item(x: int) -> tuple[int, str]:
    """Log ``item x`` at INFO and ``debug x`` at DEBUG; return (pid, process name)."""
    _log.debug("debug %d", x)
    _log.info("item %d", x)
    return os.getpid(), multiprocessing.current_process().name


def log_then_exit(code: int) -> None:
    """Log a warning, then end the process at once (no cleanup, no flush)."""
    _log.warning("about to exit with %d", code)
    os._exit(code)


def log_unpicklable(_: object = None) -> str:
    """Log with an argument that can't be pickled; return the message it makes."""
    lock = threading.Lock()
    _log.info("holding %s", lock)
    return f"holding {lock}"


def log_exception(_: object = None) -> None:
    """Log a caught exception with its traceback."""
    try:
        raise ValueError("boom in the worker")
    except ValueError:
        _log.exception("it failed")


def log_from_thread(x: int) -> int:
    """Log from a thread of the user's own, as well as from the task."""
    thread = threading.Thread(target=_log.info, args=("from a thread %d", x))
    thread.start()
    thread.join()
    _log.info("from the task %d", x)
    return x


def configure_file_logging(path: str) -> None:
    """An initializer that sets up logging in the worker itself (the opt-out case)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(process)d %(message)s"))
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)


def remember_affinity() -> None:
    """An initializer: note the affinity the worker has when it runs."""
    global _affinity_at_init
    _affinity_at_init = os.sched_getaffinity(0)


def affinity(_: object = None) -> tuple[set[int], set[int] | None]:
    """This process's CPU affinity, and the one the initializer saw (if it ran)."""
    return os.sched_getaffinity(0), _affinity_at_init
