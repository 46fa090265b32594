"""parkit's fork server: the ``forkserver`` start method, lighter and reachable by its parent only.

Under ``forkserver`` every child is forked from a server process: a fresh
interpreter with one thread, started once, so that no child inherits the
parent's threads, locks or memory. parkit keeps that design and the stdlib's
children, but runs its own server, for two reasons:

* **Weight.** ``multiprocessing.forkserver`` imports ``multiprocessing.connection``,
  and with it ``tempfile``, ``shutil``, ``random``, ``bz2`` and ``lzma``, in the
  parent and again in the server, and makes a temporary directory for the
  server's socket that an exit hook removes. All of that is on the path of a
  script's first ``parkit.map`` or ``parkit.run``. This module imports neither.
* **Reach.** The stdlib's server listens on a filesystem socket (in a ``0700``
  directory: FAULTS F21): anything running as the same user that finds it can
  ask it to fork and run a pickle. parkit's server listens on nothing. It talks
  to the process that started it over one end of a socket pair, which it
  inherited.

**The protocol** is the stdlib's, over that socket pair. For each child the
parent sends, with ``SCM_RIGHTS``: the read end of a data pipe, the write end of
a status pipe, the resource tracker's descriptor, and the descriptors the child
is to inherit (``DupFd``, as the stdlib's ``Connection`` objects and parkit's
pipe ends are passed). The server forks; it writes the child's pid to the
status pipe, and the child's exit code once it has reaped it. The parent
writes the child's preparation data and its pickled process object into the
data pipe; the status pipe's read end is the process's sentinel.

**The child** is the stdlib's: it runs ``multiprocessing.spawn._main`` on the
data pipe, as a stdlib forkserver child does, with the resource tracker shared
with the parent. As on Python 3.13, it runs the exit hooks registered while it
ran (none of the server's). **The server** imports what
``multiprocessing.set_forkserver_preload`` named, when the user called it, so
that every child starts with it imported; like the stdlib's server, it does not
import the parent's main module (each child does, while it prepares). It
exits when the socket pair's other end closes: when the parent exits or dies.
A child the server forked keeps running after that, and parkit's own children
see their parent's death by their lifeline. If the server dies, the next start
starts another, and the children it had started report exit code 255, as the
stdlib's do.

A process forked from the parent with ``os.fork()`` forgets the server (it
closes its end of the pair): its own first start starts one of its own.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing.context
import multiprocessing.popen_fork
import multiprocessing.process
import multiprocessing.reduction
import multiprocessing.util
import os
import signal
import socket
import struct
import sys
import threading

from . import _frames, _platform

TYPE_CHECKING = False  # typing.TYPE_CHECKING: the server and its children don't import typing
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Popen", "inherited_fds", "main", "use_for"]

#: More descriptors than this in one request is an error (the stdlib's limit).
MAX_FDS = 256

_SIGNED = struct.Struct("q")


def _write_signed(fd: int, n: int) -> None:
    _frames.write_all(fd, _SIGNED.pack(n))


def _read_signed(fd: int) -> int:
    n: int = _SIGNED.unpack(_frames.read_exactly(fd, _SIGNED.size))[0]
    return n


# ------------------------------------------------------------------ parent side


class _Server:
    """The running server: its pid and the parent's end of the socket pair.

    The end is kept as a bare descriptor (closed by the kernel at exit, when
    the server must see it close), not as a socket object that would warn
    of being left open at interpreter exit.
    """

    def __init__(self, pid: int, control: int) -> None:
        self.pid = pid
        self.control = control

    def send(self, fds: list[int]) -> None:
        sock = socket.socket(fileno=self.control)
        try:
            multiprocessing.reduction.sendfds(sock, fds)
        finally:
            sock.detach()


_server: _Server | None = None
#: The directory that holds the parkit package, for the server's sys.path.
_PARKIT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_lock = threading.Lock()
#: The parent's end of a pair whose server is being started (None otherwise).
_starting: int | None = None
#: Servers that died and are not reaped yet (see _running).
_dead: list[int] = []


def _preload() -> list[str]:
    """What ``multiprocessing.set_forkserver_preload`` set; ``["__main__"]`` if nothing."""
    stdlib = sys.modules.get("multiprocessing.forkserver")
    modules = getattr(getattr(stdlib, "_forkserver", None), "_preload_modules", None)
    # The stdlib keeps what it was given: a list or a tuple of names.
    return ["__main__"] if modules is None else [str(name) for name in modules]


def _start() -> _Server:
    import multiprocessing.spawn  # noqa: PLC0415 - imported by every start anyway

    global _starting
    ours, theirs = socket.socketpair()
    _starting = ours.fileno()  # for a fork meanwhile: _forget_server
    try:
        # The parent's sys.path: parkit (and what is preloaded) imports in the
        # server as it does here, even where sys.path changed since parkit's import.
        # Its str entries: the import system skips any other (a Path object).
        path = [p for p in sys.path if isinstance(p, str)]
        if _PARKIT_ROOT not in path:
            path.append(_PARKIT_ROOT)
        command = (
            f"import sys; sys.path = {path!r}; "
            "from parkit._core._forkserver import main; "
            f"main({theirs.fileno()}, {_preload()!r})"
        )
        exe = multiprocessing.spawn.get_executable()
        flags = multiprocessing.util._args_from_interpreter_flags()  # type: ignore[attr-defined]
        pid = multiprocessing.util.spawnv_passfds(
            exe,  # type: ignore[arg-type]  # typeshed says bytes; the stdlib passes str
            [exe, *flags, "-c", command],
            [theirs.fileno()],
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
        _starting = None
    return _Server(pid, ours.detach())


def _running(*, gone: bool = False) -> _Server:
    """The server, started (again, if it died) if need be. Call with ``_lock`` held.

    ``gone``: a request just found the server's end closed (it is exiting,
    whatever ``waitpid`` said a moment before).
    """
    global _server
    for pid in list(_dead):  # reaped once they have exited; never waited for
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        _dead.remove(pid)
    if _server is not None:
        try:
            pid, _ = os.waitpid(_server.pid, os.WNOHANG)
        except ChildProcessError:
            pid = _server.pid
        if pid == 0 and not gone:
            return _server
        if pid == 0:
            _dead.append(_server.pid)
        os.close(_server.control)
        _server = None
    _server = _start()
    return _server


def _new_process(fds: list[int]) -> tuple[int, int]:
    """Ask the server for a child: (status pipe's read end, data pipe's write end)."""
    from multiprocessing import resource_tracker  # noqa: PLC0415 - the stdlib's forkserver loads it too

    if len(fds) + 3 > MAX_FDS:
        raise ValueError(f"a child can inherit at most {MAX_FDS - 3} descriptors, not {len(fds)}")
    resource_tracker.ensure_running()
    status_r, status_w = os.pipe()
    data_r, data_w = os.pipe()
    try:
        with _lock:
            tracker_fd: int = resource_tracker.getfd()  # type: ignore[assignment]  # running
            request = [data_r, status_w, tracker_fd, *fds]
            try:
                _running().send(request)
            except (BrokenPipeError, ConnectionResetError):
                # The server died after _running() found it alive: once more,
                # with a new one. (Any other error is the request's own, and a
                # live server keeps serving its children.)
                _running(gone=True).send(request)
    except BaseException:
        os.close(status_r)
        os.close(data_w)
        raise
    finally:
        os.close(data_r)
        os.close(status_w)
    return status_r, data_w


def _forget_server() -> None:
    # os.fork() from a process that had a server: the child's first start
    # starts its own; the pair's end is the parent's, and the server must see
    # it close when the parent goes. The lock may have been held by another
    # thread of the parent at the fork: the child's copy would stay held.
    global _server, _lock, _starting
    _lock = threading.Lock()
    server, _server = _server, None
    if server is not None:
        os.close(server.control)
    if _starting is not None:  # another thread was starting one at the fork
        os.close(_starting)
        _starting = None
    _dead.clear()  # the parent's children, not this process's


_platform.after_fork_in_child(_forget_server)


class _DupFd:
    """Unpickled in the child as the ``index``-th descriptor it inherited."""

    def __init__(self, index: int) -> None:
        self.index = index

    def detach(self) -> int:
        return _inherited[self.index]


#: The descriptors this child inherited (the server sets it in each child).
_inherited: list[int] = []


def inherited_fds() -> list[int]:
    """The descriptors this process inherited as a child of parkit's server."""
    return list(_inherited)


