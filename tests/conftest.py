"""Suite-wide pytest configuration: Hypothesis profiles and the resource-leak guard.

Every test runs under the autouse ``_no_leaks`` fixture.  A test fails (as an error
in its teardown) if, after a grace period, it has left behind any of:

* a child process (or any descendant) that did not exist when the test started;
* a thread that did not exist when the test started and is still alive;
* a new entry in ``/dev/shm`` (shared memory segments, POSIX semaphores, ...);
* where segments are ``shm_open`` objects (``PARKIT_FORCE_PORTABLE=1``, as on
  macOS), a new marker in parkit's segment registry (``_core/_segments.py``).

Leaked processes are killed and reaped, and leaked ``/dev/shm`` entries are removed,
so that one leaky test does not make every later test fail too.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, settings

import parkit
from parkit._core import _segments
from parkit._core._context import available_methods

pytest_plugins = ["pytester"]

# --------------------------------------------------------------------------- hypothesis

settings.register_profile(
    "dev",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# ---------------------------------------------------------------------------- fixtures

#: Start methods this platform has.
METHODS = available_methods()


@pytest.fixture(params=METHODS)
def context(request: pytest.FixtureRequest) -> str:
    """Each start method this platform has."""
    method: str = request.param
    return method


# ------------------------------------------------------------- a sample of the methods

#: ``PARKIT_METHODS=sample``: each test that runs under every start method runs
#: under one, rotating with the test (stable across runs, every method covered
#: across the suite). ``.ci/run`` samples on the Pythons after the first, which
#: runs everything: the CI's time goes to the full set once. The fault matrix
#: samples its own cells (tests/faults/fault_catalogue.py) and is left alone.
SAMPLE_METHODS = os.environ.get("PARKIT_METHODS", "all") == "sample"
if os.environ.get("PARKIT_METHODS", "all") not in ("all", "sample"):
    raise pytest.UsageError('PARKIT_METHODS must be "all" or "sample"')


def method_of(item: pytest.Item) -> str | None:
    """The start method a parametrized test runs under, if it has one."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    for value in callspec.params.values():
        for part in value if isinstance(value, tuple) else (value,):
            if isinstance(part, str) and part in METHODS:
                return part
    return None


def sampled_method(item: pytest.Item, method: str) -> str:
    """The one method the sample keeps of ``item``'s variants."""
    base, _, ids = item.nodeid.partition("[")
    key = base + re.sub(rf"(?<![A-Za-z]){method}(?![A-Za-z])", "", ids)
    return METHODS[zlib.crc32(key.encode()) % len(METHODS)]


def pytest_report_header() -> str:
    which = "a rotating sample (PARKIT_METHODS=sample)" if SAMPLE_METHODS else "all"
    return f"parkit start methods: {which} of {', '.join(METHODS)}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SAMPLE_METHODS:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        method = method_of(item)
        if (
            method is None
            or "tests/faults/" in item.nodeid
            or method == sampled_method(item, method)
        ):
            kept.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


# ------------------------------------------------------------------------- leak checks

#: How long a test's leftovers get to go away on their own before they count as leaks.
GRACE_PERIOD_S = 3.0
_POLL_INTERVAL_S = 0.05
_SHM_DIR = "/dev/shm"
#: Where markers of parkit's shm_open segments live (None: segments are files).
_REGISTRY = None if _segments.FILES else _segments.registry_dir()
#: How a registry marker is named among the /dev/shm entries of a snapshot.
_MARKER = "marker:"

# Helper processes that multiprocessing starts once and keeps for the life of the
# interpreter.  They are recognised by their command line, but only as *direct*
# children: processes forked by the forkserver inherit its command line verbatim,
# and those are real workers that must be accounted for.
_STDLIB_HELPER_MARKERS = (
    "from multiprocessing.forkserver import main",
    "from parkit._core._forkserver import main",
    "from multiprocessing.resource_tracker import main",
)

# The processes of the Dask cluster that the session fixture ``dask_cluster`` starts:
# they (and the worker processes their nannies restart) live for the whole session.
_CLUSTER_PIDS: set[int] = set()

