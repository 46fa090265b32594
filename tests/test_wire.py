"""The wire format: by reference where the receiver can import, by value otherwise."""

from __future__ import annotations

import functools
import pickle
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

import hostile
from parkit._core import _wire, _worker


def test_importable_functions_go_by_reference_as_plain_pickle() -> None:
    assert _wire.dumps(hostile.identity) == pickle.dumps(hostile.identity, 5)
    assert _wire.loads(_wire.dumps(hostile.identity)) is hostile.identity


def test_data_goes_as_plain_pickle() -> None:
    data = {"a": [1, 2.5, "x"], "b": (None, b"raw")}
    assert _wire.dumps(data) == pickle.dumps(data, 5)


def test_the_run_childs_plain_results_are_the_picklers_types() -> None:
    # _worker keeps its own copy so that a parkit.run child need not import _wire.
    assert _worker._PLAIN == _wire.ATOMS | _wire.SIZED
    assert _worker._PLAIN_SMALL == _wire.SMALL
    assert _worker._PROTOCOL == _wire.PROTOCOL
    assert _worker._MAIN_NAMES == _wire._MAIN_NAMES


@pytest.mark.parametrize(
    "result",
    [
        0,
        -(2**70),
        2.5,
        True,
        None,
        3 - 1j,
        "ü" * 10,
        b"x" * (16 * 1024),
        bytearray(b"y" * 100),
        "s" * (16 * 1024 + 1),  # not small: through _wire
        [1, "a"],  # not plain: through _wire
        hostile.identity,
    ],
)
def test_a_run_childs_result_bytes_are_the_picklers(result: object) -> None:
    data = _worker._dump_result(result)
    assert data == _worker.RESULT_TAG + _wire.dumps(result, main="reference")
    assert _worker.read_message(data).data.tobytes() == data[1:]  # type: ignore[union-attr]
    assert pickle.loads(data[1:]) == result


def _local(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "plain"),
    [
        (hostile.identity, (1, "a", None), {"b": 2.5}, True),
        (abs, (-3,), {}, True),
        (hostile.identity, ([1],), {}, False),  # not a plain argument
        (hostile.identity, (b"x" * (16 * 1024 + 1),), {}, False),  # not small
        (hostile.identity, (), {"b": (1,)}, False),
        (lambda x: x, (1,), {}, False),  # by value
        (functools.partial(abs, -1), (), {}, False),  # not a function
    ],
)
def test_a_plain_call_pickles_as_the_pickler_would(
    fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], plain: bool
) -> None:
    # Payload.__reduce__ writes these with pickle.dumps, so that parkit.run(fn, 3)
    # needs no _wire in the parent: the bytes must be the pickler's.
    data = _worker._plain_call(fn, args, kwargs)
    if plain:
        assert data == _wire.dumps((fn, args, kwargs))
    else:
        assert data is None


def test_a_call_of_a_main_function_is_left_to_the_pickler(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by name in this __main__, it would pickle by reference; _wire
    # decides how __main__ travels (by value where the child lacks it).
    fn = types.FunctionType(_local.__code__, {}, "main_fn")
    fn.__module__ = "__main__"
    fn.__qualname__ = "main_fn"
    monkeypatch.setattr(sys.modules["__main__"], "main_fn", fn, raising=False)
    assert pickle.loads(pickle.dumps(fn)) is fn
    assert _worker._plain_call(fn, (1,), {}) is None


def test_lambdas_go_by_value_and_keep_their_file_name() -> None:
    def local(x: int) -> int:
        return x + 1

    data = _wire.dumps(local)
    assert b"cloudpickle" in data
    copy = _wire.loads(data)
    assert copy(1) == 2
    assert copy.__code__.co_filename == __file__
    assert copy.__code__.co_firstlineno == local.__code__.co_firstlineno


def test_nested_code_objects_keep_their_file_name() -> None:
    def outer() -> int:
        def inner() -> int:
            return 5

        return inner()

    copy = _wire.loads(_wire.dumps(outer))
    inner = next(c for c in copy.__code__.co_consts if hasattr(c, "co_filename"))
    assert inner.co_filename == __file__
    assert copy() == 5


def _run(script: str, tmp_path: Path, *, as_file: bool = True) -> str:
    body = textwrap.dedent(script)
    if as_file:
        path = tmp_path / "user_script.py"
        path.write_text(body)
        cmd = [sys.executable, str(path)]
    else:
        cmd = [sys.executable, "-c", body]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


MAIN_SCRIPT = """
    import parkit
    from parkit._core import _wire

    def top(x):
        return x * 2

    class Top:
        pass

    if __name__ == "__main__":
        def guarded(x):
            return x * 3

        def by_value(data):
            return b"cloudpickle" in data

        print(by_value(_wire.dumps(top)), by_value(_wire.dumps(Top)))
        print(by_value(_wire.dumps(guarded)), by_value(_wire.dumps(lambda: 1)))
        print(by_value(_wire.dumps(top, main="value")))
        print(parkit.run(top, 2, context="spawn"), parkit.run(guarded, 2, context="spawn"))
"""


def test_main_script_top_level_by_reference_guarded_by_value(tmp_path: Path) -> None:
    out = _run(MAIN_SCRIPT, tmp_path).splitlines()
    assert out == ["False False", "True True", "True", "4 6"]


def test_interactive_main_goes_by_value(tmp_path: Path) -> None:
    out = _run(MAIN_SCRIPT, tmp_path, as_file=False).splitlines()
    assert out == ["True True", "True True", "True", "4 6"]


def test_worker_traceback_names_the_script_for_by_value_functions(tmp_path: Path) -> None:
    script = """
        import traceback
        import parkit

        if __name__ == "__main__":
            for method in ["spawn", "forkserver", "fork"]:
                try:
                    parkit.run(lambda: 1 / 0, context=method)
                except ZeroDivisionError as e:
                    text = "".join(traceback.format_exception(e))
                    print("user_script.py\\", line 8" in text, "parkit.run(lambda: 1 / 0" in text)
    """
    out = _run(script, tmp_path).splitlines()
    assert out == ["True True"] * 3


def test_forked_main_sends_by_name_what_every_forked_worker_finds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    exec("def f(x):\n    return x\n\ndef g(x):\n    return -x\n", vars(main))
    f, g = main.f, main.g

    def by_value(obj: object, policy: _wire.MainPolicy) -> bool:
        return b"cloudpickle" in _wire.dumps(obj, main=policy)

    forked = _wire.ForkedMain()
    assert not by_value(f, forked)  # no worker yet: the ones to come will have f
    forked.forked(_wire.main_snapshot(), _wire.main_snapshot())
    exec("def h(x):\n    return x + 1\n", vars(main))
    assert (by_value(f, forked), by_value(main.h, forked)) == (False, True)  # h: after the fork
    vars(main)["f"] = g  # rebound after the fork: the workers' f is the old one
    assert (by_value(g, forked), by_value(f, forked)) == (False, True)
    before = _wire.main_snapshot()
    forked.forked(before, before)  # a later worker has h: the first one still lacks it
    assert (by_value(main.h, forked), by_value(g, forked)) == (True, False)
    forked.reset()  # every worker gone: the next ones have __main__ as it is
    assert (by_value(main.h, forked), by_value(g, forked), by_value(f, forked)) == (
        False,
        False,
        True,  # main.f is g: no worker would find the old f by its name
    )
