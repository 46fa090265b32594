"""The capability probe (``_core/_platform.py``) and what each platform is told.

* the private switch ``PARKIT_FORCE_PORTABLE`` really forces the probe, and the
  modules really take the portable paths (so the forced-portable CI pass can't
  silently run Linux's);
* every parkit module imports where ``fcntl``, ``_posixshmem``, ``resource`` and
  ``termios`` can't be imported and ``/dev/shm`` is missing, as on Windows;
* under Windows's answers the error tree and the serial and thread backends
  work, and everything that needs POSIX raises ``NotImplementedError`` where it
  is made, naming the platform and the stdlib's alternative;
* segment names fit macOS's 31-byte ``shm_open`` limit, and where segments are
  ``shm_open`` objects, the registry lets a dead owner's segments be swept.

Each platform check runs in a fresh interpreter: the probe is read once, at import.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import parkit
import sync_tasks as st
from parkit._core import _peer, _platform, _segments
from parkit._sync import _base, _futex, _mutex

FORCED = os.environ.get(_platform.FORCE_ENV, "")


def _python(code: str, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter (the switch unset unless given); its stdout."""
    environ = {k: v for k, v in os.environ.items() if k != _platform.FORCE_ENV}
    environ.update(env or {})
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


_DESCRIBE = """
import json
from parkit._core import _platform
from parkit._sync import _futex, _mutex
print(json.dumps([_platform.describe(), _futex.NATIVE, _mutex.AVAILABLE, _platform.NAME]))
"""


def test_unforced_the_probe_gives_this_linux_machine_its_own_answers() -> None:
    answers, futex, mutex, name = json.loads(_python(_DESCRIBE))
    assert answers == {
        "forced": None,
        "windows": False,
        "shm": "files in /dev/shm",
        "futex": True,
        "robust_mutex": True,
        "flock": True,
        "affinity": True,
        "proc": True,
    }
    assert (futex, mutex, name) == (True, True, "Linux")


def test_the_switch_forces_macos_answers() -> None:
    answers, futex, mutex, name = json.loads(_python(_DESCRIBE, {_platform.FORCE_ENV: "1"}))
    assert answers == {
        "forced": "posix",
        "windows": False,
        "shm": "shm_open",
        "futex": False,
        "robust_mutex": False,
        "flock": True,
        "affinity": False,
        "proc": False,
    }
    assert (futex, mutex, name) == (False, False, "Linux (simulated: PARKIT_FORCE_PORTABLE=1)")


def test_the_switch_forces_windows_answers() -> None:
    answers, _, _, name = json.loads(_python(_DESCRIBE, {_platform.FORCE_ENV: "windows"}))
    assert answers == {
        "forced": "windows",
        "windows": True,
        "shm": None,
        "futex": False,
        "robust_mutex": False,
        "flock": False,
        "affinity": False,
        "proc": False,
    }
    assert name == "Windows (simulated: PARKIT_FORCE_PORTABLE=windows)"


def test_a_bad_switch_value_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import parkit._core._platform"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, _platform.FORCE_ENV: "yes"},
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "ValueError: PARKIT_FORCE_PORTABLE (a private test switch) must be unset, '0', '1' "
        "or 'windows', not 'yes'"
    )


def test_this_run_takes_the_paths_its_switch_asks_for() -> None:
    # The forced-portable pass of .ci/run runs this: if the switch were lost on
    # the way, the pass would test Linux's paths twice and say nothing of macOS's.
    lock = parkit.Lock()
    try:
        segment = lock._segment
        if FORCED == "1":
            assert (_platform.FORCED, _segments.FILES, _futex.NATIVE, _mutex.AVAILABLE) == (
                "posix",
                False,
                False,
                False,
            )
            assert not _peer._HAVE_PROC
            assert segment._mutex is None
            # The guard flocks the segment's marker, in the registry.
            marker = os.path.join(_segments.registry_dir(), segment.name)
            assert os.path.samestat(os.fstat(segment._guard_fd), os.stat(marker))
            assert segment.sleep.__qualname__ == "_poller.<locals>.poll"
        else:
            assert FORCED == ""
            assert (_platform.FORCED, _segments.FILES, _futex.NATIVE, _mutex.AVAILABLE) == (
                None,
                True,
                True,
                True,
            )
            assert segment._mutex is not None
            assert segment._guard_fd == -1
            assert segment.sleep.__qualname__ == "sleeper.<locals>.wait_on"
        # Either way a shm_open object, as a file in /dev/shm, is a file here.
        assert os.path.exists(f"/dev/shm/{segment.name}")
    finally:
        lock._segment.close()


