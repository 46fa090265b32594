"""Log records from workers to the parent's ``logging`` handlers.

The parent takes a snapshot of its logging levels when it starts a worker
(:func:`parent_levels`): ``None`` when it never configured logging, and then
the worker does nothing at all (it does not even import ``logging``). Otherwise
the worker, before any user code of a task runs, sets those levels and puts
one :class:`_Forward` handler on the root logger in place of every handler it
has (fork copies the parent's: they would write each record a second time).
The handler pickles the record and writes it to the worker's result pipe at
once, so a record logged just before ``os._exit`` is already in the pipe; the
parent rebuilds it and passes it to ``logging.getLogger(name).handle``, where
its own handlers and their levels apply. The record keeps the worker's
``processName`` and ``process``.

Nothing of ``logging`` is imported at this module's import: a worker loads it
only when the parent configured logging.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
from collections.abc import Callable

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    import logging
    from typing import Any

    #: (root level, {logger name: level} of the loggers with one, logging.disable level)
    Levels = tuple[int, dict[str, int], int]

__all__ = ["emit", "install", "parent_levels", "record_bytes"]

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def parent_levels() -> Levels | None:
    """The levels workers should apply, or ``None`` if this process never set up logging.

    "Set up" means a handler other than a ``NullHandler`` somewhere, a logger
    level set, the root level changed from its default, or ``logging.disable``.
    """
    logging = sys.modules.get("logging")
    if logging is None:
        return None  # never imported here: nothing could have been configured
    root = logging.root
    manager = root.manager
    configured = root.level != logging.WARNING or bool(manager.disable)
    configured = configured or any(not isinstance(h, logging.NullHandler) for h in root.handlers)
    levels: dict[str, int] = {}
    for name, logger in list(manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue  # a PlaceHolder: no logger of that name yet
        if logger.level != logging.NOTSET:
            levels[name] = logger.level
            configured = True
        if not configured and any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            configured = True
    if not configured:
        return None
    return root.level, levels, manager.disable


def install(levels: Levels, send: Callable[[bytes], object]) -> None:
    """In a worker: apply the parent's ``levels`` and forward every record through ``send``.

    ``send`` writes one frame to the parent; it must be safe to call from any
    thread (user threads log too) and must not return before the bytes are in
    the pipe.
    """
    import logging  # noqa: PLC0415  (only workers of a parent that configured logging)

    root_level, named, disable = levels
    root = logging.getLogger()
    loggers: list[logging.Logger] = [root]
    loggers += [
        lg for lg in list(root.manager.loggerDict.values()) if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        # Inherited under fork (or added by a module the worker imported at
        # start): the parent's handlers run in the parent, on the forwarded
        # record. Here they would write it a second time.
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        # A logger that does not propagate in the parent would keep its records
        # from the root's handler here; the parent's own routing (it calls
        # that logger's handle()) still stops where the parent's propagate says.
        logger.propagate = True
    root.setLevel(root_level)
    for name, level in named.items():
        logging.getLogger(name).setLevel(level)
    logging.disable(disable)
    root.addHandler(_forward_handler(logging, send))


def _forward_handler(logging: Any, send: Callable[[bytes], object]) -> logging.Handler:
    formatter = logging.Formatter()  # formats an exception as the parent's default would

    class _Forward(logging.Handler):  # type: ignore[misc]
        """Send each record to the parent, synchronously."""

        def emit(self, record: logging.LogRecord) -> None:
            try:
                send(record_bytes(record, formatter))
            except RecursionError:
                raise
            except Exception:
                self.handleError(record)

    return _Forward()


def record_bytes(record: logging.LogRecord, formatter: logging.Formatter) -> bytes:
    """The record pickled for the parent.

    The exception travels as text (``exc_text``: a traceback object can't be
    pickled, and the parent's formatter prints that text). The message travels
    formatted, and ``msg``/``args`` apart as their own pickle: the parent puts
    them back when they unpickle there, so filters that read ``record.args``
    work; arguments that can't be pickled (or unpickled in the parent) are
    dropped and the formatted message is what the handlers print.
    """
    data = dict(record.__dict__)
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    data["exc_text"] = record.exc_text
    data["exc_info"] = None
    message = record.getMessage()
    try:
        original = pickle.dumps((record.msg, record.args), _PROTOCOL)
    except Exception:
        original = b""
    data["msg"] = message
    data["args"] = None
    data.pop("message", None)  # set by a Formatter; the parent's formats it again
    data["_parkit_msg_args"] = original
    try:
        return pickle.dumps(data, _PROTOCOL)
    except Exception:
        # An attribute from ``extra=`` that can't be pickled: its repr travels.
        for key, value in data.items():
            try:
                pickle.dumps(value, _PROTOCOL)
            except Exception:
                data[key] = repr(value)
        return pickle.dumps(data, _PROTOCOL)


def emit(payload: bytes | memoryview) -> None:
    """In the parent: hand a forwarded record to its logger's handlers.

    Never raises: it runs on a pool's I/O thread or a process's reader thread,
    which a handler's failure must not stop (``logging`` reports a handler's
    own errors on stderr, as for any record).
    """
    try:
        import logging  # noqa: PLC0415  (loaded already: the parent configured it)

        data = pickle.loads(payload)
        original = data.pop("_parkit_msg_args", b"")
        record = logging.makeLogRecord(data)
        if original:
            # Not restored when it fails here (a class this process can't
            # import): the message stays formatted, as the worker made it.
            with contextlib.suppress(Exception):
                record.msg, record.args = pickle.loads(original)
        logging.getLogger(record.name).handle(record)
    except Exception:
        return
