"""A catalogue of hostile objects and functions for failure-path tests.

Importable by worker processes (the tests directory is on ``sys.path`` of every
child), so everything here travels by reference, as user code in a module does.
Modelled on CPython's ``test_concurrent_futures/test_deadlock.py`` crash matrix.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import pickle
import signal
import sys
import threading
import time
from typing import Any, NoReturn


def _raise_pickling() -> NoReturn:
    raise pickle.PicklingError("hostile: refused at pickle")


class ErrorAtPickle:
    """Raises while being pickled (in the sender)."""

    def __reduce__(self) -> tuple[Any, ...]:
        raise pickle.PicklingError("hostile: refused at pickle")


def _fail_unpickle() -> NoReturn:
    raise pickle.UnpicklingError("hostile: refused at unpickle")


class ErrorAtUnpickle:
    """Pickles fine; raises while being unpickled (in the receiver)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_fail_unpickle, ())


def _exit_unpickle() -> NoReturn:
    sys.exit(1)


class ExitAtUnpickle:
    """Pickles fine; calls ``sys.exit(1)`` while being unpickled."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_exit_unpickle, ())


class CustomInitError(Exception):
    """``args`` doesn't match ``__init__``: can't be rebuilt by pickle (gh-103061)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


class UnpicklableAttrError(Exception):
    """Carries a lock: can't be pickled in the worker."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class MyBaseException(BaseException):
    """A BaseException that is not an Exception."""


class WithAttrs(Exception):
    """A user-defined exception with extra attributes (set after __init__)."""

    def __init__(self, message: str, *, code: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.details = {"code": code, "tags": ["a", "b"]}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_with_attrs, (self.args[0], self.code), self.__dict__)


def _rebuild_with_attrs(message: str, code: int) -> WithAttrs:
    return WithAttrs(message, code=code)


# --- functions run in the child ------------------------------------------------


def identity(x: Any) -> Any:
    return x


def add(a: int, b: int, *, scale: int = 1) -> int:
    return (a + b) * scale


def raise_custom_init() -> NoReturn:
    raise CustomInitError(1, "boom")


def raise_unpicklable_attr() -> NoReturn:
    raise UnpicklableAttrError("holds a lock")


def raise_base_exception() -> NoReturn:
    raise MyBaseException("not an Exception")


def raise_with_attrs(code: int) -> NoReturn:
    raise WithAttrs("with attributes", code=code)


def raise_chained() -> None:
    try:
        dict[str, int]()["missing"]
    except KeyError as e:
        raise ValueError("wrapped") from e


def raise_in_handler() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        raise LookupError("while handling") from None


def raise_implicit_context() -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        raise RuntimeError("during handling")  # noqa: B904 - the implicit context is the point


def raise_recursion() -> Any:
    return raise_recursion()


def sys_exit(code: Any) -> NoReturn:
    sys.exit(code)


def os_exit(code: int) -> NoReturn:
    os._exit(code)


def sigkill_self() -> NoReturn:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
    raise AssertionError("unreachable")


def segfault() -> NoReturn:
    # A deliberate crash: the test runner's faulthandler (inherited by a forked
    # child, passed on by -X faulthandler) would print "Fatal Python error" and
    # every thread's stack on the run's stderr, read as a crash of the suite.
    faulthandler.disable()
    # A NULL read through ctypes: a genuine SIGSEGV, not a Python exception.
    ctypes.string_at(0)
    raise AssertionError("unreachable")


def sleep_forever() -> NoReturn:
    while True:
        time.sleep(60)


def return_unpicklable() -> Any:
    return threading.Lock()


def return_error_at_unpickle() -> Any:
    return ErrorAtUnpickle()


def return_deep() -> Any:
    x: list[Any] = []
    for _ in range(100_000):
        x = [x]
    return x


def return_exit_at_unpickle() -> Any:
    return ExitAtUnpickle()


def raise_keyboard_interrupt() -> NoReturn:
    raise KeyboardInterrupt


def raise_given(cls: type[BaseException], args: tuple[Any, ...]) -> NoReturn:
    raise cls(*args)


def raise_with_note() -> NoReturn:
    exc = ValueError("noted")
    exc.add_note("added in the worker")
    raise exc


def raise_group() -> NoReturn:
    raise ExceptionGroup("several", [ValueError(1), TypeError("two")])


def fail_member(k: int) -> NoReturn:
    raise ValueError(f"member {k}")


def raise_group_of_raised() -> NoReturn:
    """A group of raised members (one with a cause, one a nested group), raised
    inside the handler of one of them, as ``except`` blocks usually do."""
    errors: list[Exception] = []
    try:
        fail_member(0)
    except ValueError as e:
        errors.append(e)
    try:
        try:
            fail_member(2)
        except ValueError as e:
            raise KeyError("caused") from e
    except KeyError as e:
        errors.append(e)
    try:
        raise_group()
    except ExceptionGroup as e:
        errors.append(e)
    try:
        fail_member(1)
    except ValueError as e:
        errors.insert(1, e)
        raise ExceptionGroup("raised", errors)  # noqa: B904 - the context is the point


def raise_instance(exc: BaseException) -> NoReturn:
    raise exc


class DeepError(Exception):
    """Holds a structure nested deeper than pickle's recursion limit."""


def raise_deep() -> NoReturn:
    exc = DeepError("too deep to pickle")
    exc.payload = return_deep()  # type: ignore[attr-defined]
    raise exc
