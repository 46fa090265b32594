"""Capture an exception in a worker; rebuild it in the parent.

The worker turns an exception into an :class:`ExceptionRecord` (plain data that
always pickles): the exception itself, pickled on its own (type, ``args`` and
``__dict__``, exactly what ``pickle`` keeps, so ``SystemExit(3).code`` is still 3
in the parent), its traceback as tblib data, its formatted text, and the records
of its ``__cause__`` and ``__context__``. The parent rebuilds the original type
from that; when the exception can't be pickled in the worker or rebuilt in the
parent (a custom ``__init__``, an unpicklable attribute, nesting too deep) it
becomes :class:`parkit.RemoteError` carrying the type's name, the message and
the remote traceback text. Nothing here can raise on a bad exception: capture
and rebuild catch everything but ``KeyboardInterrupt``, so an error is never lost
and never turns into a hang.

tblib is used for tracebacks only. Its exception pickling
(``tblib.pickling_support.install``) rebuilds exceptions without calling their
``__init__``, which loses attributes that ``__init__`` derives from ``args``
(``SystemExit.code``, ``StopIteration.value``).
"""

from __future__ import annotations

import types
from types import TracebackType

from ..errors import RemoteError
from . import _wire

TYPE_CHECKING = False  # typing.TYPE_CHECKING: workers don't import typing (~0.5 MiB)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ExceptionRecord", "capture", "rebuild"]

# Chains longer than this are cut (a cycle or a runaway chain must not make the
# record unbounded).
_MAX_CHAIN = 16
# Tracebacks deeper than this keep their innermost frames only (a RecursionError
# would otherwise ship ~1000 identical frames).
_MAX_FRAMES = 100
_MESSAGE_LIMIT = 10_000


class ExceptionRecord:
    """An exception in transit: plain data that always pickles.

    A plain class, not a dataclass: ``dataclasses`` imports ``inspect``, ~1 MiB
    in every pool worker (docs/performance.md, "Import weight").
    """

    cause: ExceptionRecord | None
    context: ExceptionRecord | None
    #: An exception group's members, in order, each with its own traceback and chain.
    members: list[ExceptionRecord] | None

    def __init__(
        self,
        type_name: str,
        message: str,
        text: str,
        pickled: bytes | None,
        pickle_error: str,
        tb: dict[str, Any] | None,
        suppress_context: bool = False,
        notes: list[str] | None = None,
    ) -> None:
        self.type_name = type_name
        self.message = message
        self.text = text
        self.pickled = pickled
        self.pickle_error = pickle_error
        self.tb = tb
        self.cause = None
        self.context = None
        self.suppress_context = suppress_context
        self.notes = [] if notes is None else notes
        self.members = None

    def __repr__(self) -> str:
        return f"ExceptionRecord({self.type_name}: {self.message!r})"


def _qualified_name(tp: type) -> str:
    module = getattr(tp, "__module__", "")
    qualname = getattr(tp, "__qualname__", tp.__name__)
    if module in ("builtins", "__main__", "__mp_main__", None, ""):
        return str(qualname)
    return f"{module}.{qualname}"


