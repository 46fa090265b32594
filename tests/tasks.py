"""Functions that pool tests run in workers (importable by every child)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any


class ItemError(Exception):
    """What :func:`poly` raises for a negative item."""


class InputError(Exception):
    """What :func:`gen_then_raise` raises after its items."""


def poly(x: int) -> int:
    """``x*x + 1``; raises ``ItemError(x)`` for negative ``x``."""
    if x < 0:
        raise ItemError(x)
    return x * x + 1


def square(x: int) -> int:
    return x * x


def pid_of(_: object) -> int:
    return os.getpid()


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def sleep_then(args: tuple[float, Any]) -> Any:
    seconds, value = args
    time.sleep(seconds)
    return value


def gen_then_raise(items: list[Any], error: BaseException | None) -> Iterator[Any]:
    """Yield ``items``, then raise ``error`` (if any), like a failing reader."""
    yield from items
    if error is not None:
        raise error


def serial_outcome(fn: Any, items: Any) -> tuple[list[Any], BaseException | None]:
    """What ``list(map(fn, items))`` gives: results so far and what it raised."""
    out: list[Any] = []
    try:
        for item in items:
            out.append(fn(item))
    except Exception as e:
        return out, e
    return out, None


def serial_return(fn: Any, items: Any) -> tuple[list[Any], BaseException | None]:
    """The element-wise try/except loop; an input error ends it."""
    out: list[Any] = []
    it = iter(items)
    while True:
        try:
            item = next(it)
        except StopIteration:
            return out, None
        except Exception as e:
            return out, e
        try:
            out.append(fn(item))
        except Exception as e:
            out.append(e)


def nested_pids(n: int) -> tuple[int, list[int]]:
    """Run parkit.map inside a worker: the pids that ran the inner items."""
    import parkit

    return os.getpid(), parkit.map(pid_of, range(n))


def act(item: tuple[str, Any]) -> Any:
    """``("ok", v)`` returns ``v * 10``; ``(name, args)`` calls ``hostile.name(*args)``."""
    import hostile

    action, value = item
    if action == "ok":
        return value * 10
    return getattr(hostile, action)(*value)


def script(actions: dict[int, tuple[str, tuple[Any, ...]]], n: int) -> list[tuple[str, Any]]:
    """``n`` items, ``("ok", i)`` except the hostile ones placed at their index."""
    return [actions.get(i, ("ok", i)) for i in range(n)]


def tag(x: Any) -> Any:
    """Returns ints times ten; other objects unchanged."""
    return x * 10 if isinstance(x, int) else x


def set_env(name: str, value: str) -> None:
    os.environ[name] = value


def get_env(name: str) -> str | None:
    return os.environ.get(name)


def echo_big(data: bytes) -> bytes:
    """Returns a result as large as its argument (both ways through full pipes)."""
    return data[::-1]


def put_in(q: Any, value: Any) -> None:
    q.put(value)


def fail_init(q: Any) -> None:
    q.put("init ran")
    raise ValueError("error in initializer")


def return_exit_at_unpickle(_: object) -> Any:
    import hostile

    return hostile.ExitAtUnpickle()


class Big:
    """A result whose lifetime a test follows."""


def make_big(_: object) -> Big:
    return Big()


def array_sum(a: Any) -> float:
    return float(a.sum())


def make_array(args: tuple[int, int]) -> Any:
    import numpy as np

    n, value = args
    return np.full(n, float(value))


def scale_in_place(a: Any) -> Any:
    a *= 2  # the worker's copy: the parent's array is untouched
    return a


def crash_after_result_written(a: Any) -> Any:
    import numpy as np

    from parkit._core import _oob

    _oob.dumps(np.ones(len(a)), "reference", _owner_of_pool(), f"w{os.getpid()}")
    os._exit(7)


def _owner_of_pool() -> int:
    import multiprocessing

    parent = multiprocessing.parent_process()
    assert parent is not None
    return int(parent.pid)  # type: ignore[arg-type]


def fill_shared(args: tuple[Any, int]) -> None:
    sa, i = args
    sa[i] = float(i)


def sum_shared(sa: Any) -> float:
    return float(sa.array.sum())


def exit_after_read(fd: int) -> None:
    """Read one byte from ``fd`` (a pipe inherited under fork), then exit with code 9."""
    os.read(fd, 1)
    os._exit(9)


def profiled_leaf(x: int) -> int:
    """Called twice per item by :func:`profiled_twice` (profile tests count it)."""
    return x + 1


def profiled_twice(x: int) -> int:
    """``profiled_leaf(x) + profiled_leaf(-x)``: one call of this, two of the leaf."""
    return profiled_leaf(x) + profiled_leaf(-x)


def _rebuild_slowly(seconds: float) -> SlowToUnpickle:
    time.sleep(seconds)
    return SlowToUnpickle(seconds)


class SlowToUnpickle:
    """An argument whose unpickling takes at least ``seconds`` (insights tests)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_slowly, (self.seconds,))


class SlowToPickle:
    """A result whose pickling takes at least ``seconds`` (insights tests)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __reduce__(self) -> tuple[Any, ...]:
        time.sleep(self.seconds)
        return (SlowToPickle, (self.seconds,))


def slow_phases(arg: SlowToUnpickle) -> SlowToPickle:
    """Sleeps ``arg.seconds`` in each of the worker's phases: unpickle, function, pickle."""
    time.sleep(arg.seconds)
    return SlowToPickle(arg.seconds)


def send_frame(writer: Any, data: bytes) -> None:
    """Send one frame on a parkit ``_frames.Writer`` (test_frames.py)."""
    writer.send_bytes(data)
    writer.close()


def fill_block(block: Any, value: int) -> None:
    """Write ``value`` into every byte of a ``_segments.Block`` (test_frames.py)."""
    view = block.memoryview()
    view[:] = bytes([value]) * len(view)
    view.release()


def wait_for(ready: Any, gate: Any) -> None:
    """Set ``ready``, then wait for ``gate`` (at most a minute)."""
    ready.set()
    gate.wait(60)


def send_on(conn: Any, value: Any) -> None:
    conn.send(value)


def register_exit_hook(path: str) -> None:
    """Register an exit hook that writes "ran" to ``path``."""
    import atexit

    def write() -> None:
        with open(path, "w") as f:
            f.write("ran")

    atexit.register(write)