def test_a_forked_child_does_not_share_its_parent_s_guard() -> None:
    # A flock belongs to the open file description, which fork shares: the child
    # re-opens its segments' guards (_segment._after_fork_in_child). With a robust
    # mutex (Linux) the held mutex is simply held. Explicitly fork, whatever
    # method the run samples.
    q = parkit.Queue[int]()
    segment = q._segment
    segment.lock()
    try:
        assert parkit.run(st.guard_is_free, q, context="fork", timeout=30) is False
    finally:
        segment.unlock()
    assert parkit.run(st.guard_is_free, q, context="fork", timeout=30) is True


# ------------------------------------------------------------------- as on Windows

#: Run first in the interpreters below: the POSIX-only modules can't be imported,
#: /dev/shm is missing, and ``os`` lacks what Windows's lacks.
_AS_ON_WINDOWS = """
import os, sys

BLOCKED = {"fcntl", "_posixshmem", "resource", "termios"}


class Refuse:
    # A meta-path finder that refuses the POSIX-only modules, as a Windows
    # Python has none of them.
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED:
            raise ImportError(f"simulated: no module named {name!r}")
        return None


sys.meta_path.insert(0, Refuse())
already = sorted(BLOCKED & set(sys.modules))
for name in BLOCKED:
    sys.modules.pop(name, None)
for name in ("fork", "register_at_fork", "sched_setaffinity", "sched_getaffinity", "getuid"):
    if hasattr(os, name):
        delattr(os, name)
import select

for name in ("poll", "epoll", "devpoll", "kqueue"):
    if hasattr(select, name):
        delattr(select, name)
_isdir, _access = os.path.isdir, os.access
os.path.isdir = lambda p: False if str(p).startswith("/dev/shm") else _isdir(p)
os.access = lambda p, m, **k: False if str(p).startswith("/dev/shm") else _access(p, m, **k)
"""


@pytest.mark.parametrize("switch", ["", "1", "windows"])
def test_every_module_imports_without_the_posix_only_modules(switch: str) -> None:
    code = _AS_ON_WINDOWS + textwrap.dedent(
        """
        import importlib, json, pkgutil
        import parkit
        from parkit._core import _platform

        names = sorted(m.name for m in pkgutil.walk_packages(parkit.__path__, "parkit."))
        for name in names:
            importlib.import_module(name)
        try:
            import fcntl
        except ImportError as e:
            refused = str(e)
        answers = {**_platform.describe(), "poll": _platform.POLL}
        print(json.dumps([already, names, refused, answers]))
        """
    )
    already, names, refused, answers = json.loads(_python(code, {_platform.FORCE_ENV: switch}))
    assert already == []  # nothing had imported them before the finder was in place
    assert "parkit._core._platform" in names
    assert "parkit._sync._segment" in names
    assert "parkit._backends._process._channel" in names
    assert len(names) >= 50
    assert refused == "simulated: no module named 'fcntl'"
    # No fcntl, no _posixshmem, no /dev/shm: nothing of POSIX shared memory.
    assert (answers["shm"], answers["flock"], answers["affinity"], answers["poll"]) == (
        None,
        False,
        False,
        False,
    )


_WINDOWS_USE = """
import json, pickle
import parkit
from parkit import errors

report = {}
report["thread"] = parkit.map(abs, [-1, -2, 3], backend="thread")
report["serial"] = parkit.map(abs, [-4], backend="serial")
with parkit.Pool(2, backend="thread") as pool:
    report["submit"] = pool.submit(pow, 2, 5).result(timeout=30)
timeout = pickle.loads(pickle.dumps(errors.TaskTimeout(1.5, item_index=2)))
report["error"] = [
    type(timeout).__name__,
    isinstance(timeout, TimeoutError),
    isinstance(timeout, errors.ParkitError),
    timeout.item_index,
]

made = {
    "Pool": lambda: parkit.Pool(2),
    "map": lambda: parkit.map(abs, [1]),
    "ProcessPoolExecutor": lambda: parkit.ProcessPoolExecutor(2),
    "Process": lambda: parkit.Process(abs, (1,)),
    "run": lambda: parkit.run(abs, -1),
    "Pipe": lambda: parkit.Pipe(),
    "Manager": lambda: parkit.Manager(),
    "Lock": lambda: parkit.Lock(),
    "RLock": lambda: parkit.RLock(),
    "Semaphore": lambda: parkit.Semaphore(2),
    "Event": lambda: parkit.Event(),
    "Condition": lambda: parkit.Condition(),
    "Barrier": lambda: parkit.Barrier(2),
    "Queue": lambda: parkit.Queue(),
    "Value": lambda: parkit.Value(int, 1),
    "Array": lambda: parkit.Array("i", 3),
    "SharedArray": lambda: parkit.SharedArray.zeros(3),
}
report["raised"] = {}
for name, make in made.items():
    try:
        make()
    except NotImplementedError as e:
        report["raised"][name] = str(e)
    else:
        report["raised"][name] = None
print(json.dumps(report))
"""

