"""The error tree (parkit.errors): shape, messages, and pickling of every class."""

from __future__ import annotations

import inspect
import pickle
import signal
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

import parkit
from parkit import errors

ERROR_CLASSES = sorted(
    (
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.ParkitError)
    ),
    key=lambda cls: cls.__name__,
)

# One representative instance per class, with every attribute set.
SAMPLES: dict[type[errors.ParkitError], errors.ParkitError] = {
    errors.ParkitError: errors.ParkitError("plain"),
    errors.RemoteError: errors.RemoteError("pkg.Err", "it broke", "Traceback...\n", "why"),
    errors.WorkerCrashed: errors.WorkerCrashed(-9, 1234, 7, what="fn"),
    errors.SerializationError: errors.SerializationError("no", "result", "unpickle", 3),
    errors.TaskTimeout: errors.TaskTimeout(2.5, 4, what="fn"),
    errors.LockTimeout: errors.LockTimeout(
        "held", 1.0, holder_pid=42, holder_alive=False, held_for=2.5
    ),
    errors.LockAbandoned: errors.LockAbandoned("died", holder_pid=42, held_for=1.5),
    errors.QueueClosed: errors.QueueClosed("closed"),
    errors.ManagerGone: errors.ManagerGone("the manager's server is gone"),
    errors.PoolBroken: errors.PoolBroken("the initializer raised"),
    errors.MainModuleError: errors.MainModuleError(
        "/srv/job.py", "forkserver", "worker 'parkit-pool1-w0' (pid 42)", 42
    ),
    errors.TooManyWaiters: errors.TooManyWaiters("96 threads already wait", limit=96),
}


def test_every_class_has_a_sample() -> None:
    assert set(SAMPLES) == set(ERROR_CLASSES)


def test_the_module_exports_exactly_the_tree() -> None:
    assert sorted(errors.__all__) == [cls.__name__ for cls in ERROR_CLASSES]
    for cls in ERROR_CLASSES:
        assert getattr(parkit, cls.__name__) is cls


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_pickle_round_trip_keeps_type_args_and_attributes(cls: type[errors.ParkitError]) -> None:
    original = SAMPLES[cls]
    original.add_note("a note")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(original, protocol))
        assert type(copy) is cls
        assert copy.args == original.args
        assert copy.__dict__ == original.__dict__
        assert str(copy) == str(original)
        assert copy.__notes__ == ["a note"]


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.TaskTimeout, TimeoutError),
        (errors.LockTimeout, TimeoutError),
        (errors.SerializationError, pickle.PicklingError),
        (errors.QueueClosed, EOFError),
        (errors.ManagerGone, ConnectionError),
        (errors.ManagerGone, EOFError),
        (errors.TooManyWaiters, RuntimeError),
        # Code written for concurrent.futures catches these (SPEC §2 drop-in).
        (errors.WorkerCrashed, BrokenProcessPool),
        (errors.PoolBroken, BrokenProcessPool),
        (errors.MainModuleError, errors.PoolBroken),
    ],
)
def test_leaves_also_subclass_the_matching_builtin(cls: type[Any], builtin: type[Any]) -> None:
    assert issubclass(cls, errors.ParkitError)
    assert issubclass(cls, builtin)


def test_worker_crashed_decodes_signal_and_exit_code() -> None:
    killed = errors.WorkerCrashed(-9, 100, 3, what="mod.fn")
    assert killed.signal is signal.SIGKILL
    assert killed.exitcode == -9
    assert killed.pid == 100
    assert killed.item_index == 3
    assert str(killed) == (
        "worker pid 100 died with SIGKILL(-9) while running mod.fn (item 3)"
        " (SIGKILL: often the kernel's out-of-memory killer)"
    )
    exited = errors.WorkerCrashed(7, 101)
    assert exited.signal is None
    assert str(exited) == "worker pid 101 died with EXIT(7)"
    unknown = errors.WorkerCrashed(None, None)
    assert unknown.signal is None
    assert str(unknown) == "worker died with unknown exit code"
    assert errors.WorkerCrashed(-11, 5).signal is signal.SIGSEGV


def test_main_module_error_says_what_happened_and_the_fix() -> None:
    exc = errors.MainModuleError("/srv/job.py", "spawn", "process 'Process-1' (pid 7)", 7)
    assert (exc.main_path, exc.start_method, exc.pid) == ("/srv/job.py", "spawn", 7)
    assert str(exc) == (
        "process 'Process-1' (pid 7) stopped while importing the main module /srv/job.py: "
        "the module starts parkit work when it is imported, and every process that the "
        "'spawn' start method starts imports it. Put the code that starts parkit work "
        'under `if __name__ == "__main__":`'
    )


def test_task_timeout_message() -> None:
    exc = errors.TaskTimeout(0.5, what="mod.fn")
    assert str(exc) == "task mod.fn did not finish within 0.5 s; its process was stopped"
    assert exc.timeout == 0.5
    assert exc.item_index is None


def test_remote_error_shows_message_reason_and_traceback() -> None:
    exc = errors.RemoteError("pkg.Err", "it broke", "Traceback (most recent call last):\n", "why")
    assert exc.type_name == "pkg.Err"
    assert exc.message == "it broke"
    assert exc.reason == "why"
    assert str(exc) == (
        "pkg.Err: it broke\n[parkit] sent as RemoteError because why\n\n"
        "Remote traceback:\nTraceback (most recent call last):"
    )
    assert exc.args == ("pkg.Err: it broke",)


def test_the_docstring_draws_every_class() -> None:
    doc = errors.__doc__ or ""
    for cls in ERROR_CLASSES:
        assert cls.__name__ in doc