# Threads that distributed starts once in the process of a client and keeps for the
# life of the interpreter (its event loop, its pools for callbacks and offloaded
# work): they are accepted by name, and only once distributed is loaded.
_DISTRIBUTED_THREADS = re.compile(
    r"^(?:IO loop|Dask-Callback-Thread|Dask-Offload|TCP-Executor|Dask-Default-Threads)"
)


def _in_cluster(proc: Any) -> bool:
    if not _CLUSTER_PIDS:
        return False
    try:
        return int(proc.pid) in _CLUSTER_PIDS or any(
            int(parent.pid) in _CLUSTER_PIDS for parent in proc.parents()
        )
    except psutil.Error:
        return False


def _cluster_shm() -> set[str]:
    """The /dev/shm entries that the cluster's processes have mapped.

    A nanny makes multiprocessing semaphores (``sem.mp-*``) each time it starts a
    worker, a replacement for a killed one included; they are the cluster's, and
    go when it stops.
    """
    names: set[str] = set()
    if not _CLUSTER_PIDS:
        return names
    for proc in _descendants():
        if not _in_cluster(proc):
            continue
        with contextlib.suppress(OSError), open(f"/proc/{proc.pid}/maps") as maps:
            for line in maps:
                path = line.rstrip("\n").split(" ", 5)[-1].strip()
                if path.startswith(_SHM_DIR + "/"):
                    names.add(path[len(_SHM_DIR) + 1 :])
    return names


def _distributed_thread(thread: threading.Thread) -> bool:
    return "distributed" in sys.modules and _DISTRIBUTED_THREADS.match(thread.name) is not None


# (pid, create_time) identifies a process even if its pid is later reused.
_ProcKey = tuple[int, float]


def _proc_key(proc: Any) -> _ProcKey | None:
    try:
        return (int(proc.pid), float(proc.create_time()))
    except psutil.Error:
        return None


def _cmdline(proc: Any) -> str:
    try:
        return " ".join(str(part) for part in proc.cmdline())
    except psutil.Error:  # zombies have no command line any more
        pass
    try:
        return f"[{proc.name()}]"
    except psutil.Error:
        return "?"


def _is_stdlib_helper(proc: Any, my_pid: int) -> bool:
    try:
        if int(proc.ppid()) != my_pid:
            return False
    except psutil.Error:
        return False
    cmdline = _cmdline(proc)
    return any(marker in cmdline for marker in _STDLIB_HELPER_MARKERS)


def _descendants() -> list[Any]:
    try:
        return list(psutil.Process().children(recursive=True))
    except psutil.Error:
        return []


# Entries named after their owner's pid: parkit's segments, and loky's semaphores
# (a benchmark run of the peers beside this test run).
_PARKIT_SEGMENT = re.compile(r"(?:parkit|sem\.loky)-(\d+)-")


def _someone_elses(name: str, my_pid: int) -> bool:
    """Whether a /dev/shm entry belongs to a live process outside this test run.

    parkit (and loky) name their segments after their owner's pid. An entry whose owner is alive
    and neither this process nor one of its descendants comes from another program
    (a second test run on the same machine): not this test's leak, and not ours to
    remove. An entry whose owner is gone counts, since that owner may have been one
    of this test's children.
    """
    match = _PARKIT_SEGMENT.match(name.removeprefix(_MARKER))
    if match is None:
        return False
    pid = int(match[1])
    if pid == my_pid:
        return False
    try:
        return my_pid not in {parent.pid for parent in psutil.Process(pid).parents()}
    except psutil.Error:
        return False  # gone


def _shm_entries() -> set[str]:
    found: set[str] = set()
    for where, tag in ((_SHM_DIR, ""), (_REGISTRY, _MARKER)):
        if where is not None:
            with contextlib.suppress(OSError):
                found.update(tag + name for name in os.listdir(where))
    return found


def _shm_path(name: str) -> str:
    if name.startswith(_MARKER):
        assert _REGISTRY is not None
        return os.path.join(_REGISTRY, name.removeprefix(_MARKER))
    return os.path.join(_SHM_DIR, name)


