"""The user's ``__main__``: read from stdin, without the guard, and its globals under fork.

Each test runs a real program in a fresh interpreter (``sys.executable``), as a
user would: a script file, or the script on standard input (``python - <
job.py``), and checks its exit code, stdout and stderr exactly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from parkit._core._context import available_methods

#: The start methods that import the main module in every child.
IMPORTING = [m for m in ("forkserver", "spawn") if m in available_methods()]

# Every way of starting parkit work, each with a function defined in the script.
STDIN_JOB = """
import sys
import parkit

def square(x):
    return x * x

def offset(x, by):
    return x + by

if __name__ == "__main__":
    method = sys.argv[1]
    print("map", parkit.map(square, range(4), workers=2, context=method))
    print("starmap", parkit.starmap(offset, [(1, 10), (2, 20)], workers=2, context=method))
    with parkit.Pool(2, context=method) as pool:
        print("pool", pool.map(square, [5, 6]), pool.submit(lambda: 7).result())
    with parkit.ProcessPoolExecutor(2, mp_context=method) as ex:
        print("executor", list(ex.map(square, [3, 4])), ex.submit(offset, 1, 2).result())
    p = parkit.Process(target=square, args=(9,), context=method)
    p.start()
    print("process", p.result(), p.join(), p.exitcode)
    print("run", parkit.run(square, 8, context=method))
    parkit.shutdown()
