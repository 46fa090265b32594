"""The catalogue's scenarios: faults met by objects rather than by one task.

Each scenario of ``fault_catalogue.SCENARIOS`` is run here, or names the test
that runs it already in a subprocess (``covered_by``); a test checks that every
scenario is one or the other.
"""

from __future__ import annotations

import ast
import errno
import operator
import os
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fault_catalogue import DASK, FAULTS, SCENARIOS, TIMEOUT_S, Expect, methods_for

import fault_tasks as ft
import hostile
import parkit
import sync_tasks as st

TESTS = Path(__file__).resolve().parent.parent


def _initializer_pool(method: str) -> BaseException:
    with (
        pytest.raises(parkit.PoolBroken) as info,
        parkit.Pool(2, context=method, initializer=hostile.raise_chained) as pool,
    ):
        pool.map(ft.act, [("ok", 1)])
    return info.value


def _initializer_executor(method: str) -> BaseException:
    with (
        pytest.raises(parkit.PoolBroken) as info,
        parkit.ProcessPoolExecutor(2, mp_context=method, initializer=hostile.raise_chained) as ex,
    ):
        ex.submit(ft.act, ("ok", 1)).result(timeout=10)
    return info.value


def _queue_mid_message(method: str) -> BaseException:
    q = parkit.Queue[object](context=method)
    q.put("before")
    p = parkit.Process(st.die_mid_put, (q,), context=method)
    p.start()
    p.join(10)
    assert p.exitcode == -9
    assert q.get(timeout=TIMEOUT_S) == "before"
    with pytest.raises(queue.Empty) as info:
        q.get(timeout=TIMEOUT_S)
    q.put("after")  # usable afterwards: the dead producer's guard is free
    assert q.get(timeout=TIMEOUT_S) == "after"
    return info.value


def _pipe_mid_message(method: str) -> BaseException:
    import select

    parent_conn, child_conn = parkit.Pipe[bytes](context=method)
    with parent_conn, child_conn:
        p = parkit.Process(ft.send_huge, (child_conn,), context=method)
        p.start()
        try:
            assert select.select([parent_conn.fileno()], [], [], 10)[0]  # part of it came
        finally:
            p.kill()
            p.join(10)
        with pytest.raises(EOFError) as info:
            parent_conn.recv(timeout=TIMEOUT_S)
        p.close()
    return info.value


def _holder_killed(
    make: Callable[[], object], lock_of: Callable[[object], object]
) -> Callable[[str], BaseException]:
    def run(method: str) -> BaseException:
        obj = make()
        lock = lock_of(obj)
        ready = parkit.Event()
        p = parkit.Process(st.hold_then_exit, (lock, ready, "kill"), context=method)
        p.start()
        assert ready.wait(10)
        p.join(10)
        with pytest.raises(parkit.LockAbandoned) as info:
            lock.acquire(timeout=5)  # type: ignore[attr-defined]
        assert info.value.holder_pid == p.pid
        with lock:  # type: ignore[attr-defined]
            pass  # usable afterwards
        return info.value

    return run


def _shared_array_worker_crash(method: str) -> BaseException:
    with parkit.SharedArray.zeros((4,), "float64") as sa:
        out = parkit.map(ft.act, [("touch_then_exit", (sa, 7))], context=method, errors="return")
        assert sa.array[0] == 1.0  # the write before the crash is there
        return out[0]


SHM_FULL = """
import errno, sys
import numpy as np
import parkit

def main(entry):
    if entry == "SharedArray":
        try:
            parkit.SharedArray.zeros((4 << 20,), "float64")  # 32 MiB into 1 MiB
        except OSError as e:
            print("OSError", e.errno)
    elif entry == "Value":
        # Fill /dev/shm, then ask for one more segment.
        hog = open("/dev/shm/hog", "wb")
        try:
            hog.write(b"x" * (1 << 20))
        except OSError:
            pass
        try:
            hog.close()
        except OSError:
            pass
        try:
            parkit.Array("d", 1 << 16)
        except OSError as e:
            print("OSError", e.errno)
    else:
        got = parkit.map(np.sum, [np.ones(1 << 18)] * 3, context=sys.argv[2], workers=2)
        print("value", got == [float(1 << 18)] * 3)

if __name__ == "__main__":
    main(sys.argv[1])
"""