class Popen(multiprocessing.popen_fork.Popen):
    """A child of parkit's server; the stdlib's ``popen_forkserver.Popen`` otherwise."""

    method = "forkserver"
    DupFd = _DupFd

    def __init__(self, process_obj: Any) -> None:
        self._fds: list[int] = []
        super().__init__(process_obj)

    def duplicate_for_child(self, fd: int) -> int:
        self._fds.append(fd)
        return len(self._fds) - 1

    def _launch(self, process_obj: Any) -> None:
        # Through the module: parkit's start swaps get_preparation_data (_context).
        import multiprocessing.spawn  # noqa: PLC0415

        prep_data = multiprocessing.spawn.get_preparation_data(process_obj._name)
        buf = io.BytesIO()
        multiprocessing.context.set_spawning_popen(self)  # type: ignore[arg-type]
        try:
            multiprocessing.reduction.dump(prep_data, buf)
            multiprocessing.reduction.dump(process_obj, buf)
        finally:
            multiprocessing.context.set_spawning_popen(None)
        self.sentinel, data_w = _new_process(self._fds)
        # The child's parent sentinel is its copy of the data pipe's read end:
        # it reads end of file once this duplicate closes (with this object, or
        # this process).
        keep = os.dup(data_w)
        self.finalizer = multiprocessing.util.Finalize(
            self,
            multiprocessing.util.close_fds,  # type: ignore[attr-defined]
            (keep, self.sentinel),
        )
        with open(data_w, "wb", closefd=True) as data:
            data.write(buf.getbuffer())
        self.pid = _read_signed(self.sentinel)

    def poll(self, flag: int = os.WNOHANG) -> int | None:
        if self.returncode is None:
            timeout = 0 if flag == os.WNOHANG else None
            if not _platform.wait_fds([self.sentinel], timeout):
                return None
            try:
                self.returncode = _read_signed(self.sentinel)
            except (OSError, EOFError):
                # The server died before it could reap the child.
                self.returncode = 255
        code: int | None = self.returncode
        return code


