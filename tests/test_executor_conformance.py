"""CPython's own executor tests, run against ``parkit.ProcessPoolExecutor``.

``parkit.ProcessPoolExecutor`` is a drop-in for ``concurrent.futures.ProcessPoolExecutor``,
so the behaviour tests CPython ships for the stdlib executor (the package
``test.test_concurrent_futures``, installed with CPython 3.12+ unless the distribution
strips the ``test`` package) should pass against it too. This module runs the
ProcessPool variants of those tests, for the ``fork``, ``forkserver`` and ``spawn``
start methods, with parkit's class substituted for the stdlib's.

How: one runner subprocess per test module and start method, :data:`PARALLEL` at a
time (CPython's test machinery, its module fixtures and its ``multiprocessing``
helpers stay out of this pytest process, and a hang or a leak in one module can't
spill into the others). A runner replaces ``concurrent.futures.ProcessPoolExecutor``
by parkit's class *before* it imports the test module, so the mixins'
``executor_type = futures.ProcessPoolExecutor`` pick it up; the tests that start a
fresh interpreter (``assert_python_ok``) get the same substitution prepended to
their code. It reports one JSON line per test; this test asserts that no test of
the curated list fails, and names each one that does.

The curated list is every ProcessPool test of the modules in :data:`MODULES`
except :data:`EXCLUDED`: tests of behaviour parkit changes on purpose (a dead
worker fails only its own future, with ``parkit.WorkerCrashed``, and the pool goes
on; a value that can't be pickled or unpickled fails only its own future, with
``parkit.SerializationError``) and tests that reach into the stdlib executor's
private attributes. Tests CPython itself skips (Windows-only ones, ...) count as
passed; a test that leaves threads or child processes behind (CPython's
``ENV_CHANGED``) counts as failed.

Adaptations of CPython's harness, none of which changes what a test asserts:

* ``ExecutorDeadlockTest.TIMEOUT`` (``support.LONG_TIMEOUT``, 300 s) is
  :data:`DEADLOCK_TIMEOUT`, and ``_fail_on_deadlock`` (which reaches into
  ``executor._processes`` to clean up) reports the deadlock without private
  attributes;
* the modules' ``setUpModule`` (which registers ``multiprocessing.util._cleanup_tests``,
  a cleanup that waits for ever for the resource tracker when an earlier failure
  left a worker running) is not run: the runner's exit stops those helpers.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import parkit

#: CPython's test modules (in ``test.test_concurrent_futures``) whose ProcessPool
#: variants run here.
MODULES = (  # the slowest first: they start first
    "test_process_pool",
    "test_deadlock",
    "test_wait",
    "test_shutdown",
    "test_as_completed",
    "test_init",
)

#: The start methods the tests run under, each in a runner of its own.
START_METHODS = tuple(
    method
    for method in ("fork", "forkserver", "spawn")
    if method in multiprocessing.get_all_start_methods()
)

#: Seconds a crash test of ``test_deadlock`` waits for its future before it reports a
#: deadlock (CPython waits ``support.LONG_TIMEOUT``, 300 s).
DEADLOCK_TIMEOUT = 15.0

#: Runners (one per test module and start method) that run at the same time: most
#: of their time is spent sleeping or waiting for workers.
PARALLEL = 6
#: Seconds one runner may take before it is killed (its unfinished test: a hang).
RUN_TIMEOUT = 90.0
#: Seconds all the runners together may take.
RUN_DEADLINE = 150.0
#: Seconds an interrupted runner gets to exit before its process group is killed.
_STOP_GRACE = 5.0

#: Tests left out, with why. A key ``module.Class.test_name`` (``Class``: the
#: executor-independent test class, e.g. ``WaitTests``) leaves the test out under every
#: start method; ``module.Class.test_name[method]`` under that start method only.
EXCLUDED: dict[str, str] = {
    # -- parkit changes this on purpose: a dead worker fails only its own future.
    "test_process_pool.ProcessPoolExecutorTest.test_killed_child": (
        "expects one killed worker to break the whole pool; reads executor._processes"
    ),
    "test_deadlock.ExecutorDeadlockTest.test_error_at_task_unpickle": (
        "expects BrokenProcessPool; parkit fails that future alone with SerializationError"
    ),
    "test_deadlock.ExecutorDeadlockTest.test_exit_at_task_unpickle": (
        "expects BrokenProcessPool; parkit fails that future alone with SerializationError"
    ),
    "test_deadlock.ExecutorDeadlockTest.test_error_during_result_unpickle_in_result_handler": (
        "expects BrokenProcessPool; parkit fails that future alone with SerializationError"
    ),
    "test_deadlock.ExecutorDeadlockTest.test_exit_during_result_pickle_on_worker": (
        "expects the SystemExit raised while pickling the result; parkit raises "
        "SerializationError (SystemExit as __cause__)"
    ),
    "test_deadlock.ExecutorDeadlockTest.test_exit_during_result_unpickle_in_result_handler": (
        "expects BrokenProcessPool; parkit fails that future alone with SerializationError"
    ),
    "test_process_pool.ProcessPoolExecutorTest.test_max_tasks_per_child[fork]": (
        "expects ValueError: the stdlib refuses max_tasks_per_child with fork; parkit "
        "supports it (docs/pool.md)"
    ),
    # -- parkit changes this on purpose: how the worker's traceback travels.
    "test_process_pool.ProcessPoolExecutorTest.test_traceback": (
        "asserts __cause__ is the stdlib's private _RemoteTraceback; parkit re-raises with "
        "the worker's traceback itself"
    ),
    # -- reaches into the stdlib executor's private attributes.
    "test_process_pool.ProcessPoolExecutorTest.test_saturation": "reads executor._processes",
    "test_process_pool.ProcessPoolExecutorTest.test_idle_process_reuse_one": (
        "reads executor._processes"
    ),
    "test_process_pool.ProcessPoolExecutorTest.test_idle_process_reuse_multiple": (
        "reads executor._processes"
    ),
    "test_process_pool.ProcessPoolExecutorTest.test_max_tasks_per_child[forkserver]": (
        "reads executor._processes"
    ),
    "test_process_pool.ProcessPoolExecutorTest.test_max_tasks_per_child[spawn]": (
        "reads executor._processes"
    ),
    "test_process_pool.ProcessPoolExecutorTest"
    ".test_max_tasks_per_child_defaults_to_spawn_context": (
        "reads executor._mp_context; parkit's default is parkit.default_context()"
    ),
    "test_process_pool.ProcessPoolExecutorTest.test_python_finalization_error": (
        "patches private threading._start_joinable_thread and relies on the stdlib's own "
        "threads (manager, then queue feeder)"
    ),
    "test_shutdown.ProcessPoolShutdownTest.test_processes_terminate": "reads executor._processes",
    "test_shutdown.ProcessPoolShutdownTest.test_context_manager_shutdown": (
        "reads executor._processes"
    ),
    "test_shutdown.ProcessPoolShutdownTest.test_del_shutdown": (
        "reads executor._executor_manager_thread, _processes and _call_queue"
    ),
    "test_shutdown.ProcessPoolShutdownTest.test_shutdown_no_wait": (
        "reads executor._executor_manager_thread, _processes and _call_queue"
    ),
    "test_deadlock.ExecutorDeadlockTest.test_shutdown_deadlock_pickle": (
        "reads executor._executor_manager_thread"
    ),
    "test_init.FailingInitializerMixin.test_initializer": "reads executor._broken",
    "test_init.FailingInitializerResourcesTest.test_spawn": (
        "runs FailingInitializerMixin.test_initializer (excluded above); its failure record "
        "keeps the executor and its Queue alive, so the tracker sees the Queue's semaphores "
        "(tests/test_executor.py checks that the Queue is released)"
    ),
    "test_init.FailingInitializerResourcesTest.test_forkserver": (
        "as test_spawn: runs the excluded FailingInitializerMixin.test_initializer"
    ),
}

# The runner, run as ``python -c RUNNER CONFIG_JSON OUTPUT_PATH``. ``-c`` matters: with
# no main module file, spawn and forkserver workers don't re-import it.
RUNNER = r"""
import faulthandler
import importlib
import json
import os
import signal
import sys
import tempfile
import time
import unittest

