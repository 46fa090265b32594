"""Runs every cell of fault_catalogue: the documented outcome within its bound.

Each cell also asserts, through the autouse leak guard of tests/conftest.py, that
no process, thread or /dev/shm entry outlives it; batch entries check that every
item the fault did not hit has its value (``errors="return"``); and the object
is used again afterwards where the docs say it stays usable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fault_catalogue import (
    BAD,
    CHUNK,
    ENTRIES,
    FAULTS,
    N_ITEMS,
    TIMEOUT_S,
    Expect,
    NotApplicable,
    expected,
    methods_for,
)

import fault_tasks as ft
import parkit


def _action(fault: str) -> tuple[str, tuple[Any, ...]]:
    action = FAULTS[fault].action
    assert action is not None
    name, args = action
    # A fresh lock each time: the catalogue is data, a lock is not.
    return name, tuple(threading.Lock() if a == "LOCK" else a for a in args)


def _items(fault: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = [("ok", i) for i in range(N_ITEMS)]
    items[BAD] = _action(fault)
    return items


def _thread_items(fault: str) -> list[tuple[str, Any]]:
    items = _items(fault)
    if fault == "hang":
        items[BAD] = ("nap", (TIMEOUT_S + 1.0,))  # a thread can't be stopped: it must end
    return items


def _limit(fault: str) -> float:
    # The item that hangs is stopped by the per-item timeout; every other item
    # gets a generous one, which a loaded machine can't run into (making and
    # pickling the 300 MB result takes seconds there).
    return TIMEOUT_S if fault == "hang" else 60.0


def _batch(entry: str, fault: str, method: str) -> list[Any]:
    """One call over the items, ``errors="return"``: every item's outcome."""
    items = _items(fault)
    common: dict[str, Any] = {"workers": 2, "chunksize": CHUNK, "timeout": _limit(fault)}
    if entry == "thread backend":
        items = _thread_items(fault)
        return parkit.map(ft.act, items, backend="thread", errors="return", **common)
    common["context"] = method
    if entry == "map":
        return parkit.map(ft.act, items, errors="return", **common)
    if entry == "imap":
        return list(parkit.imap(ft.act, items, errors="return", **common))
    assert entry == "starmap"
    return parkit.starmap(ft.act2, items, errors="return", **common)


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except BaseException as e:
        return e


def _single(entry: str, fault: str, method: str) -> tuple[Any, Callable[[], None]]:
    """The fault's outcome through a one-item entry, and a check that it still works."""
    item = _action(fault)
    if entry == "run":
        return _outcome(lambda: parkit.run(ft.act, item, context=method, timeout=_limit(fault))), (
            lambda: _expect_value(parkit.run(ft.act, ("ok", 4), context=method), 40)
        )
    if entry == "Process":
        proc = parkit.Process(target=ft.act, args=(item,), context=method)
        started = _outcome(proc.start)  # an argument that can't be pickled fails here
        if started is not None:
            return started, lambda: None
        try:
            got = _outcome(lambda: proc.result(timeout=_limit(fault)))
        finally:
            if proc.is_alive():  # result(timeout) leaves it running, as documented
                proc.kill()
            proc.join(10)
        return got, lambda: None
    raise AssertionError(entry)


def _expect_value(got: Any, want: Any) -> None:
    assert got == want


def _check(got: Any, cell: Expect) -> None:
    if cell.kind is None:
        assert not isinstance(got, BaseException), repr(got)
        return
    assert type(got) is cell.kind, repr(got)
    for name, want in cell.attrs.items():
        assert getattr(got, name) == want, (name, got)


def _cells() -> list[Any]:
    params = []
    for fault in FAULTS:
        for entry in ENTRIES:
            cell = expected(fault, entry)
            marks = [pytest.mark.slow] if fault == "big_result" else []
            if isinstance(cell, NotApplicable):
                continue
            methods = methods_for(f"{fault}/{entry}")
            if entry == "thread backend":
                methods = methods[:1]  # no start method: one run
            for method in methods:
                if fault == "big_result" and method != "forkserver":
                    continue  # one start method: 300 MB is CI time
                params.append(
                    pytest.param(fault, entry, method, marks=marks, id=f"{fault}-{entry}-{method}")
                )
    return params


@pytest.mark.parametrize(("fault", "entry", "method"), _cells())
def test_cell(fault: str, entry: str, method: str) -> None:
    cell = expected(fault, entry, method)
    assert isinstance(cell, Expect)
    start = time.monotonic()
    if entry in ("map", "imap", "starmap", "thread backend"):
        out = _batch(entry, fault, method)
        elapsed = time.monotonic() - start
        got = out[BAD]
        # No result lost: every item the fault did not hit has its value.
        assert [v for i, v in enumerate(out) if i != BAD] == [
            i * ft.SCALE for i in range(N_ITEMS) if i != BAD
        ]
        if fault == "big_result":
            assert got == b"\x5a" * (300 << 20)
        where: dict[str, Any] = (
            {"backend": "thread"} if entry == "thread backend" else {"context": method}
        )
        usable: Callable[[], None] = lambda: _expect_value(  # noqa: E731
            parkit.map(ft.act, [("ok", i) for i in range(6)], workers=2, **where),
            [i * ft.SCALE for i in range(6)],
        )
    elif entry == "Pool.submit":
        with parkit.Pool(2, context=method, timeout=_limit(fault)) as pool:
            future = pool.submit(ft.act, _action(fault))
            got = _outcome(lambda: future.result(timeout=cell.bound_s))
            elapsed = time.monotonic() - start
            assert pool.submit(ft.act, ("ok", 5)).result(timeout=10) == 50
        usable = lambda: None  # noqa: E731 - checked inside the block
    elif entry == "ProcessPoolExecutor":
        with parkit.ProcessPoolExecutor(2, mp_context=method) as ex:
            future = ex.submit(ft.act, _action(fault))
            got = _outcome(lambda: future.result(timeout=cell.bound_s))
            elapsed = time.monotonic() - start
            assert ex.submit(ft.act, ("ok", 5)).result(timeout=10) == 50
        usable = lambda: None  # noqa: E731 - checked inside the block
    else:
        got, usable = _single(entry, fault, method)
        elapsed = time.monotonic() - start
    _check(got, cell)
    assert elapsed < cell.bound_s + (TIMEOUT_S if fault == "hang" else 0), elapsed
    if cell.usable_after:
        usable()