def _make_popen(process: Any) -> Popen:
    # Installed on the process object by use_for(); taken off again before the
    # object is pickled for the child.
    vars(process).pop("_Popen", None)
    return Popen(process)


def use_for(process: Any) -> None:
    """Start ``process`` (unstarted, of the stdlib's forkserver context) with parkit's server.

    A process of another class (a context of the user's own) keeps its own way.
    """
    stdlib = getattr(multiprocessing.context, "ForkServerProcess", None)
    if stdlib is not None and type(process) is stdlib:
        process._Popen = _make_popen


# ------------------------------------------------------------------ server side


def main(control_fd: int, preload: list[str]) -> None:
    """Run the server on ``control_fd``, its end of the socket pair, until that closes."""
    # The server's own, and what every child runs (_child): imported once
    # here, not in each child.
    import multiprocessing.resource_tracker  # noqa: PLC0415
    import multiprocessing.spawn  # noqa: PLC0415
    import selectors  # noqa: PLC0415

    # "__main__" is this server's own, as in the stdlib's server: each child
    # imports the parent's main module itself, while it prepares.
    for name in preload:
        with contextlib.suppress(ImportError):
            __import__(name)
    multiprocessing.util._close_stdin()  # type: ignore[attr-defined]

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    handlers: dict[int, Any] = {
        # A handler (not SIG_IGN, which would reap children unasked) so that
        # SIGCHLD reaches the wake-up pipe.
        signal.SIGCHLD: lambda *_: None,
        signal.SIGINT: signal.SIG_IGN,  # a terminal's Ctrl-C is the parent's to handle
    }
    before = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    signal.set_wakeup_fd(wake_w)
    status: dict[int, int] = {}  # child pid -> its status pipe's write end
    control = socket.socket(fileno=control_fd)
    with control, selectors.DefaultSelector() as selector:
        selector.register(control, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        while True:
            ready = {key.fd for key, _ in selector.select()}
            if wake_r in ready:
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                _reap(status)
            if control_fd not in ready:
                continue
            try:
                fds = multiprocessing.reduction.recvfds(control, MAX_FDS + 1)
            except EOFError:
                return  # the parent is gone
            data_r, status_w, tracker_fd, *inherit = fds
            pid = os.fork()
            if pid == 0:
                code = 1  # anything raised here ends the child, never runs the loop on
                try:
                    selector.close()
                    control.close()
                    unused = [wake_r, wake_w, status_w, *status.values()]
                    code = _child(data_r, tracker_fd, inherit, unused, before)
                finally:
                    os._exit(code)
            status[pid] = status_w
            for fd in (data_r, tracker_fd, *inherit):
                os.close(fd)
            with contextlib.suppress(BrokenPipeError):  # the parent closed its end
                _write_signed(status_w, pid)


def _reap(status: dict[int, int]) -> None:
    """Reap every ended child and send its exit code to the parent."""
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = status.pop(pid, None)
        if fd is None:
            continue
        with contextlib.suppress(BrokenPipeError):  # the parent closed its end
            _write_signed(fd, os.waitstatus_to_exitcode(wait_status))
        os.close(fd)


def _child(
    data_r: int, tracker_fd: int, inherit: list[int], unused: list[int], handlers: dict[int, Any]
) -> int:
    """In a forked child: become the process the parent sent and run it; its exit code.

    As a stdlib forkserver child: 1 if anything fails before the process runs
    (printed to stderr), the exit hooks of what ran here (as on 3.13: not the
    server's).
    """
    import atexit  # noqa: PLC0415

    atexit._clear()
    code = 1
    try:
        import multiprocessing.spawn  # noqa: PLC0415
        from multiprocessing import resource_tracker  # noqa: PLC0415

        atexit.register(multiprocessing.util._exit_function)  # type: ignore[attr-defined]
        signal.set_wakeup_fd(-1)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for fd in unused:
            os.close(fd)
        resource_tracker._resource_tracker._fd = tracker_fd  # type: ignore[attr-defined]
        _inherited[:] = inherit
        code = multiprocessing.spawn._main(data_r, os.dup(data_r))
    except Exception:
        sys.excepthook(*sys.exc_info())
        sys.stderr.flush()
    finally:
        atexit._run_exitfuncs()
    return code
