"""What ``import parkit`` and a pool worker import (issue 12, targets 1 and 2).

Modules, never times: each check runs in a fresh interpreter (the test process
has imported everything), and a forkserver started from it would hand its
imports to every worker.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import parkit

#: What ``import parkit`` alone must not load: each is loaded when first used.
NOT_AT_IMPORT = (
    "cloudpickle",
    "tblib",
    "numpy",
    "concurrent.futures.process",
    "parkit._pipe",
    "parkit._sync",
    "parkit.backends",
    "parkit._backends._thread",
    "parkit._backends._dask",
    "distributed",
    "dask",
    # parkit.amap and the Pool.a* methods import it when first used.
    "asyncio",
    "parkit._pool._async",
)

#: What a pool worker that runs ``abs`` must not load: the pool's parent side,
#: the executor, the sync objects, the stdlib executor, and the by-value
#: pickler and traceback pickler nobody needed.
NOT_IN_WORKER = (
    "parkit._pool",
    "parkit._pool._pool",
    "parkit._backends._process._engine",
    "parkit._backends._process._workers",
    "parkit._backends._registry",
    "parkit.backends",
    "parkit._pool._executor",
    "parkit._process",
    "parkit._pipe",
    "parkit._sync",
    "parkit._broken",
    "parkit._core._byvalue",
    "concurrent.futures.process",
    "cloudpickle",
    "tblib",
    "numpy",
    # Heavy for what they give a worker (~0.5-1 MiB of private memory each under
    # forkserver): the bound is 1.25x a stdlib Pool worker's memory.
    "dataclasses",
    "inspect",
    "ast",
    "typing",
    # The status board is a plain shared block (multiprocessing.heap), not a
    # ctypes array: unpickling one would load these (~0.35 MiB, ~3 ms).
    "ctypes",
    "multiprocessing.sharedctypes",
    # Formats an exception that travels; nothing raised here.
    "traceback",
    # Captures one, and parkit's error classes: loaded when something raises.
    "parkit._core._remote",
    "parkit.errors",
)

#: What a fresh interpreter that starts a process pool, maps and shuts it down
#: must not load (a cold start, issue 12 target 3): ``multiprocessing.Pool``
#: loads none of them. ``dataclasses`` comes with ``inspect``, ``ast`` and
#: ``dis``; the status board needs no ctypes; the thread backend and the
#: statistics load when asked for; a fork start needs no ``multiprocessing.spawn``.
NOT_IN_COLD_POOL = (
    # The map path's batch futures are parkit's own (_backends/_future.py):
    # concurrent.futures imports logging, ~3-5 ms of a cold start.
    "concurrent.futures",
    "logging",
    "dataclasses",
    "inspect",
    "ast",
    "ctypes",
    "multiprocessing.sharedctypes",
    "parkit._backends._thread",
    "parkit._backends._stats",
    "parkit._pool._executor",
    "parkit._sync",
    "concurrent.futures.process",
    "cloudpickle",
    "tblib",
    # ~2-3 ms of a cold start (its import and its objects at exit): the pool's
    # modules import it under TYPE_CHECKING only (parkit/_core/_typing.py).
    "typing",
    # The Backend protocol is a typing.Protocol: loaded to check a backend object.
    "parkit._backends._protocol",
    # Only a pool worker's nested one-shot call runs serially.
    "parkit._backends._serial",
    # Loaded where an item fails: capturing and rebuilding exceptions, parkit's
    # error classes; and log forwarding, where logging was imported.
    "parkit._core._remote",
    "parkit.errors",
    "parkit._core._logs",
)

#: What parkit's processes and pools never load, under any start method: parkit's
#: pipes and shared blocks are its own (_core/_frames.py, _segments.Block), and so
#: is its fork server (_core/_forkserver.py), since multiprocessing.connection and
#: multiprocessing.heap import tempfile (with shutil, random, bz2, lzma), ~3-4 ms
#: of a cold start, and the stdlib's fork server imports connection in the parent
#: and in the server.
NOT_LOADED = (
    "multiprocessing.connection",
    "multiprocessing.heap",
    "multiprocessing.forkserver",
    "multiprocessing.popen_forkserver",
    "tempfile",
)

#: A worker may load at most this many times the modules of a stdlib Pool worker.
MODULES_RATIO = 1.25


def _run(code: str, cwd: Path | None = None, timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter; its stdout, after checking it succeeded."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def _loaded(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden))


def test_import_parkit_loads_no_heavy_module() -> None:
    out = _run("import sys, json; import parkit; print(json.dumps(sorted(sys.modules)))")
    modules = json.loads(out)
    assert "parkit" in modules
    assert _loaded(modules, NOT_AT_IMPORT) == []


def test_errors_module_does_not_load_the_stdlib_executor() -> None:
    code = """
        import sys
        import parkit.errors
        print("concurrent.futures.process" in sys.modules)
        from concurrent.futures.process import BrokenProcessPool
        print(BrokenProcessPool in parkit.PoolBroken.__mro__)
        print(BrokenProcessPool in parkit.errors.WorkerCrashed.__mro__)
        print(parkit.PoolBroken is parkit.errors.PoolBroken)
        print(parkit.WorkerCrashed.__module__, parkit.PoolBroken.__qualname__)
    """
    assert _run(code).split("\n") == [
        "False",
        "True",
        "True",
        "True",
        "parkit.errors PoolBroken",
        "",
    ]


def test_names_match_the_type_checking_imports() -> None:
    # parkit/__init__.py lists every name twice: as an import for type checkers
    # and in the table that loads it at run time. They must agree.
    tree = ast.parse(Path(parkit.__file__).read_text())
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                for alias in stmt.names:
                    imported[alias.name] = stmt.module or ""
    assert imported.pop("errors") == ""
    assert imported.pop("backends") == ""
    assert imported == parkit._WHERE
    assert sorted([*imported, "backends", "errors"]) == parkit.__all__


def test_every_name_loads_in_a_fresh_interpreter() -> None:
    code = """
        import parkit
        for name in parkit.__all__:
            value = getattr(parkit, name)
            module = getattr(value, "__module__", None)
            print(name, module if isinstance(value, type) else "-")
        print(sorted(vars(parkit)) == sorted(set(vars(parkit)) | set(parkit.__all__)))
    """
    lines = _run(code).splitlines()
    assert lines[-1] == "True"
    for line in lines[:-1]:
        _name, module = line.split()
        assert module in ("-", "parkit", "parkit.errors"), line


def test_classes_say_parkit_when_loaded_through_another_name() -> None:
    # PoolStats reaches the user through Pool.stats() without parkit.PoolStats
    # ever being looked up; Pipe makes Connections the same way.
    code = """
        import sys
        import parkit
        pool = parkit.Pool(1)
        stats = pool.stats()
        pool.shutdown()
        parkit.Pipe
        print(type(stats).__module__)
        print(sys.modules["parkit._pipe"].Connection.__module__)
        print(repr(sys.modules["parkit._pipe"].Connection))
    """
    assert _run(code).splitlines() == ["parkit", "parkit", "<class 'parkit.Connection'>"]


def test_dir_lists_all() -> None:
    assert set(parkit.__all__) <= set(dir(parkit))
    assert {"PoolBroken", "WorkerCrashed"} <= set(dir(parkit.errors))


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError) as info:
        parkit.Nope  # type: ignore[attr-defined]  # noqa: B018
    assert str(info.value) == "module 'parkit' has no attribute 'Nope'"
    with pytest.raises(AttributeError) as info:
        parkit.errors.Nope  # type: ignore[attr-defined]  # noqa: B018
    assert str(info.value) == "module 'parkit.errors' has no attribute 'Nope'"


_PROBE = """
import sys


