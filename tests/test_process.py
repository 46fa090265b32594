"""parkit.Process and parkit.run: results, errors, crashes, timeouts (SPEC §2, §3).

The hostile catalogue (tests/hostile.py) is driven through both ``Process`` and
``run`` under every start method; each case asserts the exact outcome within a
bound.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import hostile
import parkit
import sync_tasks
from parkit._core._context import available_methods

# Every case must resolve well within this (start-up included).
BOUND_S = 10.0

METHODS = available_methods()

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Case:
    """One hostile call and what the parent must see."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    # The exception type expected from result()/run(), or None for a value.
    raises: type[BaseException] | None = None
    value: Any = None
    # Attribute checks on the raised exception.
    attrs: dict[str, Any] = field(default_factory=dict)
    # Start methods under which nothing is pickled on the way in (fork): the
    # argument-side cases then succeed, as serial code would.
    fork_value: Any = "same"


def _exitcode_of_signal(sig: signal.Signals) -> int:
    return -int(sig)


CASES: dict[str, Case] = {
    "value": Case(hostile.add, (2, 3), value=5),
    "custom-init-exception": Case(
        hostile.raise_custom_init,
        raises=parkit.RemoteError,
        attrs={"type_name": "hostile.CustomInitError", "message": "1: boom"},
    ),
    "unpicklable-attribute-exception": Case(
        hostile.raise_unpicklable_attr,
        raises=parkit.RemoteError,
        attrs={"type_name": "hostile.UnpicklableAttrError", "message": "holds a lock"},
    ),
    "base-exception": Case(
        hostile.raise_base_exception,
        raises=hostile.MyBaseException,
        attrs={"args": ("not an Exception",)},
    ),
    "sys-exit-3": Case(hostile.sys_exit, (3,), raises=SystemExit, attrs={"code": 3}),
    "sys-exit-message": Case(hostile.sys_exit, ("bye",), raises=SystemExit, attrs={"code": "bye"}),
    "os-exit-7": Case(
        hostile.os_exit,
        (7,),
        raises=parkit.WorkerCrashed,
        attrs={"exitcode": 7, "signal": None, "item_index": None},
    ),
    "sigkill": Case(
        hostile.sigkill_self,
        raises=parkit.WorkerCrashed,
        attrs={"exitcode": -9, "signal": signal.SIGKILL},
    ),
    "segfault": Case(
        hostile.segfault,
        raises=parkit.WorkerCrashed,
        attrs={"exitcode": -11, "signal": signal.SIGSEGV},
    ),
    "error-at-pickle-argument": Case(
        hostile.identity,
        (hostile.ErrorAtPickle(),),
        raises=parkit.SerializationError,
        attrs={"direction": "argument", "stage": "pickle"},
        # Under fork the argument is inherited, and the result (the same object)
        # is what fails to pickle.
        fork_value=parkit.SerializationError,
    ),
    "error-at-unpickle-argument": Case(
        type,
        (hostile.ErrorAtUnpickle(),),
        raises=parkit.SerializationError,
        attrs={"direction": "argument", "stage": "unpickle"},
        fork_value=hostile.ErrorAtUnpickle,
    ),
    "exit-at-unpickle-argument": Case(
        type,
        (hostile.ExitAtUnpickle(),),
        raises=parkit.SerializationError,
        attrs={"direction": "argument", "stage": "unpickle"},
        fork_value=hostile.ExitAtUnpickle,
    ),
    "unpicklable-result": Case(
        hostile.return_unpicklable,
        raises=parkit.SerializationError,
        attrs={"direction": "result", "stage": "pickle"},
    ),
    "error-at-unpickle-result": Case(
        hostile.return_error_at_unpickle,
        raises=parkit.SerializationError,
        attrs={"direction": "result", "stage": "unpickle"},
    ),
    "exit-at-unpickle-result": Case(
        hostile.return_exit_at_unpickle,
        raises=parkit.SerializationError,
        attrs={"direction": "result", "stage": "unpickle"},
    ),
    "result-too-deep": Case(
        hostile.return_deep,
        raises=parkit.SerializationError,
        attrs={"direction": "result", "stage": "pickle"},
    ),
    "recursion-error": Case(hostile.raise_recursion, raises=RecursionError),
}