"""

STDIN_OUT = "map [0, 1, 4, 9]\nstarmap [11, 22]\npool [25, 36] 7\nexecutor [9, 16] 3\n"
STDIN_OUT += "process 81 None 0\nrun 64\n"


def _session_left(sid: int) -> list[int]:
    """Processes still alive in session ``sid`` (the program's descendants)."""
    left = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return left


def _python(args: list[str], tmp_path: Path, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``python *args`` in a session of its own; (exit code, stdout, stderr).

    Fails if any process of that session (a worker, the forkserver) is still
    there 10 s after the program ended.
    """
    # Files, not pipes: a leftover process holding a pipe would hang the read.
    out_path, err_path, in_path = tmp_path / "out", tmp_path / "err", tmp_path / "in"
    in_path.write_text(stdin or "")
    with out_path.open("w") as out, err_path.open("w") as err, in_path.open() as inp:
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdin=inp,
            stdout=out,
            stderr=err,
            cwd=tmp_path,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
    deadline = time.monotonic() + 10
    while (left := _session_left(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, 9)
    assert not left, f"processes left behind: {left}"
    return code, out_path.read_text(), err_path.read_text()


# ------------------------------------------------------------------ case 3: stdin


@pytest.mark.parametrize("method", available_methods())
def test_a_main_read_from_stdin_works_with_every_api(method: str, tmp_path: Path) -> None:
    code, out, err = _python(["-", method], tmp_path, stdin=textwrap.dedent(STDIN_JOB))
    assert (code, out, err) == (0, STDIN_OUT, "")


@pytest.mark.parametrize("method", IMPORTING)
def test_a_main_read_from_stdin_needs_no_guard(method: str, tmp_path: Path) -> None:
    # As with python -c, the workers import no main module: nothing to guard.
    job = "import sys, parkit\ndef sq(x):\n    return x * x\n"
    job += "print(parkit.map(sq, range(3), context=sys.argv[1]))\n"
    assert _python(["-", method], tmp_path, stdin=job) == (0, "[0, 1, 4]\n", "")


def test_a_stdin_main_leaves_the_stdlibs_own_starts_alone(tmp_path: Path) -> None:
    # The repair is for parkit's own starts: the stdlib's spawn from stdin
    # still fails as it always has (its child reads "<stdin>" as a path).
    job = """
import multiprocessing, parkit
def sq(x):
    return x * x
print(parkit.run(sq, 3, context="spawn"))
p = multiprocessing.get_context("spawn").Process(target=print)
p.start()
p.join()
print(p.exitcode)
"""
    code, out, err = _python(["-"], tmp_path, stdin=job)
    assert (code, out) == (0, "9\n1\n")
    assert "FileNotFoundError" in err


# ----------------------------------------------------- cases 4 and 9: no guard

UNGUARDED = {
    "map": "print(parkit.map(nap, [0.01, 0.02], context=METHOD))",
    "pool": "with parkit.Pool(2, context=METHOD) as pool:\n    print(pool.map(nap, [0.01]))",
    "executor": (
        "with parkit.ProcessPoolExecutor(2, mp_context=METHOD) as ex:\n"
        "    print(ex.submit(nap, 0.01).result())"
    ),
    "run": "print(parkit.run(nap, 0.01, context=METHOD))",
}

UNGUARDED_HEAD = """\
import sys
import time
import parkit

METHOD = sys.argv[1] if len(sys.argv) > 1 else None

def nap(seconds):
    time.sleep(seconds)
    return seconds

"""


def _guard_error(who: str, script: Path, method: str) -> str:
    return (
        f"parkit.errors.MainModuleError: {who} stopped while importing the main module "
        f"{script}: the module starts parkit work when it is imported, and every process "
        f"that the {method!r} start method starts imports it. Put the code that starts "
        'parkit work under `if __name__ == "__main__":`'
    )


def _pid_free(text: str) -> str:
    return re.sub(r"pid \d+", "pid N", text)


@pytest.mark.parametrize("api", sorted(UNGUARDED))
@pytest.mark.parametrize("method", IMPORTING)
def test_no_main_guard_gives_one_clear_error(api: str, method: str, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(UNGUARDED_HEAD + UNGUARDED[api] + "\n")
    code, out, err = _python([str(script), method], tmp_path)
    assert (code, out) == (1, "")
    assert err.count("Traceback") == 1, err
    assert err.startswith("Traceback (most recent call last):\n"), err
    last = _pid_free(err.rstrip("\n").splitlines()[-1])
    if api == "run":
        who = {"forkserver": "ForkServerProcess-1", "spawn": "SpawnProcess-1"}[method]
        # Not "died with EXIT(1) while running nap": nap never ran.
        assert last == _guard_error(f"process {who!r} (pid N)", script, method)
    else:
        assert re.fullmatch(
            re.escape(_guard_error("worker 'parkit-pool1-wK' (pid N)", script, method)).replace(
                "wK", "w[01]"
            ),
            last,
        ), last


@pytest.mark.parametrize("method", IMPORTING)
def test_no_main_guard_process_says_so_in_the_child_and_raises(method: str, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    body = "p = parkit.Process(target=nap, args=(0.01,), context=METHOD)\np.start()\n"
    body += "p.join()\nprint(p.exitcode)\nprint(p.result())\n"
    script.write_text(UNGUARDED_HEAD + body)
    code, out, err = _python([str(script), method], tmp_path)
    assert (code, out) == (1, "86\n")
    who = {"forkserver": "ForkServerProcess-1", "spawn": "SpawnProcess-1"}[method]
    error = _guard_error(f"process {who!r} (pid N)", script, method)
    lines = _pid_free(err).splitlines()
    # parkit.Process children print their failures, as the stdlib's do: here
    # one line, not a traceback; result() raises the same error.
    assert lines[0] == "parkit: " + error.removeprefix("parkit.errors.MainModuleError: ")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == error
    assert err.count("Traceback") == 1


def test_the_readme_example_without_a_guard_names_the_guard(tmp_path: Path) -> None:
    # The README's first lines pasted into a script: parkit's default start
    # method (forkserver on Linux) imports the script in every worker.
    script = tmp_path / "readme.py"
    script.write_text(
        "import parkit\n\ndef square(x: int) -> int:\n    return x * x\n\n"
        "squares = parkit.map(square, range(1000))\nprint(squares[-1])\n"
    )
    code, out, err = _python([str(script)], tmp_path)
    method = available_methods()[0]
    assert (code, out, err.count("Traceback")) == (1, "", 1)
    assert 'Put the code that starts parkit work under `if __name__ == "__main__":`' in err
    assert f"the {method!r} start method" in err
    guarded = script.read_text().replace("squares =", 'if __name__ == "__main__":\n    squares =')
    script.write_text(guarded.replace("print(", "    print("))
    assert _python([str(script)], tmp_path) == (0, "998001\n", "")


# ------------------------------------------- case 7: the script's globals under fork

GLOBALS_JOB = """
import sys
import parkit

CONFIG = {"url": None}

def setup(url):
    CONFIG["url"] = url

def read(_):
    return CONFIG["url"]

def double(x):
    return 2 * x

def triple(x):
    return 3 * x

def compose(first, then, url):
    first(url)
    return then(0)

if __name__ == "__main__":
    method = sys.argv[1]
    prod = ("postgres://prod",)
    with parkit.Pool(2, initializer=setup, initargs=prod, context=method) as pool:
        print("pool", pool.map(read, range(6)))
        print("submit", pool.submit(read, 0).result())
        # After the workers started: by value under every method, with a copy
        # of the parent's globals (whose CONFIG was never set).
        def late(_):
            return CONFIG["url"]
        print("late", pool.map(late, range(2)))
        # A name rebound after the fork: the worker's "double" is the old
        # function, so the new one must not go by that name.
        old_double, double = double, triple
        print("rebound", pool.map(double, [1, 2]), pool.map(old_double, [1, 2]))
    with parkit.ProcessPoolExecutor(2, mp_context=method, initializer=setup, initargs=prod) as ex:
        print("executor", list(ex.map(read, range(4))))
    print("one-shot", parkit.map(read, range(2), workers=2, context=method))
    print("run", parkit.run(compose, setup, read, "via run", context=method))
    p = parkit.Process(target=compose, args=(setup, read, "via Process"), context=method)
    p.start()
    print("process", p.result())
    parkit.shutdown()
"""

GLOBALS_OUT = """\
pool ['postgres://prod', 'postgres://prod', 'postgres://prod', \
'postgres://prod', 'postgres://prod', 'postgres://prod']
submit postgres://prod
late [None, None]
rebound [3, 6] [2, 4]
executor ['postgres://prod', 'postgres://prod', 'postgres://prod', 'postgres://prod']
one-shot [None, None]
run via run
process via Process
"""


@pytest.mark.parametrize("method", available_methods())
def test_initializer_and_task_share_the_scripts_globals(method: str, tmp_path: Path) -> None:
    # Under fork, too: a function the forked worker finds by name travels by
    # name, so the task reads the globals the initializer set (with the stdlib
    # under fork, and under forkserver and spawn, every task sees the URL).
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(GLOBALS_JOB))
    assert _python([str(script), method], tmp_path) == (0, GLOBALS_OUT, "")


# A parkit sync object made at module level: each spawn/forkserver child that
# imports the script makes its own (the tutorial's module-level Semaphore).
MODULE_LEVEL = """
import sys
import parkit

units = parkit.Semaphore(1)
with units:  # module-level code may use it, in the child's import too
    pass


def use_the_global(_):
    return units.acquire(timeout=1)


def use_an_argument(sem):
    return sem.acquire(timeout=1)


if __name__ == "__main__":
    method = sys.argv[1]
    units.acquire()  # the parent holds the only unit
    print("argument", parkit.run(use_an_argument, units, context=method, timeout=60))
    try:
        parkit.run(use_the_global, None, context=method, timeout=60)
    except RuntimeError as e:
        print("global", type(e).__name__, str(e).split(":")[0])
    parkit.shutdown()
"""


@pytest.mark.parametrize("method", IMPORTING)
def test_a_module_level_sync_object_used_in_a_child_is_refused_loudly(
    method: str, tmp_path: Path
) -> None:
    script = tmp_path / "job.py"
    script.write_text(MODULE_LEVEL)
    done = subprocess.run(
        [sys.executable, str(script), method],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # The parent's semaphore, passed as an argument, is the one shared: its only
    # unit is held, so the child's acquire times out.
    assert lines[0] == "argument False"
    assert re.fullmatch(
        r"global RuntimeError this parkit\.Semaphore was made when process "
        r"'\w+Process-\d+' \(pid \d+\) imported your main module, as spawn and "
        r"forkserver children do",
        lines[1],
    ), lines[1]
    assert len(lines) == 2