config = json.loads(sys.argv[1])
out = open(sys.argv[2], "w", encoding="utf-8")


def emit(**event):
    out.write(json.dumps(event) + "\n")
    out.flush()


try:
    import test.test_concurrent_futures
except (ImportError, unittest.SkipTest) as e:
    emit(event="unavailable", detail=f"{type(e).__name__}: {e}")
    sys.exit(0)

import concurrent.futures

import parkit

# Before the test modules are imported: their mixins read it at class creation.
concurrent.futures.ProcessPoolExecutor = parkit.ProcessPoolExecutor
from test import support
from test.test_concurrent_futures import util

modules = {
    name: importlib.import_module("test.test_concurrent_futures." + name)
    for name in config["modules"]
}
assert util.ProcessPoolForkMixin.executor_type is parkit.ProcessPoolExecutor

# Tests that start a fresh interpreter ("-c" code importing ProcessPoolExecutor from
# concurrent.futures): the same substitution, first thing. "-I" ignores PYTHONPATH.
prelude = (
    f"import sys; sys.path.insert(0, {config['parkit_path']!r}); "
    "import concurrent.futures, parkit; "
    "concurrent.futures.ProcessPoolExecutor = parkit.ProcessPoolExecutor\n"
)


def patch_python_runner(module):
    original = module.assert_python_ok

    def assert_python_ok(*args, **kwargs):
        args = list(args)
        at = args.index("-c") + 1
        args[at] = prelude + args[at]
        return original(*args, **kwargs)

    module.assert_python_ok = assert_python_ok


