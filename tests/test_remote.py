"""Remote exceptions (SPEC §3): what the worker raised is what the parent gets."""

from __future__ import annotations

import builtins
import pickle
import traceback
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hostile
import parkit
from parkit._core import _remote


def _instance(cls: type[BaseException]) -> BaseException:
    """A representative instance of a builtin exception class."""
    if issubclass(cls, UnicodeDecodeError):
        return cls("utf-8", b"\xff", 0, 1, "invalid start byte")
    if issubclass(cls, UnicodeEncodeError):
        return cls("ascii", "\xff", 0, 1, "ordinal not in range")
    if issubclass(cls, UnicodeTranslateError):
        return cls("\xff", 0, 1, "cannot translate")
    if issubclass(cls, BaseExceptionGroup):
        return cls("group", [ValueError(1), KeyError("k")])
    if issubclass(cls, OSError):
        return cls(2, "No such file", "/tmp/x")
    if issubclass(cls, SyntaxError):
        return cls("bad syntax", ("f.py", 1, 2, "x = ", 1, 3))
    if cls is SystemExit:
        return SystemExit(3)
    if cls is StopIteration:
        return StopIteration(42)
    if cls is ImportError or issubclass(cls, ImportError):
        return cls("no module", name="mod", path="/p")
    return cls("message", 1)


BUILTIN_EXCEPTIONS = sorted(
    (
        obj
        for obj in vars(builtins).values()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    ),
    key=lambda cls: cls.__name__,
)

_ATTRIBUTES = (
    "code", "value", "errno", "strerror", "filename", "filename2", "name", "path",
    "msg", "lineno", "offset", "text", "encoding", "object", "start", "end", "reason",
    "characters_written", "end_lineno", "end_offset",
)  # fmt: skip


def observable(exc: BaseException) -> tuple[Any, ...]:
    """What serial code can observe of an exception: type, args, attributes."""
    attrs = []
    for name in _ATTRIBUTES:
        try:
            attrs.append((name, getattr(exc, name, None)))
        except Exception as e:
            attrs.append((name, type(e)))
    nested: tuple[Any, ...] = ()
    if isinstance(exc, BaseExceptionGroup):
        nested = tuple(observable(e) for e in exc.exceptions)
    return (type(exc), _norm(exc.args), tuple(attrs), nested)


def _norm(value: Any) -> Any:
    # Exceptions compare by identity: compare what can be observed of them.
    if isinstance(value, BaseException):
        return observable(value)
    if isinstance(value, list | tuple):
        return type(value)(_norm(v) for v in value)
    return value


def _transport(exc: BaseException) -> BaseException:
    """capture in the 'worker', pickle the record, rebuild in the 'parent'."""
    try:
        raise exc
    except BaseException as e:
        record = _remote.capture(e)
    return _remote.rebuild(pickle.loads(pickle.dumps(record)))


def test_the_walk_finds_the_builtin_exceptions() -> None:
    names = {cls.__name__ for cls in BUILTIN_EXCEPTIONS}
    assert {"SystemExit", "KeyError", "OSError", "ExceptionGroup", "UnicodeDecodeError"} <= names
    assert len(BUILTIN_EXCEPTIONS) >= 60


@pytest.mark.parametrize("cls", BUILTIN_EXCEPTIONS, ids=lambda c: c.__name__)
def test_every_builtin_exception_survives(cls: type[BaseException]) -> None:
    original = _instance(cls)
    copy = _transport(original)
    assert observable(copy) == observable(original)
    assert copy.__traceback__ is not None


def test_system_exit_code_survives_unlike_tblib_pickling() -> None:
    copy = _transport(SystemExit(3))
    assert isinstance(copy, SystemExit)
    assert copy.code == 3


def test_user_defined_exception_keeps_attributes() -> None:
    copy = _transport(hostile.WithAttrs("custom", code=9))
    assert type(copy) is hostile.WithAttrs
    assert copy.args == ("custom",)
    assert copy.code == 9
    assert copy.details == {"code": 9, "tags": ["a", "b"]}


def test_chains_are_kept() -> None:
    try:
        hostile.raise_chained()
    except ValueError as e:
        copy = _transport(e)
    assert isinstance(copy.__cause__, KeyError)
    assert copy.__cause__.args == ("missing",)
    assert copy.__suppress_context__ is True
    assert isinstance(copy.__context__, KeyError)
    assert copy.__cause__.__traceback__ is not None