def _shm_full(entry: str) -> Callable[[str], BaseException | None]:
    def run(method: str) -> BaseException | None:
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            pytest.skip("needs root and unshare(1) for a private /dev/shm")
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
        if probe.returncode != 0:
            pytest.skip(f"unshare -m is refused here: {probe.stderr.decode().strip()}")
        shell = f'mount -t tmpfs -o size=1M tmpfs /dev/shm && exec "{sys.executable}" -c "$0" "$@"'
        done = subprocess.run(
            ["unshare", "-m", "sh", "-c", shell, textwrap.dedent(SHM_FULL), entry, method],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONPATH": str(TESTS)},
        )
        # A SIGBUS (-7 / 135) was the bug: a segment whose pages /dev/shm lacked.
        assert done.returncode == 0, (done.returncode, done.stderr)
        assert "resource_tracker" not in done.stderr, done.stderr
        assert done.stderr == "", done.stderr
        kind, value = done.stdout.split()
        if kind == "OSError":
            return OSError(int(value), "no space")
        assert value == "True"
        return None

    return run


def _manager_server_killed(method: str) -> BaseException:
    import manager_tasks as mt

    with parkit.Manager(method, types=[mt.Gate]) as m:
        d = m.dict({"a": 1})
        assert d["a"] == 1  # this thread's connection to the server is open
        gate = m.create(mt.Gate)
        marker = TESTS / f".gate-{os.getpid()}-{time.monotonic_ns()}"
        got: list[BaseException] = []

        def wait_in_the_server() -> None:
            try:
                gate.wait(str(marker))
            except BaseException as e:
                got.append(e)

        waiter = threading.Thread(target=wait_in_the_server)
        waiter.start()
        try:
            _wait_for_file(marker)  # the call is in the server now
            os.kill(m._process.pid, signal.SIGKILL)  # the server process, by pid
            waiter.join(TIMEOUT_S + 4)
            assert not waiter.is_alive(), "the waiting proxy call hangs"
            # Reaped, so that every socket of it is closed: a connection made
            # while it dies may be taken and then reset (ManagerGone too).
            m._process.join(10)
        finally:
            marker.unlink(missing_ok=True)
        # Every later call, and a new object, say the same at once.
        with pytest.raises(parkit.ManagerGone) as later:
            d["a"]
        # Which of the two depends on what the kernel saw of the dead socket.
        assert type(later.value.__cause__) in (BrokenPipeError, ConnectionResetError)
        with pytest.raises(parkit.ManagerGone) as new:
            m.dict()
        assert type(new.value.__cause__) is ConnectionRefusedError
    # The block ended (shutdown() reaped the dead server): nothing left, no hang.
    (error,) = got
    return error


def _wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"no {path}"
        time.sleep(0.01)