def modules(_: object) -> list[str]:
    return sorted(sys.modules)
"""

_WORKERS = """
    import json
    import multiprocessing
    import sys

    import parkit
    import probe

    method = sys.argv[1]
    with parkit.Pool(1, context=method) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]
        ours = pool.submit(probe.modules, 0).result()
    with multiprocessing.get_context(method).Pool(1) as pool:
        assert pool.map(abs, [-1, -2]) == [1, 2]
        stdlib = pool.apply(probe.modules, (0,))
    print(json.dumps({"parkit": ours, "stdlib": stdlib}))
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_pool_worker_imports_only_what_it_needs(method: str, tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(_PROBE)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WORKERS), method],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    ours, stdlib = found["parkit"], found["stdlib"]
    assert "parkit._backends._process._loop" in ours  # the probe ran in a parkit worker
    assert "multiprocessing.pool" in stdlib
    assert _loaded(ours, NOT_IN_WORKER) == []
    assert _loaded(ours, NOT_LOADED) == []
    assert "tempfile" in stdlib  # what this saves
    assert len(ours) <= MODULES_RATIO * len(stdlib), sorted(set(ours) - set(stdlib))


_COLD_POOL = """
    import atexit
    import json
    import sys

    # Registered first, so it runs last: what parkit's exit hooks load counts too.
    atexit.register(lambda: print(json.dumps(sorted(sys.modules))))

    import parkit

    pool = parkit.Pool(2, context=sys.argv[1])
    assert pool.map(abs, [-3]) == [3]
    pool.shutdown()
    assert parkit.map(abs, [-4], context=sys.argv[1]) == [4]
"""