@dataclass
class _Snapshot:
    processes: set[_ProcKey]
    threads: set[threading.Thread]
    shm: set[str]

    @classmethod
    def take(cls) -> _Snapshot:
        keys = {_proc_key(proc) for proc in _descendants()}
        return cls(
            processes={key for key in keys if key is not None},
            threads=set(threading.enumerate()),
            shm=_shm_entries(),
        )


@dataclass
class _Leaks:
    processes: list[Any] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    shm: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.processes or self.threads or self.shm)


def _find_leaks(before: _Snapshot) -> _Leaks:
    my_pid = os.getpid()
    leaks = _Leaks()
    for proc in _descendants():
        key = _proc_key(proc)
        if (
            key is None
            or key in before.processes
            or _is_stdlib_helper(proc, my_pid)
            or _in_cluster(proc)
        ):
            continue
        leaks.processes.append(proc)
    leaks.processes.sort(key=lambda proc: int(proc.pid))
    leaks.threads = sorted(
        (
            t
            for t in threading.enumerate()
            if t not in before.threads and t.is_alive() and not _distributed_thread(t)
        ),
        key=lambda t: t.name,
    )
    new_shm = _shm_entries() - before.shm
    cluster_shm = _cluster_shm() if new_shm else set()
    leaks.shm = sorted(
        name for name in new_shm if not _someone_elses(name, my_pid) and name not in cluster_shm
    )
    return leaks


def _wait_for_leaks_to_clear(before: _Snapshot) -> _Leaks:
    """Poll until nothing has leaked or the grace period is over; return what is left."""
    deadline = time.monotonic() + GRACE_PERIOD_S
    # Objects caught in a reference cycle (an exception kept by pytest.raises holds
    # its traceback's frames) are not leaks: collect them so their finalizers run.
    gc.collect()
    while True:
        # Reaps finished multiprocessing children (zombies whose Process object the
        # test dropped without join()); the stdlib does the same on every start().
        multiprocessing.active_children()
        leaks = _find_leaks(before)
        if not leaks or time.monotonic() >= deadline:
            return leaks
        time.sleep(_POLL_INTERVAL_S)


def _describe_process(proc: Any) -> str:
    try:
        status = str(proc.status())
    except psutil.Error:
        status = "gone"
    try:
        ppid: int | str = int(proc.ppid())
    except psutil.Error:
        ppid = "?"
    if status == psutil.STATUS_ZOMBIE:
        status = "zombie: exited but never waited for"
    cmdline = _cmdline(proc)
    if len(cmdline) > 200:
        cmdline = cmdline[:197] + "..."
    return f"child process pid={proc.pid} (parent pid={ppid}, {status}): {cmdline}"


def _kill_and_reap(procs: list[Any]) -> list[int]:
    """SIGKILL leaked processes and reap those that are our children.

    Returns the pids that could not be confirmed gone.
    """
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)  # psutil checks the pid was not reused
    my_pid = os.getpid()
    pending = list(procs)
    deadline = time.monotonic() + 5.0
    while pending and time.monotonic() < deadline:
        # multiprocessing children must be reaped through multiprocessing, or their
        # Process objects would never learn that they exited.
        mp_pids = {p.pid for p in multiprocessing.active_children()}
        still_pending = []
        for proc in pending:
            try:
                status = proc.status()
                ppid = int(proc.ppid())
            except psutil.Error:
                continue  # gone
            if status != psutil.STATUS_ZOMBIE:
                still_pending.append(proc)
            elif ppid == my_pid and proc.pid not in mp_pids:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(proc.pid, os.WNOHANG)
                still_pending.append(proc)
            elif ppid == my_pid:
                still_pending.append(proc)
            # else: a zombie re-parented away from us; its new parent reaps it.
        pending = still_pending
        if pending:
            time.sleep(_POLL_INTERVAL_S)
    return [int(proc.pid) for proc in pending]


def _remove_shm(names: list[str]) -> None:
    uid = os.getuid()
    for name in names:
        path = _shm_path(name)
        with contextlib.suppress(OSError):
            if os.lstat(path).st_uid == uid:
                os.unlink(path)


