"""parkit's fork server (_core/_forkserver.py): reachable by its parent only, gone with it.

The children it starts are the stdlib's forkserver children, and every test of
the suite that runs under ``forkserver`` runs through it; these tests pin what
is the server's own: how it is reached (FAULTS F21), when it goes, what it
imports, and what a process forked from its parent does.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import parkit
import tasks
from parkit._core import _forkserver
from parkit._core._context import available_methods

pytestmark = pytest.mark.skipif(
    "forkserver" not in available_methods(), reason="no forkserver start method here"
)

#: Generous: how long a process may take to go after what makes it go.
BOUND_S = 30.0


def _server_pid() -> int:
    assert parkit.run(abs, -3, context="forkserver") == 3
    server = _forkserver._server
    assert server is not None
    return server.pid


def _unix_sockets(pid: int) -> list[str]:
    """The addresses of the Unix sockets ``pid`` holds ('' for an unnamed one)."""
    proc = psutil.Process(pid)
    conns = proc.net_connections(kind="unix") if hasattr(proc, "net_connections") else []
    return sorted(str(c.laddr) for c in conns)


# What every script below starts with: start() starts a forkserver child and
# returns the pid of the server that forked it.
_PRELUDE = """
import errno, multiprocessing, os, pathlib, signal, sys
import parkit
from parkit._core import _forkserver

def start():
    assert parkit.run(abs, -3, context="forkserver") == 3
    return _forkserver._server.pid
"""


def _job(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body``, after the prelude, as the script job.py in ``tmp_path``."""
    (tmp_path / "job.py").write_text(_PRELUDE + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, "job.py"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


def _script(tmp_path: Path, body: str) -> str:
    """Run ``body`` as :func:`_job` does; its stdout, after checking it succeeded."""
    done = _job(tmp_path, body)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_server_listens_on_nothing() -> None:
    pid = _server_pid()
    assert "from parkit._core._forkserver import main" in " ".join(psutil.Process(pid).cmdline())
    # One socket: its end of the pair, which has no name (no path, no
    # abstract "@" name) that another process could connect to.
    assert _unix_sockets(pid) == [""]


def test_the_stdlib_server_that_this_replaces_listens_on_a_path() -> None:
    # What the test above would see otherwise (and so can fail on). The
    # stdlib's server stays for the session, as tests/conftest.py allows.
    import multiprocessing.forkserver as stdlib

    p = multiprocessing.get_context("forkserver").Process(target=abs, args=(1,))
    p.start()
    p.join(BOUND_S)
    assert p.exitcode == 0
    server: Any = stdlib._forkserver
    address = server._forkserver_address
    assert isinstance(address, str)
    assert os.path.exists(address)
    assert address in _unix_sockets(server._forkserver_pid)


def test_the_server_ignores_ctrl_c() -> None:
    pid = _server_pid()
    os.kill(pid, signal.SIGINT)  # an ignored signal is dropped when it is sent
    assert _server_pid() == pid  # the same server served this start


def _gone(pid: int) -> bool:
    """Whether ``pid`` exits (or is a zombie) within BOUND_S."""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)  # polling a condition, under a deadline
    return False