def test_cold_pool_start_loads_only_what_it_needs(context: str) -> None:
    # Through interpreter exit: a pool shut down must not load its error
    # classes (concurrent.futures.process, with logging) at exit.
    modules = json.loads(_run_args(_COLD_POOL, context))
    assert "parkit._backends._process._engine" in modules
    assert "parkit._pool._default" in modules
    assert _loaded(modules, NOT_IN_COLD_POOL) == []
    assert ("multiprocessing.spawn" in modules) == (context != "fork")
    assert _loaded(modules, NOT_LOADED) == []


_COMPILES = """
    import builtins
    import json
    import sys

    compiled = []
    original = builtins.compile


    def counting_compile(source, filename, *args, **kwargs):
        if not str(filename).endswith(".py"):  # not an import without a .pyc
            compiled.append(filename)
        return original(source, filename, *args, **kwargs)


    builtins.compile = counting_compile

    import parkit
    import probe

    with parkit.Pool(1, context=sys.argv[1]) as pool:
        assert pool.map(abs, [-3]) == [3]
        worker = pool.submit(probe.stub_compiled, 0).result()
    print(json.dumps({"parent": compiled, "worker": worker}))
"""

_COMPILE_PROBE = """
import sys


def stub_compiled(_: object) -> bool:
    # What the worker's import of parkit._core._remote compiled, if anything
    # (a worker loads it when a call first raises).
    from parkit._core import _remote

    return _remote._STUB is not None
"""


def test_cold_pool_start_compiles_no_source(context: str, tmp_path: Path) -> None:
    # compile() costs milliseconds of a cold start (the compiler's first use),
    # in the parent and in every spawn or forkserver worker: what parkit
    # compiles (the traceback stub of _core/_remote.py) waits for its first use.
    (tmp_path / "probe.py").write_text(_COMPILE_PROBE)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_COMPILES), context],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"parent": [], "worker": False}


_COLD_RUN = """
    import json
    import sys

    import parkit

    assert parkit.run(abs, -3, context=sys.argv[1]) == 3
    print(json.dumps(sorted(sys.modules)))
"""


#: What a parkit.run whose function raises nothing never needs: the parent
#: rebuilds no exception and forwards no log record (logging never imported);
#: an importable function called on small plain values needs no pickler;
#: nothing fails, so no parkit error class is needed; no segment is mapped, and
#: none is looked for after a child that said it made none; no CPU set is
#: checked.
NOT_IN_COLD_RUN = (
    "parkit._core._segments",
    # A call of an importable function on plain values, and a plain result,
    # travel by pickle.dumps and pickle.loads (_worker._plain_call).
    "parkit._core._wire",
    "traceback",
    "dataclasses",
    "ctypes",
    "typing",
    "parkit._core._remote",
    "parkit._core._logs",
    "parkit.errors",
    "parkit._core._cpus",
    "mmap",
)