def _safe_str(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        text = f"<str() failed: {type(e).__name__}>"
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + f"... [{len(text) - _MESSAGE_LIMIT} more characters]"
    return text


def _trim(tb: TracebackType | None) -> TracebackType | None:
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    if len(frames) <= _MAX_FRAMES:
        return frames[0] if frames else None
    return frames[-_MAX_FRAMES]


def _tb_data(tb: TracebackType | None) -> dict[str, Any] | None:
    if tb is None:
        return None
    # tblib loads when an exception travels, not in every worker at start.
    from tblib import Traceback  # noqa: PLC0415

    try:
        data: dict[str, Any] = Traceback(_trim(tb)).as_dict()
        return data
    except Exception:
        return None


def _format(exc: BaseException) -> str:
    # Imported when an exception travels: traceback brings linecache, tokenize
    # and textwrap (~2 ms of a cold parkit.run, and of every worker's start).
    import traceback  # noqa: PLC0415

    try:
        return "".join(traceback.format_exception(exc))
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        return f"{_qualified_name(type(exc))}: {_safe_str(exc)}\n"


def _pickle_exception(exc: BaseException) -> tuple[bytes | None, str]:
    # The chain and traceback are carried by the record, not by the pickle; the
    # standard reduction of BaseException keeps neither, so dumping ``exc`` as
    # is gives just type, args and __dict__ (which holds __notes__).
    try:
        return _wire.dumps(exc, main="reference"), ""
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        return None, f"it could not be pickled in the worker ({type(e).__name__}: {_safe_str(e)})"


def capture(exc: BaseException) -> ExceptionRecord:
    """Turn ``exc`` (with its traceback and chain) into an :class:`ExceptionRecord`.

    An exception reachable twice (the usual ``raise X from e`` inside
    ``except ... as e`` makes ``e`` both cause and context) is recorded once
    and rebuilt as one object, so a cycle in the chain comes back as the same
    cycle; chains longer than ``_MAX_CHAIN`` are cut.
    """
    return _capture(exc, 0, {})


def _capture(exc: BaseException, depth: int, memo: dict[int, ExceptionRecord]) -> ExceptionRecord:
    pickled, pickle_error = _pickle_exception(exc)
    record = ExceptionRecord(
        type_name=_qualified_name(type(exc)),
        message=_safe_str(exc),
        text=_format(exc) if depth == 0 else "",
        pickled=pickled,
        pickle_error=pickle_error,
        tb=_tb_data(exc.__traceback__),
        suppress_context=exc.__suppress_context__,
        notes=[n for n in getattr(exc, "__notes__", ()) if isinstance(n, str)],
    )
    memo[id(exc)] = record
    if depth < _MAX_CHAIN and isinstance(exc, BaseExceptionGroup):
        # The group's own pickle carries its members' types and args only.
        record.members = [
            memo.get(id(member)) or _capture(member, depth + 1, memo) for member in exc.exceptions
        ]
    if depth < _MAX_CHAIN:
        for attr in ("cause", "context"):
            linked = getattr(exc, f"__{attr}__")
            if linked is None:
                continue
            known = memo.get(id(linked))
            setattr(record, attr, known or _capture(linked, depth + 1, memo))
    return record


def _columnless_stub() -> types.CodeType:
    # tblib rebuilds each frame by raising from a stub "raise __traceback_maker"
    # compiled at the frame's line; Python 3.11+ then underlines the stub's
    # columns (0..23) under the *real* source line, pointing at the wrong
    # characters. This stub's location table says "line only, no columns"
    # (PEP 657 entry kind 13, the same on 3.11-3.13), so no carets are drawn.
    stub = compile("raise __traceback_maker", "<parkit-remote>", "exec")
    units = len(stub.co_code) // 2
    table = bytearray()
    while units > 0:
        chunk = min(units, 8)
        table += bytes((0x80 | (13 << 3) | (chunk - 1), 0))
        units -= chunk
    return stub.replace(co_linetable=bytes(table))


# Compiled on the first rebuilt traceback, not at import: compile() costs ~1 ms
# of every cold start, in the parent and in every spawn or forkserver worker
# (which import this module and never rebuild a traceback).
_STUB: types.CodeType | None = None


def _traceback(record: ExceptionRecord) -> TracebackType | None:
    if record.tb is None:
        return None
    from tblib import Traceback  # noqa: PLC0415 - see _tb_data

    global _STUB
    if _STUB is None:
        _STUB = _columnless_stub()
    try:
        frame: Any = Traceback.from_dict(record.tb)
        head: TracebackType | None = None
        tail: TracebackType | None = None
        while frame is not None:
            code = frame.tb_frame.f_code
            stub = _STUB.replace(
                co_firstlineno=frame.tb_lineno, co_filename=code.co_filename, co_name=code.co_name
            )
            f_globals = dict(frame.tb_frame.f_globals)
            f_globals["__traceback_maker"] = _Maker()
            try:
                exec(stub, f_globals)
            except _Maker as e:
                made = e.__traceback__.tb_next if e.__traceback__ is not None else None
                if tail is None:
                    head = made
                else:
                    tail.tb_next = made
                tail = made
            frame = frame.tb_next
        return head
    except Exception:
        return None


class _Maker(Exception):
    """Raised by the stub to make one traceback entry."""


def _rebuild_one(record: ExceptionRecord) -> BaseException:
    reason = record.pickle_error
    if record.pickled is not None:
        try:
            exc = _wire.loads(record.pickled)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            reason = f"it could not be rebuilt in the parent ({type(e).__name__}: {_safe_str(e)})"
        else:
            if isinstance(exc, BaseException):
                return exc
            reason = f"it unpickled as a {type(exc).__name__}"
    remote = RemoteError(record.type_name, record.message, record.text, reason)
    for note in record.notes:
        remote.add_note(note)
    return remote


def rebuild(record: ExceptionRecord, note: str | None = None) -> BaseException:
    """Rebuild the exception a worker captured, with traceback and chain.

    Args:
        record: what :func:`capture` produced in the worker.
        note: a PEP 678 note to add (where the exception was raised).

    Returns:
        The original type with the original args, or :class:`parkit.RemoteError`.
    """
    exc = _rebuild(record, {})
    if note is not None:
        exc.add_note(note)
    return exc


def _rebuild(record: ExceptionRecord, memo: dict[int, BaseException]) -> BaseException:
    done = memo.get(id(record))
    if done is not None:
        return done
    exc = _rebuild_one(record)
    memo[id(record)] = exc
    return _dress(exc, record, memo)


def _dress(
    exc: BaseException, record: ExceptionRecord, memo: dict[int, BaseException]
) -> BaseException:
    """Give ``exc`` (already in ``memo``) its members', traceback and chain."""
    if (
        record.members is not None
        and isinstance(exc, BaseExceptionGroup)
        and len(exc.exceptions) == len(record.members)
    ):
        # Members first: the group's context is often one of them
        # (``raise ExceptionGroup(..., [e])`` inside ``except ... as e``).
        for member, member_record in zip(exc.exceptions, record.members, strict=True):
            if id(member_record) not in memo:
                memo[id(member_record)] = member
                _dress(member, member_record, memo)
    tb = _traceback(record)
    if tb is not None:
        exc = exc.with_traceback(tb)
    if record.cause is not None:
        exc.__cause__ = _rebuild(record.cause, memo)
    if record.context is not None:
        exc.__context__ = _rebuild(record.context, memo)
    exc.__suppress_context__ = record.suppress_context
    return exc