def _report_and_clean_up(leaks: _Leaks) -> str:
    lines = [f"test leaked resources (still there after a {GRACE_PERIOD_S:g} s grace period):"]
    lines += [f"  {_describe_process(proc)}" for proc in leaks.processes]
    lines += [
        f"  thread {t.name!r} (ident={t.ident}, daemon={t.daemon}, target={_target(t)})"
        for t in leaks.threads
    ]
    lines += [
        f"  {'segment marker' if name.startswith(_MARKER) else '/dev/shm entry'} {_shm_path(name)}"
        for name in leaks.shm
    ]
    if leaks.processes:
        unreaped = _kill_and_reap(leaks.processes)
        killed = ", ".join(str(proc.pid) for proc in leaks.processes)
        lines.append(f"cleanup: sent SIGKILL to pid(s) {killed}")
        if unreaped:
            lines.append(f"cleanup: pid(s) {', '.join(map(str, unreaped))} did not go away")
    if leaks.shm:
        _remove_shm(leaks.shm)
        lines.append(f"cleanup: removed {len(leaks.shm)} /dev/shm entr(y/ies) or markers")
    if leaks.threads:
        lines.append("cleanup: threads cannot be stopped from outside; join them in the test")
    return "\n".join(lines)


def _target(thread: threading.Thread) -> str:
    target = getattr(thread, "_target", None)
    if target is None:
        return "-"
    return str(getattr(target, "__qualname__", None) or repr(target))


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    before = _Snapshot.take()
    yield
    # The pools that parkit.map keeps are meant to outlive a call; shutting them
    # down here also checks that parkit.shutdown() releases everything.
    parkit.shutdown()
    leaks = _wait_for_leaks_to_clear(before)
    if leaks:
        pytest.fail(_report_and_clean_up(leaks), pytrace=False)


# ------------------------------------------------------------------------ dask cluster

#: Seconds the cluster gets to start (two interpreters importing distributed on a
#: loaded two-core machine).
_CLUSTER_START_S = 120.0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL: a nanny stops its worker when it is terminated."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Dask cluster on 127.0.0.1: a scheduler and two one-thread workers.

    They are separate processes started from the command line, as on a cluster; a
    task is retried once after its worker dies (``allowed-failures``: 1), then it
    fails with ``KilledWorker``. Yields the scheduler's address; stops them by pid
    at the end of the session.
    """
    pytest.importorskip("distributed")
    import json

    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1")
    log = open(folder / "cluster.log", "wb")  # noqa: SIM115 - closed below
    dask = [sys.executable, "-m", "dask"]
    started: list[subprocess.Popen[bytes]] = []
    try:
        scheduler = subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(scheduler)
        _CLUSTER_PIDS.add(scheduler.pid)
        deadline = time.monotonic() + _CLUSTER_START_S
        while not scheduler_file.exists():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Dask scheduler did not start; see {folder}/cluster.log")
            time.sleep(_POLL_INTERVAL_S)
        workers = subprocess.Popen(
            [*dask, "worker", "--scheduler-file", str(scheduler_file), "--nworkers", "2",
             "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(workers)
        _CLUSTER_PIDS.add(workers.pid)
        address = ""
        while not address:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no scheduler address in {scheduler_file}")
            with contextlib.suppress(ValueError, OSError, KeyError):
                address = str(json.loads(scheduler_file.read_text())["address"])
            time.sleep(_POLL_INTERVAL_S)
        import distributed

        client_type: Any = distributed.Client  # untyped to mypy --strict
        with client_type(address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=_CLUSTER_START_S)
        yield address
    finally:
        for proc in reversed(started):
            _stop(proc)
        log.close()
        _CLUSTER_PIDS.clear()


@pytest.fixture(scope="session")
def dask_client(dask_cluster: str) -> Iterator[Any]:
    """A ``distributed.Client`` of :func:`dask_cluster`, shared by the session."""
    import distributed

    client_type: Any = distributed.Client  # untyped to mypy --strict
    with client_type(dask_cluster, set_as_default=False) as client:
        yield client