def _check(case: Case, method: str, call: Callable[[], Any], pid: Callable[[], int | None]) -> None:
    expected: Any = case.raises
    if method == "fork" and case.fork_value != "same":
        expected = case.fork_value
    start = time.monotonic()
    if isinstance(expected, type) and issubclass(expected, BaseException):
        with pytest.raises(expected) as info:
            call()
        exc = info.value
        assert type(exc) is expected
        for name, value in case.attrs.items():
            want = value
            if method == "fork" and case.fork_value != "same" and name == "direction":
                want = "result"
            assert getattr(exc, name) == want, name
        if isinstance(exc, parkit.WorkerCrashed):
            assert exc.pid == pid()
            assert exc.pid is not None
    elif isinstance(expected, type):
        assert call() is expected
    else:
        assert call() == case.value
    assert time.monotonic() - start < BOUND_S


@pytest.mark.parametrize("name", sorted(CASES))
def test_catalogue_through_run(name: str, context: str) -> None:
    case = CASES[name]
    if case.raises is parkit.WorkerCrashed:
        # run() reaps its child, so its pid can't be compared from outside.
        _check_crash_run(case, context)
    else:
        _check(case, context, lambda: parkit.run(case.fn, *case.args, context=context), _no_pid)


def _no_pid() -> int | None:
    return None


def _check_crash_run(case: Case, method: str) -> None:
    start = time.monotonic()
    with pytest.raises(parkit.WorkerCrashed) as info:
        parkit.run(case.fn, *case.args, context=method)
    assert time.monotonic() - start < BOUND_S
    for name, value in case.attrs.items():
        assert getattr(info.value, name) == value, name
    assert isinstance(info.value.pid, int)
    assert info.value.pid > 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_catalogue_through_process(name: str, context: str) -> None:
    case = CASES[name]
    with parkit.Process(case.fn, case.args, context=context) as p:

        def call() -> Any:
            p.start()  # raises SerializationError for an argument that won't pickle
            return p.result(timeout=BOUND_S)

        _check(case, context, call, lambda: p.pid)
    assert p.exitcode is not None or p.pid is None


_SEGFAULT = """\
import sys
import hostile
import parkit

if __name__ == "__main__":
    try:
        parkit.run(hostile.segfault, context=sys.argv[1])
    except parkit.WorkerCrashed as e:
        print(e.signal.name)
    with parkit.Pool(1, context=sys.argv[1]) as pool:
        print(type(pool.starmap(hostile.segfault, [()], errors="return")[0]).__name__)
"""


def test_a_deliberate_segfault_prints_no_fatal_error_dump(context: str) -> None:
    # As under pytest, whose faulthandler a forked child inherits: the
    # catalogue's crash must not print "Fatal Python error" and every stack.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS_DIR, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", _SEGFAULT, context],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["SIGSEGV", "WorkerCrashed"]
    assert done.stderr == ""


# --- results and the stdlib surface --------------------------------------------


def test_result_is_the_return_value_and_exitcode_stays_zero(context: str) -> None:
    # The tutorial's "return 1" example: the parent finally gets the 1.
    p: parkit.Process[int] = parkit.Process(hostile.identity, (1,), context=context)
    assert (p.pid, p.exitcode) == (None, None)
    p.start()
    assert p.result(timeout=BOUND_S) == 1
    p.join(BOUND_S)
    assert p.exitcode == 0
    assert not p.is_alive()
    assert isinstance(p.sentinel, int)
    # result() can be asked again and gives the same answer.
    assert p.result() == 1


def test_kwargs_name_and_daemon(context: str) -> None:
    p = parkit.Process(
        hostile.add, (1, 2), {"scale": 10}, name="adder", daemon=True, context=context
    )
    assert p.name == "adder"
    assert p.daemon is True
    p.start()
    assert p.result(timeout=BOUND_S) == 30
    p.join()
    assert "adder" in repr(p)


def test_lambdas_and_closures_travel(context: str) -> None:
    offset = 40

    def closure(x: int) -> int:
        return x + offset

    assert parkit.run(closure, 2, context=context) == 42
    assert parkit.run(lambda: offset + 1, context=context) == 41


def test_exception_carries_worker_traceback_and_note(context: str) -> None:
    p = parkit.Process(hostile.raise_chained, context=context)
    p.start()
    with pytest.raises(ValueError, match="wrapped") as info:
        p.result(timeout=BOUND_S)
    p.join()
    exc = info.value
    text = "".join(traceback.format_exception(exc))
    # The worker's raise line, from the real file, with its source.
    assert 'hostile.py", line' in text
    assert 'raise ValueError("wrapped") from e' in text
    assert exc.__notes__ == [
        f"[parkit] raised in process {p.name!r} (pid {p.pid}) running hostile.raise_chained"
    ]
    assert isinstance(exc.__cause__, KeyError)
    assert exc.__cause__.args == ("missing",)
    # The stdlib's exit code for an uncaught exception is kept.
    assert p.exitcode == 1