_WINDOWS = "Windows (simulated: PARKIT_FORCE_PORTABLE=windows)"


def _told(what: str, needs: str, instead: str) -> str:
    return (
        f"{what} needs {needs}, which parkit supports on Linux and macOS only, not on "
        f"{_WINDOWS}; use {instead}"
    )


_PROCESS_BACKEND = _told(
    "parkit's process backend",
    "POSIX non-blocking pipe I/O",
    'backend="thread" or "serial", or concurrent.futures.ProcessPoolExecutor',
)


def _sync(name: str) -> str:
    return _told(f"parkit.{name}", "POSIX shared memory", f"multiprocessing.{name}")


def test_as_on_windows_the_errors_and_threads_work_and_the_rest_says_so() -> None:
    report: dict[str, Any] = json.loads(
        _python(_AS_ON_WINDOWS + _WINDOWS_USE, {_platform.FORCE_ENV: "windows"})
    )
    assert report["thread"] == [1, 2, 3]
    assert report["serial"] == [4]
    assert report["submit"] == 32
    assert report["error"] == ["TaskTimeout", True, True, 2]
    process = _told(
        "parkit.Process", "POSIX process control (select on pipes)", "multiprocessing.Process"
    )
    assert report["raised"] == {
        "Pool": _PROCESS_BACKEND,
        "map": _PROCESS_BACKEND,
        "ProcessPoolExecutor": _PROCESS_BACKEND,
        "Process": process,
        "run": process,
        "Pipe": _told(
            "parkit.Pipe", "POSIX descriptors read against a deadline", "multiprocessing.Pipe"
        ),
        "Manager": _told(
            "parkit.Manager", "POSIX process control (a lifeline pipe)", "multiprocessing.Manager"
        ),
        **{
            name: _sync(name)
            for name in ("Lock", "RLock", "Semaphore", "Event", "Condition", "Barrier", "Queue")
        },
        "Value": _told("parkit.Value", "POSIX shared memory", "multiprocessing.Value"),
        "Array": _told("parkit.Array", "POSIX shared memory", "multiprocessing.Array"),
        "SharedArray": _told(
            "parkit.SharedArray",
            "POSIX shared memory",
            "multiprocessing.shared_memory.SharedMemory with a NumPy array on its buf",
        ),
    }


def test_a_posix_system_without_shared_memory_says_what_is_missing() -> None:
    code = _AS_ON_WINDOWS + textwrap.dedent(
        """
        import parkit
        try:
            parkit.Lock()
        except OSError as e:
            print(e)
        """
    )
    out = _python(code, {_platform.FORCE_ENV: "1"})
    assert out == (
        "parkit.Lock needs shared memory: /dev/shm or shm_open (_posixshmem), and "
        "Linux (simulated: PARKIT_FORCE_PORTABLE=1) has neither\n"
    )


# ----------------------------------------------------------- names and the registry


def test_segment_names_fit_the_macos_shm_open_limit() -> None:
    # macOS: at most 31 bytes with the leading "/", and pids of at most 5 digits.
    longest_pid = 99_999
    writers = ["p", f"w{longest_pid}", "sa", "val", "sync", "q0", "q1"]
    for writer in writers:
        name = _segments.new_name(writer, owner=longest_pid)
        assert len("/" + name) <= 31, name
    assert len(_segments.new_name("sync").rpartition("-")[2]) == 10
    # A message's counter leaves room for 10 digits.
    assert len("/" + _segments.prefix(longest_pid, f"w{longest_pid}") + "9" * 10) <= 31


def test_the_owner_of_a_name() -> None:
    assert _segments.owner_of("parkit-4321-w77-0a1b2c3d4e") == 4321