for module in modules.values():
    if hasattr(module, "assert_python_ok"):
        patch_python_runner(module)
    if hasattr(module, "setUpModule"):
        module.setUpModule = lambda: None

if "test_deadlock" in modules:
    deadlock = modules["test_deadlock"].ExecutorDeadlockTest
    deadlock.TIMEOUT = config["deadlock_timeout"]

    def _fail_on_deadlock(self, executor):
        with tempfile.TemporaryFile(mode="w+") as f:
            faulthandler.dump_traceback(file=f)
            f.seek(0)
            stacks = f.read()
        executor.shutdown(wait=False, cancel_futures=True)
        self.fail(f"Executor deadlock (no result after {self.TIMEOUT} s):\n\n{stacks}")

    deadlock._fail_on_deadlock = _fail_on_deadlock

methods = set(config["start_methods"])
excluded = set(config["excluded"])
loader = unittest.TestLoader()
suite = unittest.TestSuite()
names = {}
discovered = []


def add(cls, method_name, key):
    discovered.append(key)
    if key in excluded or key.partition("[")[0] in excluded:
        return
    test = cls(method_name)
    names[test.id()] = key
    suite.addTest(test)


for module_name, module in modules.items():
    for class_name, cls in vars(module).items():
        if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase)):
            continue
        if cls.__module__ != module.__name__:
            continue  # imported, not defined here
        if issubclass(cls, util.ExecutorMixin):
            if cls.executor_type is not parkit.ProcessPoolExecutor:
                continue  # the ThreadPool variants
            if cls.ctx not in methods:
                continue
            # create_executor_tests() builds type(name, (Mixin, ExecutorMixin, ...)).
            mixin = cls.__mro__[1].__name__
            for method_name in loader.getTestCaseNames(cls):
                add(cls, method_name, f"{module_name}.{mixin}.{method_name}[{cls.ctx}]")
        elif class_name == "FailingInitializerResourcesTest":
            for method_name in loader.getTestCaseNames(cls):
                method = method_name.removeprefix("test_")
                if method in methods:
                    add(cls, method_name, f"{module_name}.{class_name}.{method_name}[{method}]")