def test_result_timeout_leaves_the_child_running(context: str) -> None:
    p = parkit.Process(hostile.sleep_forever, context=context)
    p.start()
    start = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        p.result(timeout=0.5)
    elapsed = time.monotonic() - start
    assert type(info.value) is TimeoutError
    assert 0.45 <= elapsed < 0.5 + 1.0
    assert p.is_alive()
    p.terminate()
    with pytest.raises(parkit.WorkerCrashed) as crash:
        p.result(timeout=BOUND_S)
    assert crash.value.signal == signal.SIGTERM
    assert crash.value.exitcode == -15
    p.join()


def test_kill_reports_sigkill(context: str) -> None:
    p = parkit.Process(hostile.sleep_forever, context=context)
    p.start()
    p.kill()
    p.join(BOUND_S)
    assert p.exitcode == -9
    with pytest.raises(parkit.WorkerCrashed, match=r"SIGKILL\(-9\)"):
        p.result()


def test_block_left_by_exception_stops_the_child(context: str) -> None:
    start = time.monotonic()
    p = parkit.Process(hostile.sleep_forever, context=context)
    with pytest.raises(RuntimeError, match="leave"), p:  # noqa: PT012
        p.start()
        raise RuntimeError("leave the block")
    assert time.monotonic() - start < BOUND_S
    assert p.exitcode == -signal.SIGTERM


def test_block_end_joins(context: str) -> None:
    with parkit.Process(time.sleep, (0.3,), context=context) as p:
        p.start()
    assert p.exitcode == 0


def test_join_drains_a_large_result(context: str) -> None:
    # A result far larger than a pipe's buffer: join() first must not deadlock
    # (the stdlib's "joining processes that use queues" trap, FAULTS F10).
    p = parkit.Process(bytes, (8 * 1024 * 1024,), context=context)
    p.start()
    p.join(BOUND_S)
    assert p.exitcode == 0
    assert p.result() == bytes(8 * 1024 * 1024)


def test_result_before_start_is_an_error() -> None:
    p = parkit.Process(hostile.identity, (1,))
    with pytest.raises(RuntimeError, match="not started"):
        p.result()


def test_start_twice_is_an_error(context: str) -> None:
    p = parkit.Process(hostile.identity, (1,), context=context)
    p.start()
    with pytest.raises(RuntimeError, match="only be started once"):
        p.start()
    p.join()


def test_target_must_be_callable() -> None:
    with pytest.raises(TypeError, match="target must be callable"):
        parkit.Process(42)  # type: ignore[arg-type]


def test_stdlib_lock_passes_as_argument(context: str) -> None:
    # The tutorial passes multiprocessing.Lock() to Process: that keeps working.
    ctx = multiprocessing.get_context(context)
    lock = ctx.Lock()
    assert parkit.run(_acquire_release, lock, context=context) is True


def _acquire_release(lock: Any) -> bool:
    with lock:
        return True


# --- run() ------------------------------------------------------------------------


