"""Checks of option values: one function per kind of option, for the whole library.

Every public entry point checks its options here, at the call, so that a bad
value is a ``TypeError`` (a value of the wrong type) or a ``ValueError`` (the
right type, a value outside what is allowed) raised by the call itself, never an
error later in a worker or a thread, and so that the same kind of option means
the same thing everywhere and is refused with the same words
(docs/reliability.md, "Bad input"). A ``bool`` is refused where a number is
expected: ``workers=True`` is a mistake, not one worker.

Two kinds of timeouts, kept apart:

* a **time limit** (:func:`time_limit`): the per-item ``timeout=`` of the
  mapping calls and of ``Pool``, ``run(timeout=)``, ``Pool(idle_timeout=)``.
  It must be positive and finite: ``0`` would fail every item before it starts,
  and ``None`` is the way to say "no limit".
* a **wait** (:func:`wait_timeout`): how long a blocking call (``Queue.get``,
  ``Lock.acquire``, ``Connection.recv``, ``Process.join``...) waits. ``0``
  polls once, without waiting (the stdlib's meaning); ``None``, ``inf`` or
  anything from ``threading.TIMEOUT_MAX`` up waits for as long as it takes.

Light: a pool worker may import it (no ``typing`` at run time, no ``reprlib``).
"""

from __future__ import annotations

import math
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, TypeVar

    T = TypeVar("T")

__all__ = [
    "MAX_SECONDS",
    "WORD_MAX",
    "UsedAfterClose",
    "check_bool",
    "check_callable",
    "check_choice",
    "check_int",
    "check_maxsize",
    "show",
    "time_limit",
    "to_kwargs",
    "to_tuple",
    "wait_timeout",
]

#: The largest count kept in a word of shared memory (a signed 64-bit int).
WORD_MAX = (1 << 63) - 1

#: The longest timeout the platform's waits take (about 292 years on Linux).
MAX_SECONDS: float = threading.TIMEOUT_MAX


class UsedAfterClose(OSError, ValueError):
    """An object was used after ``close()``.

    An ``OSError``, as the stdlib's closed ``Connection`` raises, and a
    ``ValueError``, as a closed file raises (``io.UnsupportedOperation`` is
    both the same way): code written against either keeps working.
    """


def show(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut short: messages quote what they were given."""
    try:
        text = repr(value)
    except Exception:  # a repr that raises must not hide the real error
        text = f"<{type(value).__qualname__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    none: bool = False,
    allowed: str = "",
) -> Any:
    """An int >= ``minimum`` (and <= ``maximum``), or ``None`` if ``none``; returns it.

    Args:
        value: what the caller passed.
        name: the option's name, for the message.
        minimum: the least value allowed.
        maximum: the greatest value allowed (a value kept in a 64-bit word
            of shared memory: :data:`WORD_MAX`), or None for no bound.
        none: whether ``None`` is allowed (it is returned as is).
        allowed: what the message says is allowed; by default "a positive
            int" (``minimum`` 1) or "an int >= minimum", with "or None".

    Raises:
        TypeError: not an int (a ``bool`` is not one here).
        ValueError: less than ``minimum`` or more than ``maximum``.
    """
    if value is None and none:
        return None
    if not allowed:
        allowed = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        if none:
            allowed += " or None"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {allowed}, not {show(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be {allowed}, not {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, not {value!r}")
    return value


def check_maxsize(value: Any) -> int:
    """A queue's ``maxsize``: an int >= 0, 0 for no bound (``parkit.Queue``, ``Manager.Queue``).

    Raises:
        TypeError: not an int.
        ValueError: negative (the stdlib's ``queue.Queue`` takes it as unbounded).
    """
    result: int = check_int(
        value, "maxsize", minimum=0, maximum=WORD_MAX, allowed="an int >= 0 (0: unbounded)"
    )
    return result


def time_limit(value: object, name: str = "timeout") -> float | None:
    """A time limit in seconds: ``None`` (no limit) or a positive, finite number.

    Returned as given (an int stays an int).

    Raises:
        TypeError: not a number.
        ValueError: zero, negative, NaN, infinite or beyond :data:`MAX_SECONDS`.
    """
    if value is None:
        return None
    allowed = f"a positive number of seconds (at most {MAX_SECONDS:.0f}) or None for no limit"
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be {allowed}, not {show(value)}")
    if not 0 < value <= MAX_SECONDS:  # NaN compares false: refused too
        raise ValueError(f"{name} must be {allowed}, not {value!r}")
    return value


def wait_timeout(
    value: object, name: str = "timeout", *, negative_waits_not: bool = False
) -> float | None:
    """How long a blocking call waits: ``None`` for as long as it takes, or seconds >= 0.

    ``0`` tries once without waiting. ``inf``, or anything from
    :data:`MAX_SECONDS` up, is returned as ``None``: the platform's waits take
    nothing longer, and it is a wait for as long as it takes anyway.

    Args:
        value: what the caller passed.
        name: the option's name, for the message.
        negative_waits_not: a negative value means "don't wait" (returned as
            ``0.0``) instead of an error: for the methods that mirror a stdlib
            one that takes it so (``Process.join``, ``Executor.map``).

    Returns:
        ``None`` or a float >= 0.

    Raises:
        TypeError: not a number.
        ValueError: NaN, or negative (unless ``negative_waits_not``).
    """
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{name} must be None or a number of seconds, not {show(value)}")
    if math.isnan(value) or (value < 0 and not negative_waits_not):
        raise ValueError(
            f"{name} must be None or a number of seconds >= 0 (0: don't wait), not {value!r}"
        )
    if value >= MAX_SECONDS:
        return None
    return max(0.0, float(value))


def check_bool(value: Any, name: str, *, none: bool = False) -> Any:
    """``True`` or ``False`` (or ``None`` if ``none``); returns it.

    Raises:
        TypeError: anything else (``1`` and ``"yes"`` included).
    """
    if isinstance(value, bool) or (value is None and none):
        return value
    allowed = "True, False or None" if none else "True or False"
    raise TypeError(f"{name} must be {allowed}, not {show(value)}")


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> Any:
    """One of ``choices``; returns it.

    Raises:
        ValueError: anything else (the message lists the choices).
    """
    if isinstance(value, str) and value in choices:
        return value
    listed = " or ".join(f'"{c}"' for c in choices)
    raise ValueError(f"{name} must be {listed}, not {show(value)}")


def check_callable(value: Any, name: str = "fn") -> Any:
    """A callable; returns it.

    Raises:
        TypeError: not callable.
    """
    if not callable(value):
        raise TypeError(f"{name} must be callable, not {type(value).__qualname__}")
    return value


def to_tuple(value: Iterable[T], name: str) -> tuple[T, ...]:
    """``tuple(value)``, refusing what is not iterable (a string is, as in the stdlib).

    Raises:
        TypeError: ``value`` is not iterable.
    """
    try:
        return tuple(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an iterable of arguments (a tuple), not {show(value)}"
        ) from None


def to_kwargs(value: Mapping[str, T] | None, name: str) -> dict[str, T]:
    """``dict(value)`` of keyword arguments (``None``: none).

    Raises:
        TypeError: ``value`` is not a mapping with str keys.
    """
    if value is None:
        return {}
    try:
        kwargs = dict(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a mapping of keyword arguments or None, not {show(value)}"
        ) from None
    for key in kwargs:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str, not {show(key)}")
    return kwargs
