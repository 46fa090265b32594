"""Logging from workers: records reach the parent's handlers, under every start method.

Shows logging set up once, in the main process (a handler that writes to
standard output), and records logged with the ``logging`` module in ``spawn``
pool workers and in a ``spawn`` process arriving there, with the worker's
process name, filtered by the parent's levels.

What the stdlib version gets wrong: a ``spawn`` or ``forkserver`` child is a fresh
interpreter with no handlers: what its workers log goes nowhere the parent
configured (WARNING and above to the child's stderr, the rest nowhere), so the
tutorial's ``logger.info(...)`` in a worker prints nothing once logging is set up
under the ``__main__`` guard, as it should be. Under ``fork`` the children write
with copies of the parent's handlers instead (several processes appending to one
file). The tutorial's ``multiprocessing.get_logger()`` is the library's own
logger, for debugging ``multiprocessing`` itself.
"""

from __future__ import annotations

import logging
import sys

import parkit

log = logging.getLogger("app")


def work(x: int) -> int:
    log.info("processing %d", x)
    log.debug("not shown: the parent's level is INFO")
    return x * x


def worker() -> None:
    log.warning("Worker Function in its own process")


def main() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(processName)s] %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])

    log.info("main process starting")
    print("results:", parkit.map(work, range(3), context="spawn"))
    p = parkit.Process(worker, context="spawn", name="my-worker")
    p.start()
    p.join()
    log.info("main process done")


if __name__ == "__main__":
    main()