def test_run_timeout_stops_the_child(context: str) -> None:
    start = time.monotonic()
    with pytest.raises(parkit.TaskTimeout) as info:
        parkit.run(hostile.sleep_forever, timeout=0.5, context=context)
    elapsed = time.monotonic() - start
    assert 0.45 <= elapsed < 0.5 + 1.5
    assert info.value.timeout == 0.5
    assert info.value.item_index is None
    assert isinstance(info.value, TimeoutError)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_run_rejects_bad_timeouts(bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeout must be a positive number"):
        parkit.run(hostile.identity, 1, timeout=bad)


def test_run_passes_kwargs_through(context: str) -> None:
    assert parkit.run(hostile.add, 1, 2, scale=3, context=context) == 9


def test_run_inside_run(context: str) -> None:
    # Nested: a run() child may itself start a process.
    assert parkit.run(_nested, context=context) == 7


def _nested() -> int:
    return parkit.run(hostile.add, 3, 4)


def test_serialization_error_chains_the_pickling_error(context: str) -> None:
    with pytest.raises(parkit.SerializationError) as info:
        parkit.run(hostile.return_unpicklable, context=context)
    assert isinstance(info.value.__cause__, TypeError)
    assert "_thread.lock" in str(info.value.__cause__)
    assert isinstance(info.value, pickle.PicklingError)


def test_keyboard_interrupt_in_child_is_reraised(context: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        parkit.run(hostile.raise_keyboard_interrupt, context=context)


def test_no_child_left_after_run(context: str) -> None:
    before = {c.pid for c in multiprocessing.active_children()}
    parkit.run(os.getpid, context=context)
    assert {c.pid for c in multiprocessing.active_children()} == before


def test_reading_the_result_of_an_exited_process_releases_it() -> None:
    from parkit import _process

    p = parkit.Process(abs, (-3,))
    p.start()
    time.sleep(0.5)  # let it exit
    assert p.result(timeout=BOUND_S) == 3
    p._process.join(BOUND_S)
    p.result()  # a second read sees the exit
    assert p not in _process._live


# --- a script that ends without joining its children (the tutorial's) ----------

# The tutorial's first lock example, ported: the parent starts three children
# that share a Lock and falls off the end of the script without joining them.
# A hook registered before parkit is imported runs after every hook of parkit and
# multiprocessing (atexit is last-in, first-out): it reports what the children
# ended with and whether the lock's file outlived them.
_TUTORIAL_LOCK = """\
import atexit
import os
import sys

procs = []

def report():
    print("exit codes:", [p.exitcode for p in procs])
    print("lock file left:", os.path.exists("/dev/shm/" + lock._segment.name))

atexit.register(report)

import parkit

def printer(item, lock):
    lock.acquire()
    print(f"Printing {item}", flush=True)
    lock.release()

if __name__ == "__main__":
    lock = parkit.Lock()
    for item in ["apple", "banana", "cherry"]:
        p = parkit.Process(target=printer, args=(item, lock), context=sys.argv[1])
        p.start()
        procs.append(p)
"""


def _run_script(source: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS_DIR, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", source, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_children_left_running_at_exit_keep_their_lock(context: str) -> None:
    # The lock's file used to be removed at exit before the children were
    # joined: under spawn and forkserver they could not rebuild their argument
    # and all three exited 1, silently.
    done = _run_script(_TUTORIAL_LOCK, context)
    assert done.stderr == ""
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert sorted(lines[:3]) == ["Printing apple", "Printing banana", "Printing cherry"]
    assert lines[3:] == ["exit codes: [0, 0, 0]", "lock file left: False"]


# multiprocessing's name for the first child of each start method.
_FIRST_CHILD = {
    "fork": "ForkProcess-1",
    "forkserver": "ForkServerProcess-1",
    "spawn": "SpawnProcess-1",
}

_FAILS_AROUND_THE_TARGET = """\
import sys
import hostile
import sync_tasks
import parkit

if __name__ == "__main__":
    case, method = sys.argv[1:]
    if case == "run":
        try:
            parkit.run(type, hostile.ErrorAtUnpickle(), context=method)
        except parkit.SerializationError as e:
            print(type(e).__name__, e.direction, e.stage, type(e.__cause__).__name__)
        sys.exit()
    if case == "argument":
        p = parkit.Process(type, (hostile.ErrorAtUnpickle(),), context=method)
    else:
        p = parkit.Process(hostile.return_unpicklable, context=method)
    p.start()
    p.join()
    print("exitcode:", p.exitcode)
    try:
        p.result()
    except parkit.SerializationError as e:
        print(type(e).__name__, e.direction, e.stage, type(e.__cause__).__name__)
"""


@pytest.mark.parametrize("method", [m for m in METHODS if m != "fork"])
def test_a_child_whose_arguments_fail_to_rebuild_says_so(method: str) -> None:
    # Under fork the arguments are inherited, not rebuilt.
    done = _run_script(_FAILS_AROUND_THE_TARGET, "argument", method)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "exitcode: 1",
        "SerializationError argument unpickle UnpicklingError",
    ]
    # Printed by the child as the stdlib prints a target's exception.
    err = done.stderr.splitlines()
    assert err[0] == f"Process {_FIRST_CHILD[method]}:"
    assert err[1] == "Traceback (most recent call last):"
    assert "_pickle.UnpicklingError: hostile: refused at unpickle" in err
    assert "The above exception was the direct cause of the following exception:" in err
    assert err[-1] == (
        "parkit.errors.SerializationError: could not unpickle the call in the child "
        "process: UnpicklingError: hostile: refused at unpickle"
    )


def test_a_child_whose_result_fails_to_pickle_says_so(context: str) -> None:
    done = _run_script(_FAILS_AROUND_THE_TARGET, "result", context)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "exitcode: 1",
        "SerializationError result pickle TypeError",
    ]
    err = done.stderr.splitlines()
    assert err[0] == f"Process {_FIRST_CHILD[context]}:"
    assert err[-1].startswith(
        "parkit.errors.SerializationError: could not pickle the result of "
        "hostile.return_unpicklable, a lock: TypeError: "
    )


@pytest.mark.parametrize("method", [m for m in METHODS if m != "fork"])
def test_run_stays_quiet_when_the_arguments_fail_to_rebuild(method: str) -> None:
    # run()'s caller gets the exception: the child prints nothing.
    done = _run_script(_FAILS_AROUND_THE_TARGET, "run", method)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["SerializationError argument unpickle UnpicklingError"]
    assert done.stderr == ""


def test_what_a_child_keeps_to_its_end_is_removed_when_it_exits(context: str) -> None:
    # A child exits through multiprocessing's exit function, not atexit: the
    # files it owns are removed there, once its own children are joined.
    with parkit.Process(sync_tasks.keep_a_lock_and_a_shared_array, context=context) as p:
        p.start()
        paths = p.result(timeout=BOUND_S)
    assert p.exitcode == 0
    assert [os.path.exists(path) for path in paths] == [False, False]


def test_a_child_whose_sentinel_is_numbered_above_1023_sees_its_parent_alive(
    context: str,
) -> None:
    # A pool worker asks this when its task pipe closes; "gone" would make it
    # remove every segment of its live parent.
    assert parkit.run(sync_tasks.parent_gone_with_a_high_sentinel, context=context) is False


def test_what_a_child_made_is_removed_when_it_leaves_by_os_exit_after_its_result(
    context: str,
) -> None:
    # Its result said that it had made segments, so its parent looks for them
    # although it exited with code 0 (a child that made none is not looked for).
    with parkit.Process(sync_tasks.make_objects_return_and_exit, context=context) as p:
        p.start()
        paths = p.result(timeout=BOUND_S)
        p.join(BOUND_S)
    assert p.exitcode == 0
    assert len(paths) == 2
    assert [os.path.exists(path) for path in paths] == [False, False]


@pytest.mark.parametrize("how", ["terminate", "kill", "os._exit"])
def test_what_a_child_stopped_by_force_made_is_removed_once_it_is_reaped(
    context: str, how: str
) -> None:
    # A child stopped by a signal, or leaving by os._exit, runs no exit hook:
    # its parent removes the files named after it once it has reaped it.
    paths = parkit.Queue[str]()
    mode = "os._exit" if how == "os._exit" else "wait"
    p = parkit.Process(sync_tasks.make_objects_and_wait, (paths, mode), context=context)
    p.start()
    made = [paths.get(timeout=BOUND_S), paths.get(timeout=BOUND_S)]
    assert [os.path.exists(path) for path in made] == [True, True]
    if how == "terminate":
        p.terminate()
    elif how == "kill":
        p.kill()
    p.join(BOUND_S)
    assert p.exitcode == {"terminate": -15, "kill": -9, "os._exit": 3}[how]
    assert [os.path.exists(path) for path in made] == [False, False]


_DAEMON_AT_EXIT = """\
import sys
import parkit
import sync_tasks

if __name__ == "__main__":
    paths = parkit.Queue()
    p = parkit.Process(sync_tasks.make_objects_and_wait, (paths, "wait"),
                       context=sys.argv[1], daemon=True)
    p.start()
    print(paths.get(timeout=10), paths.get(timeout=10), flush=True)
"""


def test_what_a_daemon_made_is_removed_when_it_is_stopped_at_exit(context: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _DAEMON_AT_EXIT, context],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parent,
    )
    assert (done.returncode, done.stderr) == (0, "")
    made = done.stdout.split()
    assert len(made) == 2
    assert [os.path.exists(path) for path in made] == [False, False]


