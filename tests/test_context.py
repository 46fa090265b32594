"""Start-method policy (SPEC §4): explicit contexts, one default, the global left alone."""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import pickle
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import parkit
import sync_tasks
from parkit._core._context import START_METHOD_ENV, available_methods, resolve_context


def test_default_is_forkserver_on_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(START_METHOD_ENV, raising=False)
    assert parkit.default_context().get_start_method() == "forkserver"


@pytest.mark.parametrize("method", available_methods())
def test_environment_variable_overrides_the_default(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    monkeypatch.setenv(START_METHOD_ENV, method)
    assert parkit.default_context().get_start_method() == method


def test_unknown_name_in_environment_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(START_METHOD_ENV, "threads")
    with pytest.raises(ValueError, match=r"unknown start method 'threads' in \$PARKIT_START"):
        parkit.default_context()


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="fork-server") as info:
        resolve_context("fork-server")
    assert str(info.value) == (
        "unknown start method 'fork-server'; this platform has: 'forkserver', 'spawn', 'fork'"
    )
    with pytest.raises(ValueError, match="unknown start method"):
        parkit.Process(print, context="nope")
    with pytest.raises(ValueError, match="unknown start method"):
        parkit.run(print, context="nope")


@pytest.mark.parametrize("method", available_methods())
def test_names_and_context_objects_are_accepted(method: str) -> None:
    ctx = multiprocessing.get_context(method)
    assert resolve_context(method) is ctx
    assert resolve_context(ctx) is ctx


def test_the_default_context_object_is_resolved_without_fixing_it() -> None:
    default: Any = multiprocessing.context._default_context
    before = default._actual_context
    resolved = resolve_context(default)
    assert isinstance(resolved, multiprocessing.context.BaseContext)
    assert not isinstance(resolved, multiprocessing.context.DefaultContext)
    assert default._actual_context is before


@pytest.mark.parametrize("bad", [3, b"spawn", object()])
def test_wrong_types_are_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="context must be None, a start-method name"):
        resolve_context(bad)  # type: ignore[arg-type]


def test_parkit_never_calls_set_start_method(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parkit called set_start_method")

    monkeypatch.setattr(multiprocessing, "set_start_method", refuse)
    monkeypatch.setattr(multiprocessing.context.DefaultContext, "set_start_method", refuse)
    for method in available_methods():
        assert parkit.run(abs, -3, context=method) == 3


def _run_script(body: str) -> str:
    script = textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_stdlib_side_effect_exists() -> None:
    # Why parkit needs deliberate handling: a plain stdlib start through an
    # explicit spawn context fixes the global default.
    out = _run_script(
        """
        import multiprocessing as mp
        p = mp.get_context("spawn").Process(target=abs, args=(1,))
        p.start(); p.join()
        print(mp.get_start_method(allow_none=True))
        """
    )
    assert out.split() == [multiprocessing.get_all_start_methods()[0]]


def test_global_start_method_is_left_as_the_user_left_it() -> None:
    out = _run_script(
        """
        import multiprocessing as mp
        import parkit
        seen = []
        for method in ["forkserver", "spawn", "fork", None]:
            parkit.run(abs, -1, context=method)
            with parkit.Process(abs, (-2,), context=method) as p:
                p.start()
            seen.append(mp.get_start_method(allow_none=True))
        print(seen)
        mp.set_start_method("spawn")   # the user's own choice still works
        print(mp.get_start_method())
        parkit.run(abs, -1, context="forkserver")
        print(mp.get_start_method(allow_none=True))
        """
    )
    assert out.splitlines() == ["[None, None, None, None]", "spawn", "spawn"]


# --- context= on the objects that share processes (locks, queues, pipes, arrays) --


def _made(kind: str, context: Any) -> list[Any]:
    """One object of ``kind`` made with ``context=``; both ends for a Pipe."""
    if kind == "Pipe":
        return list(parkit.Pipe(context=context))
    if kind == "SharedArray.zeros":
        return [parkit.SharedArray.zeros(3, context=context)]
    if kind == "SharedArray.copy_of":
        return [parkit.SharedArray.copy_of([1, 2], context=context)]
    if kind == "Barrier":
        return [parkit.Barrier(2, context=context)]
    cls = getattr(parkit, kind)
    return [cls(context=context)]


SHARING = [
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
    "Condition",
    "Event",
    "Barrier",
    "Queue",
    "Pipe",
    "SharedArray.zeros",
    "SharedArray.copy_of",
]


def _release(objs: list[Any]) -> None:
    for obj in objs:
        if isinstance(obj, parkit.SharedArray | parkit.Connection):
            obj.close()


@pytest.mark.parametrize("kind", SHARING)
def test_objects_that_share_processes_take_context(kind: str) -> None:
    for method in available_methods():
        for context in (method, multiprocessing.get_context(method)):
            objs = _made(kind, context)
            assert [obj.start_method for obj in objs] == [method] * len(objs)
            if kind != "Pipe":  # an end travels only while a process starts
                copy = pickle.loads(pickle.dumps(objs[0]))
                assert copy.start_method == method
                _release([copy])
            _release(objs)
    objs = _made(kind, None)
    default = parkit.default_context().get_start_method()
    assert [obj.start_method for obj in objs] == [default] * len(objs)
    _release(objs)


@pytest.mark.parametrize("kind", SHARING)
def test_objects_that_share_processes_refuse_an_unknown_context(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="fork-server") as info:
        _made(kind, "fork-server")
    assert str(info.value) == (
        "unknown start method 'fork-server'; this platform has: "
        + ", ".join(repr(m) for m in available_methods())
    )
    with pytest.raises(TypeError) as type_info:
        _made(kind, 3)
    assert str(type_info.value) == (
        "context must be None, a start-method name ("
        + ", ".join(repr(m) for m in available_methods())
        + ") or a multiprocessing context, not int"
    )
    # None is the default policy, $PARKIT_START_METHOD included.
    monkeypatch.setenv(START_METHOD_ENV, "threads")
    with pytest.raises(ValueError, match=r"unknown start method 'threads' in \$PARKIT_START"):
        _made(kind, None)


def test_objects_made_for_one_start_method_work_with_processes_of_another(
    context: str,
) -> None:
    # They are files in /dev/shm (or descriptors handed over at the start):
    # mixing start methods is no problem, so it is no error either.
    other = next(m for m in available_methods() if m != context)
    lock = parkit.Lock(context=other)
    event = parkit.Event(context=other)
    q = parkit.Queue[str](context=other)
    receiver, sender = parkit.Pipe[str](duplex=False, context=other)
    with parkit.SharedArray.zeros(1, context=other) as array:
        with parkit.Process(
            sync_tasks.use_everything, (lock, event, q, array, sender), context=context
        ) as p:
            p.start()
            assert p.result(timeout=30) == f"{other} {other} {other}"
        assert p.exitcode == 0
        assert array[0] == 42
    assert event.is_set()
    assert q.get(timeout=10) == "queued"
    assert receiver.recv(timeout=10) == "piped"
    receiver.close()
    sender.close()