def test_the_server_goes_when_its_parent_is_killed(tmp_path: Path) -> None:
    done = _job(
        tmp_path,
        """
        if __name__ == "__main__":
            print(start(), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        """,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert _gone(int(done.stdout))


def test_the_server_is_replaced_when_it_dies(tmp_path: Path) -> None:
    out = _script(
        tmp_path,
        """
        if __name__ == "__main__":
            first = start()
            os.kill(first, signal.SIGKILL)
            os.waitpid(first, 0)  # what the next start finds: a server that is gone
            _forkserver._server.pid = first  # reaped here; the start must cope
            print(first, start(), start())
        """,
    )
    first, second, third = map(int, out.split())
    assert second != first
    assert third == second


def test_a_server_that_dies_just_after_its_check_is_replaced(tmp_path: Path) -> None:
    # The server dies between the liveness check and the request: the check
    # is made to say "alive" (as it does in the moment before a death).
    out = _script(
        tmp_path,
        """
        if __name__ == "__main__":
            first = start()
            os.kill(first, signal.SIGKILL)
            os.waitpid(first, 0)
            real_waitpid = os.waitpid
            os.waitpid = lambda pid, flags: (0, 0) if pid == first else real_waitpid(pid, flags)
            second = start()
            os.waitpid = real_waitpid
            print(first, second)
        """,
    )
    first, second = map(int, out.split())
    assert second != first


def test_a_request_that_fails_on_its_own_leaves_the_server_serving(tmp_path: Path) -> None:
    # An error that is not the server's end closing (a bad descriptor in the
    # request) fails that start only: the server, and its children, stay.
    out = _script(
        tmp_path,
        """
        def bad_descriptor(self, fds):
            raise OSError(errno.EBADF, "Bad file descriptor")

        if __name__ == "__main__":
            first = start()
            send = _forkserver._Server.send
            _forkserver._Server.send = bad_descriptor
            try:
                start()
            except OSError as error:
                print(error.errno == errno.EBADF)
            _forkserver._Server.send = send
            print(first, start())
        """,
    )
    failed, pids = out.splitlines()
    assert failed == "True"
    first, again = map(int, pids.split())
    assert again == first


def test_a_module_named_by_set_forkserver_preload_is_imported_in_the_server(
    tmp_path: Path,
) -> None:
    (tmp_path / "preloaded.py").write_text("import os\nIMPORTED_IN = os.getpid()\n")
    out = _script(
        tmp_path,
        """
        def where():
            import preloaded
            return preloaded.IMPORTED_IN, os.getpid()

        if __name__ == "__main__":
            multiprocessing.set_forkserver_preload(("preloaded",))  # a tuple, as the stdlib allows
            imported_in, child = parkit.run(where, context="forkserver")
            print(imported_in, child, _forkserver._server.pid)
        """,
    )
    imported_in, child, server = map(int, out.split())
    assert imported_in == server
    assert child != server


def test_a_process_forked_from_the_parent_starts_its_own_server(tmp_path: Path) -> None:
    out = _script(
        tmp_path,
        """
        if __name__ == "__main__":
            first = start()
            # As if another thread were starting a process at the fork: the
            # child's copy of the lock must not stay held.
            _forkserver._lock.acquire()
            child = os.fork()
            if child == 0:
                assert _forkserver._server is None  # forgotten at the fork
                own = start()
                print(own, flush=True)
                parkit.shutdown()
                os._exit(0 if own != first else 1)
            _forkserver._lock.release()
            _, status = os.waitpid(child, 0)
            print(first, start(), os.waitstatus_to_exitcode(status))
        """,
    )
    own_line, parent_line = out.splitlines()
    first, again, code = map(int, parent_line.split())
    assert int(own_line) != first
    assert again == first  # the parent's server still serves it
    assert code == 0


def test_a_stdlib_connection_reaches_a_forkserver_child() -> None:
    # Passed as the stdlib passes it to its own forkserver children: by
    # descriptor, through the process's Popen (DupFd).
    reader, writer = multiprocessing.Pipe(duplex=False)
    with reader, writer:
        p = parkit.Process(target=tasks.send_on, args=(writer, 42), context="forkserver")
        p.start()
        assert reader.poll(BOUND_S)
        assert reader.recv() == 42
        p.join(BOUND_S)
        assert p.exitcode == 0


def test_a_forkserver_child_runs_the_exit_hooks_it_registered(tmp_path: Path) -> None:
    # As on Python 3.13, on every version: the hooks registered while the child
    # ran run at its end (the stdlib's server on 3.11.7 and 3.12.1 skips them).
    marker = tmp_path / "hook-ran"
    p = parkit.Process(target=tasks.register_exit_hook, args=(str(marker),), context="forkserver")
    p.start()
    p.join(BOUND_S)
    assert p.exitcode == 0
    assert marker.read_text() == "ran"


def test_the_server_imports_parkit_from_where_the_parent_did(tmp_path: Path) -> None:
    # The parent's sys.path no longer names parkit's directory (the script
    # took it out after the import), and holds a path object: the server still
    # finds parkit.
    out = _script(
        tmp_path,
        """
        if __name__ == "__main__":
            root = _forkserver._PARKIT_ROOT
            sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != root]
            sys.path.append(pathlib.Path("/a/path/object"))  # skipped, as imports skip it
            os.environ.pop("PYTHONPATH", None)
            print(parkit.run(abs, -5, context="forkserver"))
        """,
    )
    assert out == "5\n"
