"""What editors infer for the public API (read by mypy, not run by pytest)."""

from __future__ import annotations

import multiprocessing.context
from typing import assert_type

import parkit


def number(x: int) -> float:
    return x / 2


def text() -> str:
    return "x"


def check_process() -> None:
    p = parkit.Process(number, (1,))
    assert_type(p, parkit.Process[float])
    assert_type(p.result(), float)
    assert_type(p.result(timeout=1.5), float)
    assert_type(p.exitcode, int | None)
    assert_type(p.pid, int | None)
    assert_type(p.join(1), None)
    with parkit.Process(text) as q:
        assert_type(q, parkit.Process[str])


def check_run() -> None:
    assert_type(parkit.run(number, 1), float)
    assert_type(parkit.run(text, timeout=2, context="spawn"), str)
    assert_type(parkit.run(lambda: [1], context=None), list[int])


def check_context() -> None:
    assert_type(parkit.default_context(), multiprocessing.context.BaseContext)


def check_errors(e: parkit.WorkerCrashed, t: parkit.TaskTimeout) -> None:
    assert_type(e.exitcode, int | None)
    assert_type(e.item_index, int | None)
    assert_type(t.timeout, float)