# The tutorial's form: the lock made at the script's top level, so that every
# spawn or forkserver child makes one of its own while it imports the script.
_TOP_LEVEL_LOCK = """\
import os
import parkit

def printer(item, lock):
    with lock:
        os.write(1, f"Printing {item}\\n".encode())

lock = parkit.Lock()

if __name__ == "__main__":
    import sys
    for item in ["apple", "banana", "cherry"]:
        p = parkit.Process(target=printer, args=(item, lock), context=sys.argv[1])
        p.start()
"""


def test_files_a_child_makes_while_importing_the_script_go_at_its_exit(
    context: str, tmp_path: Path
) -> None:
    # multiprocessing clears a child's finalizers as its target starts, after
    # the child imported the script: the exit hook that removes the child's
    # own lock file must survive that (it did not under forkserver).
    script = tmp_path / "top_level_lock.py"
    script.write_text(_TOP_LEVEL_LOCK)
    before = {name for name in os.listdir("/dev/shm") if name.startswith("parkit-")}
    done = subprocess.run(
        [sys.executable, str(script), context],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(done.stdout.splitlines()) == [
        "Printing apple",
        "Printing banana",
        "Printing cherry",
    ]
    after = {name for name in os.listdir("/dev/shm") if name.startswith("parkit-")}
    assert after - before == set()
