"""The suite's leak guard (``_no_leaks`` in conftest.py) must be able to fail a test.

Each test runs a small inner pytest session, in a subprocess, with a copy of the real
conftest.py, and checks that leaky inner tests error in teardown with a message that
names what leaked, while clean ones pass.
"""

from __future__ import annotations

import os
import re
import textwrap
import uuid
from pathlib import Path

import psutil
import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
INNER_TIMEOUT_S = 60.0


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    return pytester


def run_inner(pytester: pytest.Pytester, source: str) -> pytest.RunResult:
    pytester.makepyfile(test_inner=textwrap.dedent(source))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=INNER_TIMEOUT_S)


def assert_gone(pid: int) -> None:
    """The pid is no longer running (a zombie left to a non-reaping init counts as gone)."""
    try:
        status = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return
    assert status == psutil.STATUS_ZOMBIE, f"leaked pid {pid} is still {status}"


def test_unjoined_spawn_process_is_reported_and_killed(inner: pytest.Pytester) -> None:
    pid_file = inner.path / "child.pid"
    result = run_inner(
        inner,
        f"""
        import multiprocessing
        import time

        def test_leaks_a_process():
            proc = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(30,))
            proc.start()
            with open({str(pid_file)!r}, "w") as f:
                f.write(str(proc.pid))
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    pid = int(pid_file.read_text())
    result.stdout.fnmatch_lines(
        [
            "*test leaked resources*",
            f"*child process pid={pid} (parent pid=*, sleeping)*spawn_main*",
            f"*cleanup: sent SIGKILL to pid(s) {pid}*",
        ]
    )
    assert "did not go away" not in result.stdout.str()
    assert_gone(pid)


def test_forkserver_worker_is_reported_but_forkserver_itself_is_not(
    inner: pytest.Pytester,
) -> None:
    # Workers forked by the forkserver inherit the forkserver's command line, so the
    # guard may only ignore the forkserver process itself, never its children.
    pid_file = inner.path / "child.pid"
    result = run_inner(
        inner,
        f"""
        import multiprocessing
        import time

        ctx = multiprocessing.get_context("forkserver")

        def test_joined_worker_is_clean():
            proc = ctx.Process(target=time.sleep, args=(0,))
            proc.start()
            proc.join()

        def test_leaks_a_forkserver_worker():
            proc = ctx.Process(target=time.sleep, args=(30,))
            proc.start()
            with open({str(pid_file)!r}, "w") as f:
                f.write(str(proc.pid))
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    pid = int(pid_file.read_text())
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_forkserver_worker*",
            f"*child process pid={pid} *multiprocessing.forkserver import main*",
        ]
    )
    # Only the worker is reported: not the forkserver, not the resource tracker.
    # (The short summary may repeat the message: count distinct pids.)
    assert set(re.findall(r"child process pid=(\d+)", result.stdout.str())) == {str(pid)}
    assert_gone(pid)


def test_leftover_thread_is_reported(inner: pytest.Pytester) -> None:
    result = run_inner(
        inner,
        """
        import threading
        import time

        def test_leaks_a_thread():
            threading.Thread(target=time.sleep, args=(30,), name="leaky", daemon=True).start()

        def test_joined_thread_is_clean():
            thread = threading.Thread(target=time.sleep, args=(0.1,))
            thread.start()
            thread.join()
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_thread*",
            "*thread 'leaky' (ident=*, daemon=True, target=sleep)*",
        ]
    )


def test_new_dev_shm_entry_is_reported_and_removed(inner: pytest.Pytester) -> None:
    # Named like a segment of the inner session's own process: a leak guard of
    # another test run on this machine (a second checkout, a CI run) sees a live
    # owner outside its tree and leaves it alone, so only the inner guard reports
    # and removes it.
    tag = uuid.uuid4().hex
    shm_dir = Path("/dev/shm")
    if not shm_dir.is_dir():
        pytest.skip("no /dev/shm on this system")

    def created() -> list[Path]:
        return sorted(shm_dir.glob(f"parkit-*-test-{tag}"))

    try:
        result = run_inner(
            inner,
            f"""
            import os

            def test_leaks_a_shm_entry():
                open(f"/dev/shm/parkit-{{os.getpid()}}-test-{tag}", "w").close()
            """,
        )
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            [
                f"*/dev/shm entry /dev/shm/parkit-*-test-{tag}*",
                "*cleanup: removed 1 /dev/shm entr(y/ies)*",
            ]
        )
        assert created() == []
    finally:
        for path in created():
            path.unlink(missing_ok=True)


def test_another_live_programs_segment_is_neither_reported_nor_removed(
    inner: pytest.Pytester,
) -> None:
    # The inner session is our child, so this process is alive and outside its tree:
    # to the inner leak guard, a segment named after us is another program's.
    tag = uuid.uuid4().hex
    foreign = Path("/dev/shm") / f"parkit-{os.getpid()}-foreign-{tag}"
    if not foreign.parent.is_dir():
        pytest.skip("no /dev/shm on this system")
    try:
        result = run_inner(
            inner,
            f"""
            import os

            def test_leaks_one_of_its_own_beside_a_foreign_one():
                open({str(foreign)!r}, "w").close()
                open(f"/dev/shm/parkit-{{os.getpid()}}-mine-{tag}", "w").close()
            """,
        )
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            [f"*/dev/shm entry /dev/shm/parkit-*-mine-{tag}*", "*removed 1 /dev/shm entr*"]
        )
        assert f"foreign-{tag}" not in result.stdout.str()
        assert foreign.exists()
    finally:
        foreign.unlink(missing_ok=True)


def test_clean_test_passes(inner: pytest.Pytester) -> None:
    result = run_inner(
        inner,
        """
        import multiprocessing
        import os
        import subprocess
        import sys
        import threading
        from multiprocessing import shared_memory

        def work():
            return None

        def test_tidy():
            proc = multiprocessing.get_context("spawn").Process(target=work)
            proc.start()
            proc.join()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
            shm = shared_memory.SharedMemory(create=True, size=16)
            shm.close()
            shm.unlink()

        def test_dropped_but_finished_process_is_not_a_leak():
            # Finished but never joined: a zombie that multiprocessing can still reap.
            proc = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
            proc.start()
            proc.sentinel  # noqa: B018
        """,
    )
    result.assert_outcomes(passed=2)
    assert "leaked" not in result.stdout.str()


def test_a_leaked_registry_marker_is_reported_and_removed(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where segments are shm_open objects (macOS; here the probe forced to its
    # answers), each has a marker in parkit's registry: a leaked one is a leak.
    tag = uuid.uuid4().hex
    monkeypatch.setenv("PARKIT_FORCE_PORTABLE", "1")
    result = run_inner(
        inner,
        f"""
        import os
        from parkit._core import _segments

        def test_leaks_a_marker():
            path = os.path.join(_segments.registry_dir(), f"parkit-{{os.getpid()}}-test-{tag}")
            open(path, "w").close()
            print("MARKER", path)
        """,
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [f"*segment marker /*/parkit-*-test-{tag}*", "*cleanup: removed 1 /dev/shm entr*"]
    )
    found = re.search(rf"segment marker (\S+-test-{tag})", result.stdout.str())
    assert found is not None
    assert not os.path.exists(found[1])