@pytest.mark.skipif(_segments.FILES, reason="segments are files in /dev/shm here")
def test_the_registry_is_private_to_this_user() -> None:
    path = _segments.registry_dir()
    info = os.lstat(path)
    assert info.st_uid == os.getuid()
    assert info.st_mode & 0o777 == 0o700


@pytest.mark.skipif(_segments.FILES, reason="segments are files in /dev/shm here")
def test_a_dead_owner_s_segments_are_swept_through_the_registry(context: str) -> None:
    # The child makes a lock and a queue whose data area grew (two segments of
    # its own), and is SIGKILLed: nothing of it unlinks them. Its parent sweeps
    # what is named after it once it has reaped it (Process._ended), and where
    # segments can't be listed, the sweep finds them only through the markers.
    mine, theirs = multiprocessing.get_context(context).Pipe(duplex=False)
    child = parkit.Process(st.make_segments_and_die, (theirs,), context=context)
    child.start()
    theirs.close()
    names = mine.recv()
    mine.close()
    assert len(names) == 3
    assert set(names) <= set(os.listdir(_segments.registry_dir()))
    assert all(os.path.exists(f"/dev/shm/{n}") for n in names)  # Linux shows them
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    assert not set(names) & set(os.listdir(_segments.registry_dir()))
    assert not [n for n in names if os.path.exists(f"/dev/shm/{n}")]
    _segments.sweep(_segments.owner_of(names[0]))  # nothing left: harmless


@pytest.mark.skipif(_segments.FILES, reason="segments are files in /dev/shm here")
def test_the_sweep_lists_the_registry_not_dev_shm(monkeypatch: pytest.MonkeyPatch) -> None:
    # On Linux the shm_open objects show in /dev/shm too: hide it, as macOS has
    # none, and the sweep must still find the segment, by its marker.
    lock = parkit.Lock()
    name = lock._segment.name
    monkeypatch.setattr(_segments, "DIR", "/nonexistent-shm-dir")
    _segments.sweep(os.getpid(), "sync")
    assert not os.path.exists(f"/dev/shm/{name}")
    assert name not in os.listdir(_segments.registry_dir())
    lock._segment.close()


@pytest.mark.skipif(_segments.FILES, reason="segments are files in /dev/shm here")
def test_a_queue_that_grows_and_shrinks_leaves_one_data_area() -> None:
    q = parkit.Queue[bytes]()
    name = q._segment.name
    data = [f"parkit-{os.getpid()}-q{k}-{name.rpartition('-')[2]}" for k in (0, 1)]
    blob = b"x" * (1 << 20)
    for _ in range(3):
        q.put(blob)
    assert [q.get(timeout=1) for _ in range(3)] == [blob] * 3
    live = set(os.listdir(_segments.registry_dir())) & set(data)
    assert len(live) == 1  # the replaced area is gone
    q._segment.close()
    assert not set(os.listdir(_segments.registry_dir())) & {name, *data}


def test_spin_and_poll_settings_are_module_constants() -> None:
    # Read once: the hot paths never ask the probe.
    assert isinstance(_base.SPIN_S, float)
    assert _futex.POLL_FIRST_S < _futex.POLL_MAX_S


@pytest.mark.parametrize("poll", [True, False], ids=["poll", "select"])
def test_wait_fds_reports_the_ends_that_are_ready(
    monkeypatch: pytest.MonkeyPatch, poll: bool
) -> None:
    # One wait serves parkit's pipe ends, its Pipe and the manager handshake:
    # poll where there is one, select elsewhere, with the same answers.
    monkeypatch.setattr(_platform, "POLL", poll)
    r, w = os.pipe()
    try:
        assert _platform.wait_fds([r], 0) == []
        assert _platform.wait_fds([r], 0.001) == []  # time ran out
        assert _platform.wait_fds([w], 0, write=True) == [w]
        os.write(w, b"x")
        assert _platform.wait_fds([r], 0) == [r]
        os.read(r, 1)
        os.close(w)
        w = -1
        assert _platform.wait_fds([r], None) == [r]  # the end of the pipe: no wait
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_poll_ms_rounds_a_timeout_up() -> None:
    assert _platform.poll_ms(None) is None
    assert [_platform.poll_ms(t) for t in (0, -1.0, 0.0001, 0.001, 1.5)] == [0, 0, 1, 1, 1500]