def test_suppressed_context_stays_suppressed() -> None:
    try:
        hostile.raise_in_handler()
    except LookupError as e:
        copy = _transport(e)
    assert copy.__cause__ is None
    assert copy.__suppress_context__ is True
    assert isinstance(copy.__context__, ZeroDivisionError)
    text = "".join(traceback.format_exception(copy))
    assert "ZeroDivisionError" not in text


def test_implicit_context_is_kept() -> None:
    try:
        hostile.raise_implicit_context()
    except RuntimeError as e:
        copy = _transport(e)
    assert isinstance(copy.__context__, ZeroDivisionError)
    assert copy.__suppress_context__ is False
    text = "".join(traceback.format_exception(copy))
    assert "During handling of the above exception, another exception occurred" in text


def test_an_exception_both_cause_and_context_is_one_object() -> None:
    try:
        hostile.raise_chained()
    except ValueError as e:
        copy = _transport(e)
    assert copy.__cause__ is copy.__context__


def test_cycles_in_the_chain_come_back_as_cycles() -> None:
    a = ValueError("a")
    b = TypeError("b")
    a.__context__ = b
    b.__context__ = a
    copy = _transport(a)
    assert isinstance(copy.__context__, TypeError)
    assert copy.__context__.__context__ is copy


def test_a_broken_str_does_not_lose_the_error() -> None:
    class BadStr(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str for you")

    record = _remote.capture(BadStr())
    assert record.message == "<str() failed: RuntimeError>"


def test_deep_tracebacks_are_trimmed() -> None:
    try:
        hostile.raise_recursion()
    except RecursionError as e:
        copy = _transport(e)
    depth = 0
    tb = copy.__traceback__
    while tb is not None:
        depth += 1
        tb = tb.tb_next
    assert depth == 100
    assert type(copy) is RecursionError


def test_traceback_shows_the_raise_line_without_misleading_carets() -> None:
    copy = _transport(_raise_here())
    lines = "".join(traceback.format_exception(copy)).splitlines()
    index = lines.index('    raise ValueError("here")')
    assert "^" not in lines[index + 1]


def _raise_here() -> BaseException:
    try:
        raise ValueError("here")
    except ValueError as e:
        return e


# --- through a real child process -------------------------------------------


@pytest.fixture(params=["forkserver", "spawn", "fork"], scope="module")
def context(request: pytest.FixtureRequest) -> str:
    method: str = request.param
    return method


def test_custom_init_exception_becomes_remote_error(context: str) -> None:
    with pytest.raises(parkit.RemoteError) as info:
        parkit.run(hostile.raise_custom_init, context=context)
    exc = info.value
    assert exc.type_name == "hostile.CustomInitError"
    assert exc.message == "1: boom"
    assert "could not be rebuilt in the parent" in exc.reason
    assert 'raise CustomInitError(1, "boom")' in exc.remote_traceback
    assert "hostile.py" in "".join(traceback.format_exception(exc))


def test_unpicklable_attribute_becomes_remote_error(context: str) -> None:
    with pytest.raises(parkit.RemoteError) as info:
        parkit.run(hostile.raise_unpicklable_attr, context=context)
    assert info.value.type_name == "hostile.UnpicklableAttrError"
    assert info.value.reason.startswith("it could not be pickled in the worker (TypeError")


def test_notes_from_the_worker_are_kept(context: str) -> None:
    with pytest.raises(ValueError, match="noted") as info:
        parkit.run(hostile.raise_with_note, context=context)
    notes = info.value.__notes__
    assert notes[0] == "added in the worker"
    assert notes[1].startswith("[parkit] raised in process ")
    assert notes[1].endswith(" running hostile.raise_with_note")
    assert len(notes) == 2


def test_exception_group_survives(context: str) -> None:
    with pytest.raises(ExceptionGroup) as info:
        parkit.run(hostile.raise_group, context=context)
    group = info.value
    assert group.message == "several"
    assert [(type(e), e.args) for e in group.exceptions] == [
        (ValueError, (1,)),
        (TypeError, ("two",)),
    ]


def _frames(exc: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


def test_exception_group_members_keep_their_tracebacks_and_chains(context: str) -> None:
    with pytest.raises(ExceptionGroup) as info:
        parkit.run(hostile.raise_group_of_raised, context=context)
    group = info.value
    first, second, caused, nested = group.exceptions
    assert [type(e) for e in group.exceptions] == [ValueError, ValueError, KeyError, ExceptionGroup]
    assert (first.args, second.args) == (("member 0",), ("member 1",))
    assert _frames(first) == ["raise_group_of_raised", "fail_member"]
    assert _frames(second) == ["raise_group_of_raised", "fail_member"]
    # The member's own chain, and the group's context being that very member.
    assert _frames(caused) == ["raise_group_of_raised"]
    assert type(caused.__cause__) is ValueError
    assert caused.__cause__.args == ("member 2",)
    assert _frames(caused.__cause__) == ["raise_group_of_raised", "fail_member"]
    assert group.__context__ is second
    assert _frames(group)[-1] == "raise_group_of_raised"
    # A nested group's members are dressed too (raised bare: no traceback of their own).
    assert isinstance(nested, ExceptionGroup)
    assert _frames(nested) == ["raise_group_of_raised", "raise_group"]
    assert [(type(e), e.args) for e in nested.exceptions] == [
        (ValueError, (1,)),
        (TypeError, ("two",)),
    ]
    shown = "".join(traceback.format_exception(group))
    # Members 0, 1 and 2 in the group, and member 1 again as the group's context.
    assert shown.count(", in fail_member\n") == 4


@pytest.mark.parametrize(
    "cls",
    [SystemExit, KeyError, OSError, FileNotFoundError, StopIteration, UnicodeDecodeError],
    ids=lambda c: c.__name__,
)
def test_builtins_through_a_process(cls: type[BaseException], context: str) -> None:
    original = _instance(cls)
    with pytest.raises(cls) as info:
        parkit.run(hostile.raise_instance, original, context=context)
    assert observable(info.value) == observable(original)


# --- Hypothesis: parallel raises what serial raises ------------------------------

_USER_TYPES: list[type[Exception]] = [hostile.WithAttrs, hostile.CustomInitError]
_RAISABLE = [
    ValueError, TypeError, KeyError, IndexError, RuntimeError, ZeroDivisionError,
    LookupError, ArithmeticError, OSError, PermissionError, NotImplementedError,
    AssertionError, UnicodeError, SystemExit, hostile.MyBaseException,
]  # fmt: skip

_args = st.lists(
    st.one_of(st.integers(), st.text(max_size=20), st.none(), st.floats(allow_nan=False)),
    max_size=3,
).map(tuple)


def _serial(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    try:
        hostile.raise_given(cls, args)
    except BaseException as e:
        return e
    raise AssertionError("unreachable")


@given(cls=st.sampled_from(_RAISABLE), args=_args)
def test_property_child_raises_what_serial_raises(
    context: str, cls: type[BaseException], args: tuple[Any, ...]
) -> None:
    expected = _serial(cls, args)
    with pytest.raises(BaseException) as info:  # noqa: PT011 - any type: compared below
        parkit.run(hostile.raise_given, cls, args, context=context)
    got = info.value
    assert type(got) is type(expected)
    assert got.args == expected.args
    assert observable(got) == observable(expected)
    text = "".join(traceback.format_exception(got))
    assert "    raise cls(*args)" in text
    assert 'hostile.py", line' in text


@given(message=st.text(max_size=30), code=st.integers())
def test_property_user_defined_types(context: str, message: str, code: int) -> None:
    with pytest.raises(hostile.WithAttrs) as info:
        parkit.run(hostile.raise_with_attrs, code, context=context)
    assert info.value.code == code
    assert info.value.details == {"code": code, "tags": ["a", "b"]}
    del message


def test_exception_too_deep_to_pickle_becomes_remote_error(context: str) -> None:
    with pytest.raises(parkit.RemoteError) as info:
        parkit.run(hostile.raise_deep, context=context)
    assert info.value.type_name == "hostile.DeepError"
    assert info.value.message == "too deep to pickle"
    assert info.value.reason.startswith("it could not be pickled in the worker (RecursionError")
    assert "    raise exc\nhostile.DeepError: too deep to pickle" in info.value.remote_traceback