def test_cold_run_loads_no_traceback_module(context: str) -> None:
    # traceback (with linecache, tokenize, textwrap) formats an exception that
    # travels: a run that raises nothing does without it.
    modules = json.loads(_run_args(_COLD_RUN, context))
    assert "parkit._process" in modules
    assert _loaded(modules, NOT_IN_COLD_RUN) == []
    assert _loaded(modules, NOT_LOADED) == []


_RUN_CHILD = """
    import json
    import sys

    import parkit
    import probe

    print(json.dumps(parkit.run(probe.modules, 0, context=sys.argv[1])))
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_run_child_imports_only_what_it_needs(method: str, tmp_path: Path) -> None:
    # A fresh child (not a fork of the parent) loads what capturing an
    # exception (_remote) or removing a dead parent's segments (_segments,
    # mmap) needs only when that happens.
    (tmp_path / "probe.py").write_text(_PROBE)
    modules = json.loads(_run_args(_RUN_CHILD, method, cwd=tmp_path))
    assert "parkit._core._worker" in modules  # the probe ran in a parkit.run child
    assert _loaded(modules, NOT_IN_COLD_RUN) == []
    # What it runs, reads and writes, and no more: each module is ~0.1 ms of the
    # child's start (the stdlib's child imports only the task's module). The
    # pickler (_wire) comes when the result is not a small plain value: the
    # probe's list of names is pickled after this snapshot was taken.
    # A forkserver child also has what its server imported before forking it
    # (its own module, and _platform), at no cost to the child.
    server = ["parkit._core._forkserver", "parkit._core._platform"] * (method == "forkserver")
    assert sorted(m for m in modules if m.startswith("parkit")) == sorted(
        ["parkit", "parkit._core", "parkit._core._frames", "parkit._core._worker", *server]
    )
    assert _loaded(modules, NOT_LOADED) == []


def _run_args(code: str, *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


_AT_EXIT = """
    import atexit
    import sys


    def after_parkit() -> None:
        # Registered before parkit is imported, so it runs after parkit's exit
        # handlers, which terminate the pool.
        err = future.exception(timeout=60)
        print(type(err).__name__, isinstance(err, parkit.ParkitError), err)


    atexit.register(after_parkit)

    import parkit

    pool = parkit.Pool(1, context=sys.argv[1])
    # The worker is up before the script ends: under fork, a worker still to be
    # started at exit can't be (Python 3.12+ refuses to fork at shutdown), which
    # breaks the pool with another message.
    assert pool.submit(abs, -1).result(timeout=60) == 1
    never = parkit.Event()
    future = pool.submit(never.wait, 60)
"""


def test_pool_broken_at_interpreter_exit(context: str) -> None:
    # PoolBroken is defined on first use; at exit, concurrent.futures.process
    # cannot be imported any more (it registers an exit hook): the pool must
    # still fail its pending work with PoolBroken, not kill its I/O thread.
    assert _run_args(_AT_EXIT, context) == "PoolBroken True the pool was terminated\n"


@pytest.mark.parametrize(
    "module", ["parkit._process", "parkit._pool._default", "parkit._backends._process._engine"]
)
def test_exit_hooks_are_registered_after_multiprocessing_s(module: str) -> None:
    # atexit runs the last registered first: multiprocessing's exit handler,
    # which joins every non-daemonic child, must be registered (by importing
    # multiprocessing.util) before the module's own hook, which stops or
    # drains those children; else the interpreter's exit waits for ever on a
    # pool worker that is still running (test_pool_broken_at_interpreter_exit).
    code = f"""
        import atexit
        import sys

        registered = []
        register = atexit.register

        def spy(fn, *args, **kwargs):
            registered.append((fn.__module__, "multiprocessing.util" in sys.modules))
            return register(fn, *args, **kwargs)

        atexit.register = spy
        import {module}
        print(sorted(set(registered)))
        """
    hooks = ast.literal_eval(_run(code))
    assert (module, True) in hooks
    assert (module, False) not in hooks