def _call(item: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    fn, args = item
    return fn(*args)


#: The Dask cells that run here: one call on the session's cluster for all of them.
_DASK_CACHE: dict[int, dict[str, Any]] = {}


def _dask_outcomes(client: Any) -> dict[str, Any]:
    """Each Dask scenario's fault as one item among ordinary ones; their outcomes."""
    found = _DASK_CACHE.get(id(client))
    if found is not None:
        return found
    from parkit._backends._dask import DaskBackend

    faults = [s.fault for s in SCENARIOS if s.entry == DASK and not s.covered_by]
    # (function, args) items: the workers can't import the tests' modules, so
    # each function travels by value (fault_tasks.act would name ``hostile``).
    items: list[Any] = [(operator.mul, (0, ft.SCALE))]
    for fault in faults:
        action = FAULTS[fault].action
        assert action is not None
        name, args = action
        fn = getattr(ft, name, None) or getattr(hostile, name)
        bad = tuple(threading.Lock() if a == "LOCK" else a for a in args)
        items += [(fn, bad), (operator.mul, (1, ft.SCALE))]
    with parkit.Pool(backend=DaskBackend(client)) as pool:
        out = pool.map(_call, items, chunksize=1, errors="return", timeout=60)
        # No result lost: every other item has its value; the pool goes on.
        assert out[0::2] == [0] + [ft.SCALE] * len(faults)
        assert pool.map(_call, [(operator.mul, (2, ft.SCALE))]) == [2 * ft.SCALE]
    outcomes = dict(zip(faults, out[1::2], strict=True))
    _DASK_CACHE[id(client)] = outcomes
    return outcomes


RUNNERS: dict[tuple[str, str], Callable[[str], BaseException | None]] = {
    ("initializer_fails", "Pool"): _initializer_pool,
    ("initializer_fails", "ProcessPoolExecutor"): _initializer_executor,
    ("producer_killed_mid_message", "Queue"): _queue_mid_message,
    ("producer_killed_mid_message", "Pipe"): _pipe_mid_message,
    ("holder_killed", "Lock"): _holder_killed(parkit.Lock, lambda lock: lock),
    ("holder_killed", "Value"): _holder_killed(lambda: parkit.Value("i", 0), lambda v: v.lock),  # type: ignore[attr-defined]
    ("worker_crash", "SharedArray"): _shared_array_worker_crash,
    ("shm_full", "SharedArray"): _shm_full("SharedArray"),
    ("shm_full", "Value"): _shm_full("Value"),
    ("shm_full", "map"): _shm_full("map"),
    ("server_killed", "Manager"): _manager_server_killed,
}


def _params() -> list[Any]:
    out = []
    for s in SCENARIOS:
        if s.covered_by:
            continue
        if s.entry == DASK:  # no start method: the cluster's workers are its own
            out.append(pytest.param(s, "", id=f"{s.fault}-dask"))
            continue
        methods = methods_for(f"{s.fault}/{s.entry}")
        if s.fault == "shm_full":
            methods = methods[:1]  # the tmpfs is the fault, not the start method
        out += [pytest.param(s, m, id=f"{s.fault}-{s.entry}-{m}") for m in methods]
    return out


@pytest.mark.parametrize(("scenario", "method"), _params())
def test_scenario(scenario: object, method: str, request: pytest.FixtureRequest) -> None:
    from fault_catalogue import Scenario

    assert isinstance(scenario, Scenario)
    cell = scenario.expect
    assert isinstance(cell, Expect)
    if scenario.entry == DASK:
        client = request.getfixturevalue("dask_client")  # its start is not the fault's
        start = time.monotonic()
        got = _dask_outcomes(client)[scenario.fault]
    else:
        start = time.monotonic()
        got = RUNNERS[scenario.fault, scenario.entry](method)
    elapsed = time.monotonic() - start
    if cell.kind is None:
        assert got is None
    else:
        assert type(got) is cell.kind, repr(got)
        for name, want in cell.attrs.items():
            if name == "cause":
                assert type(got.__cause__) is want, repr(got.__cause__)
            else:
                assert getattr(got, name) == want, (name, got)
    assert elapsed < cell.bound_s + 10  # set-up (a child's start) is not the fault's


def test_every_scenario_is_run_somewhere() -> None:
    for s in SCENARIOS:
        if not s.covered_by:
            assert s.entry == DASK or (s.fault, s.entry) in RUNNERS, s
            continue
        path, name = s.covered_by.split("::")
        tree = ast.parse((TESTS / path).read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in names, s.covered_by
    assert errno.ENOSPC == 28  # the catalogue's errno