emit(event="discovered", names=discovered)
interrupted = False


def on_sigint(signum, frame):
    # The harness interrupts a runner that ran out of time: the test running now hangs.
    global interrupted
    interrupted = True
    raise KeyboardInterrupt


signal.signal(signal.SIGINT, on_sigint)


class Result(unittest.TestResult):
    def startTest(self, test):
        super().startTest(test)
        self.started = time.monotonic()
        self.outcome = "pass"
        self.details = []
        support.environment_altered = False
        emit(event="start", name=self.name(test))

    def name(self, test):
        return names.get(test.id(), test.id())

    def record(self, outcome, detail):
        if self.outcome in ("pass", "skip"):
            self.outcome = outcome
        self.details.append(detail)

    def addError(self, test, err):
        super().addError(test, err)
        detail = self._exc_info_to_string(err, test)
        if isinstance(test, unittest.suite._ErrorHolder):  # a class or module fixture
            emit(event="end", name=str(test), outcome="error", detail=detail, seconds=0.0)
        else:
            self.record("error", detail)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.record("fail", self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.record("fail", f"{subtest}: {self._exc_info_to_string(err, test)}")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if isinstance(test, unittest.suite._ErrorHolder):  # a skipped class or module
            emit(event="end", name=str(test), outcome="skip", detail=reason, seconds=0.0)
            return
        if self.outcome == "pass":
            self.outcome = "skip"
        self.details.append(reason)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.record("fail", "unexpected success")

    def stopTest(self, test):
        super().stopTest(test)
        if interrupted:
            self.outcome = "hang"
            self.details.insert(0, "interrupted: it ran past the runner's time limit")
        if support.environment_altered and self.outcome in ("pass", "skip"):
            self.record(
                "env_changed",
                "left threads or child processes behind (see the runner's output)",
            )
        emit(
            event="end",
            name=self.name(test),
            outcome=self.outcome,
            detail="\n".join(self.details),
            seconds=round(time.monotonic() - self.started, 2),
        )


started = time.monotonic()
suite.run(Result())
emit(event="done", seconds=round(time.monotonic() - started, 2))
"""


@dataclass
class _Run:
    """One runner (one test module under one start method): its events and its end."""

    module: str
    method: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    stopped_after: float | None = None
    output: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"<runner for {self.module} under {self.method}>"

    def first(self, kind: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == kind), None)

    def start(self, env: dict[str, str]) -> None:
        config = {
            "modules": [self.module],
            "start_methods": [self.method],
            "excluded": sorted(EXCLUDED),
            "deadlock_timeout": DEADLOCK_TIMEOUT,
            "parkit_path": _parkit_path(),
        }
        self.workdir.mkdir()
        with (self.workdir / "output.txt").open("wb") as output:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", RUNNER, json.dumps(config), "events.jsonl"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                # A session of its own: killpg() then takes its workers along.
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    def stop(self) -> None:
        """Interrupt the runner; SIGKILL its process group (workers too) if it lingers.

        SIGINT first: exiting normally, the runner stops its workers and its resource
        tracker removes the semaphores it leaves in ``/dev/shm``.
        """
        assert self.proc is not None
        self.stopped_after = time.monotonic() - self.started_at
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(_STOP_GRACE)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def collect(self) -> None:
        events = self.workdir / "events.jsonl"
        if events.exists():
            lines = events.read_text(encoding="utf-8").splitlines()
            self.events = [json.loads(line) for line in lines if line.strip()]
        output = self.workdir / "output.txt"
        if output.exists():
            self.output = output.read_text(encoding="utf-8", errors="replace")


def _parkit_path() -> str:
    """The directory that holds the ``parkit`` package this test imported."""
    return str(Path(parkit.__file__).resolve().parent.parent)


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    # The runners must import this parkit, whatever else is on their path.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_parkit_path(), env.get("PYTHONPATH")]))
    env.pop("PARKIT_START_METHOD", None)
    env["PYTHONFAULTHANDLER"] = "1"
    return env


def _unavailable_reason() -> str | None:
    """Why this interpreter can't import CPython's tests, or None if it can."""
    probe = subprocess.run(
        [sys.executable, "-c", "import test.test_concurrent_futures"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode == 0:
        return None
    lines = probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"]
    return lines[-1]


def _run_all(tmp_path: Path) -> list[_Run]:
    """Run every (module, start method) runner, :data:`PARALLEL` at a time."""
    env = _subprocess_env()
    runs = [
        _Run(module, method, tmp_path / f"{module}-{method}")
        for module in MODULES
        for method in START_METHODS
    ]
    waiting = list(reversed(runs))
    running: list[_Run] = []
    deadline = time.monotonic() + RUN_DEADLINE
    try:
        while waiting or running:
            while waiting and len(running) < PARALLEL and time.monotonic() < deadline:
                run = waiting.pop()
                run.start(env)
                running.append(run)
            if not running:
                break  # out of time: the rest never started
            time.sleep(0.05)
            now = time.monotonic()
            for run in list(running):
                assert run.proc is not None
                if run.proc.poll() is not None:
                    running.remove(run)
                elif now - run.started_at > RUN_TIMEOUT or now > deadline:
                    run.stop()
                    running.remove(run)
    finally:
        for run in running:
            run.stop()
    for run in runs:
        run.collect()
    return runs


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _failures(runs: list[_Run]) -> dict[str, str]:
    """Each failed test (or broken runner), with what went wrong."""
    failures: dict[str, str] = {}
    discovered: set[str] = set()
    for run in runs:
        ended = {e["name"]: e for e in run.events if e["event"] == "end"}
        for name, event in ended.items():
            if event["outcome"] not in ("pass", "skip"):
                failures[name] = f"{event['outcome'].upper()}\n{_tail(event['detail'], 25)}"
        found = run.first("discovered")
        if found is not None:
            discovered.update(found["names"])
        if run.proc is None:
            failures[run.name] = f"never started: out of time ({RUN_DEADLINE:g} s in all)"
            continue
        if run.stopped_after is not None:
            how = f"was stopped after {run.stopped_after:.0f} s"
        elif run.proc.returncode != 0:
            how = f"exited with status {run.proc.returncode}"
        elif run.first("done") is None:
            how = "stopped before it had run every test"
        else:
            if not ended and found is not None and found["names"]:
                failures[run.name] = "ran none of its tests"
            continue
        for event in run.events:
            if event["event"] == "start" and event["name"] not in ended:
                failures[event["name"]] = f"HANG: did not finish; the runner {how}"
        failures[run.name] = f"the runner {how}; its output ends with:\n{_tail(run.output, 40)}"
    if all(run.first("discovered") is not None for run in runs):
        for key in sorted(EXCLUDED):
            if not any(name == key or name.partition("[")[0] == key for name in discovered):
                failures[f"<EXCLUDED[{key!r}]>"] = "names no test of this CPython: update it"
    return failures


def _describe(failures: dict[str, str]) -> str:
    lines = [
        f"{len(failures)} of CPython's concurrent.futures tests failed against "
        f"parkit.ProcessPoolExecutor (Python {sys.version.split()[0]}):",
        "",
    ]
    for name in sorted(failures):
        lines.append(f"* {name}: " + failures[name].replace("\n", "\n      "))
    lines += ["", "failed: " + ", ".join(sorted(failures))]
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.timeout(RUN_DEADLINE + 60)
def test_cpython_executor_tests_pass(tmp_path: Path) -> None:
    reason = _unavailable_reason()
    if reason is not None:
        pytest.skip(f"CPython's test.test_concurrent_futures is not importable here: {reason}")
    runs = _run_all(tmp_path)
    for run in runs:
        unavailable = run.first("unavailable")
        if unavailable is not None:
            pytest.skip(f"CPython's test.test_concurrent_futures: {unavailable['detail']}")
    failures = _failures(runs)
    assert not failures, _describe(failures)
