"""Every example runs, quickly, with its output checked line by line.

The examples (one per topic of the multiprocessing tutorial the project grew from)
are run once each, as the user would run them (``python examples/NN_topic.py``), a
few at a time: most of their time is spent starting processes, not computing, so
running them side by side keeps this module's share of CI small. Each test then
checks one example's output: exact lines where the output is deterministic,
patterns where a line holds a pid or a timing (timings are never asserted).

Running them all before the first test means the suite's per-test leak guard has
nothing to see; the fixture does its own check instead: every example runs with a
marker in its environment, which its children inherit, and after the runs no
process may carry the marker (an orphan would keep it) and no new ``/dev/shm``
entry may be left (the conftest's guard logic). ``test_examples_leave_nothing_behind``
reports what was found.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import _report_and_clean_up, _Snapshot, _wait_for_leaks_to_clear

EXAMPLES_DIR = Path(__file__).parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))

#: How many examples run at once. They mostly wait for processes to start; on the
#: two-core CI machine three at a time take about half as long as one at a time.
CONCURRENCY = 3
#: Seconds one example may take before it counts as hung (they take 1-3 s).
EXAMPLE_TIMEOUT_S = 120
#: The fixture runs every example before the first test: more than the default 60 s.
pytestmark = pytest.mark.timeout(600)

_MARKER = "PARKIT_EXAMPLE_RUN"

# A line is either matched exactly (str) or by a pattern (fullmatch).
Expected = str | re.Pattern[str]


@dataclass(frozen=True)
class Run:
    """One example's run."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


@dataclass
class Runs:
    """Every example's run, and what the runs left behind."""

    by_name: dict[str, Run]
    seconds: float
    leftovers: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Run:
        run = self.by_name[name]
        assert run.returncode == 0, f"{name} exited with {run.returncode}:\n{run.stderr}"
        return run


def _run(path: Path, marker: str) -> Run:
    env = {key: value for key, value in os.environ.items() if key != "PARKIT_START_METHOD"}
    env[_MARKER] = marker
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_S,
        check=False,
        env=env,
        cwd=EXAMPLES_DIR.parent,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def _marked(marker: str) -> list[Any]:
    """Processes whose environment carries ``marker``: the examples' descendants."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(_MARKER) == marker:
                found.append(proc)
        except psutil.Error:  # gone, a zombie, or not ours to read
            continue
    return found


def _orphans(marker: str) -> list[str]:
    deadline = time.monotonic() + 5.0
    while (procs := _marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    described = []
    for proc in procs:
        try:
            described.append(f"process {proc.pid} outlived its example: {proc.cmdline()}")
            proc.kill()
        except psutil.Error:
            continue
    return described


@pytest.fixture(scope="module")
def runs() -> Runs:
    marker = uuid.uuid4().hex
    before = _Snapshot.take()
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        done = list(pool.map(lambda path: _run(path, marker), EXAMPLES))
    result = Runs({p.name: run for p, run in zip(EXAMPLES, done, strict=True)},
                  time.monotonic() - start)  # fmt: skip
    result.leftovers = _orphans(marker)
    leaks = _wait_for_leaks_to_clear(before)
    if leaks:
        result.leftovers.append(_report_and_clean_up(leaks))
    return result


def check(run: Run, expected: list[Expected], *, in_order: bool = True) -> None:
    """``run``'s stdout is exactly ``expected``: in order, or (output of several
    processes, whose order varies) as a multiset."""
    lines = run.lines
    if in_order:
        assert len(lines) == len(expected), "\n".join(lines)
        for line, want in zip(lines, expected, strict=True):
            assert _matches(line, want), f"{line!r} does not match {want!r}"
        return
    left = list(lines)
    for want in expected:
        hit = next((line for line in left if _matches(line, want)), None)
        assert hit is not None, f"no line matches {want!r} in:\n" + "\n".join(lines)
        left.remove(hit)
    assert not left, f"unexpected lines: {left}"


def _matches(line: str, want: Expected) -> bool:
    return line == want if isinstance(want, str) else want.fullmatch(line) is not None


def _child_traceback(run: Run, last_line: str) -> None:
    # The stdlib's behaviour, kept: a Process target's exception is printed on the
    # child's stderr besides reaching the parent.
    assert "Traceback (most recent call last):" in run.stderr
    assert run.stderr.rstrip().endswith(last_line), run.stderr


# -------------------------------------------------------------------------- the set


def test_there_are_examples() -> None:
    assert [p.name for p in EXAMPLES] == [
        "01_processes_and_pids.py",
        "02_threads_vs_processes.py",
        "03_process.py",
        "04_pool_map.py",
        "05_queue.py",
        "06_pipe.py",
        "07_lock.py",
        "08_semaphore.py",
        "09_lifecycle.py",
        "10_value.py",
        "11_array.py",
        "12_manager_list_dict.py",
        "13_daemon.py",
        "14_inheritance.py",
        "15_start_methods.py",
        "16_exceptions.py",
        "17_deadlock_timeouts.py",
        "18_communication_overhead.py",
        "19_resource_management.py",
        "20_logging.py",
        "21_terminate.py",
        "22_exit_codes.py",
        "23_cpu_affinity.py",
        "24_when_not_to_parallelize.py",
        "25_profiling.py",
        "26_shared_memory.py",
        "27_remote_manager.py",
        "28_asyncio.py",
        "29_dask.py",
        "quickstart.py",
    ]


def test_the_readme_lists_every_example() -> None:
    readme = (EXAMPLES_DIR / "README.md").read_text()
    listed = re.findall(r"\[`([\w.]+\.py)`\]\(\1\)", readme)
    assert sorted(listed) == [p.name for p in EXAMPLES]


def test_every_example_opens_with_what_it_shows_and_what_the_stdlib_gets_wrong() -> None:
    # One test for all (not one per file): each test costs the leak guard's look.
    for path in EXAMPLES:
        tree = ast.parse(path.read_text())
        docstring = ast.get_docstring(tree)
        assert docstring is not None, path.name
        if path.name != "quickstart.py":
            assert "Shows" in docstring, path.name
            assert "What the stdlib version gets wrong:" in docstring, path.name
        # Runnable under spawn and forkserver: the work is under the main guard.
        guard = tree.body[-1]
        assert isinstance(guard, ast.If), path.name
        assert ast.unparse(guard.test) == "__name__ == '__main__'", path.name


def test_every_example_exits_cleanly(runs: Runs) -> None:
    for path in EXAMPLES:
        run = runs[path.name]  # exit status 0, or the failure shows its stderr
        assert run.stdout.strip(), path.name
        assert "resource_tracker" not in run.stderr, path.name
        assert "Warning" not in run.stderr, f"{path.name}: {run.stderr}"
        if path.name not in ("16_exceptions.py", "22_exit_codes.py", "quickstart.py"):
            assert run.stderr == "", f"{path.name}: {run.stderr}"


def test_examples_leave_nothing_behind(runs: Runs) -> None:
    slowest = sorted(runs.by_name.items(), key=lambda item: -item[1].seconds)[:3]
    print(f"examples: {runs.seconds:.1f} s in all, {CONCURRENCY} at a time; slowest:",
          ", ".join(f"{name} {run.seconds:.1f} s" for name, run in slowest))  # fmt: skip
    assert runs.leftovers == []


# ------------------------------------------------------------------- the examples


def test_quickstart_shows_results_and_the_worker_traceback(runs: Runs) -> None:
    run = runs["quickstart.py"]
    assert "collatz_steps(837799) = 524" in run.stdout
    assert "errors='return': [10, 20, ValueError(\"bad input row 17: '???'\"), 40," in run.stdout
    assert "ValueError: bad input row 17: '???'" in run.stderr
    assert 'quickstart.py", line 37, in parse_row' in run.stderr
    assert "[parkit] raised by parse_row on item 2 in worker 'parkit-pool" in run.stderr


def test_01_processes_and_pids(runs: Runs) -> None:
    def same(method: str, getppid: bool) -> str:
        return (
            f"{method}: p.pid is the child's pid: True; parent_process() is this process: "
            f"True; os.getppid() is this process: {getppid}"
        )

    check(
        runs["01_processes_and_pids.py"],
        [
            re.compile(r"main process: pid \d+"),
            re.compile(r"fork: child pid \d+, os.getppid\(\) \d+"),
            same("fork", True),
            re.compile(r"spawn: child pid \d+, os.getppid\(\) \d+"),
            same("spawn", True),
            re.compile(r"forkserver: child pid \d+, os.getppid\(\) \d+"),
            same("forkserver", False),  # the fork server is its OS parent
        ],
    )


def test_02_threads_vs_processes(runs: Runs) -> None:
    check(
        runs["02_threads_vs_processes.py"],
        [
            re.compile(
                r"timings: serial [\d.]+ s, threads [\d.]+ s, processes [\d.]+ s on \d+ CPU\(s\)"
            ),
            "same totals from all three: True",
            "threads ran in this process: True",
            "processes ran in other processes: True",
            "threads share one GIL; processes have one each, so CPU-bound work goes to processes",
        ],
    )


def test_03_process(runs: Runs) -> None:
    check(
        runs["03_process.py"],
        [
            "Hello, world!",
            "Hello, world!",
            "Hello from Process 1",
            "Hello from Process 2",
            "first: Process 1 is done",
            "second: Process 2 is done",
            "Both processes are done, exit codes 0 0",
            "a closure as the target: 42",
            "parkit.run, one call in a fresh process: 1024",
        ],
        in_order=False,  # the children print for themselves
    )


def test_04_pool_map(runs: Runs) -> None:
    check(
        runs["04_pool_map.py"],
        [
            "Squares: [1, 4, 9, 16, 25]",
            "pool.map: [0, 1, 4, 9, 16, 25, 36, 49]",
            "pool.submit: 144",
            "imap over an endless input: [0, 1, 4, 9, 16, 25]",
            "a lambda as the task: [100, 101, 102]",
            "the other items: [0, 1, 4, 16, 25]",
            "item 3: WorkerCrashed, exit code 3, item_index 3",
            "the pool goes on: [100, 121]",
        ],
    )


def test_05_queue(runs: Runs) -> None:
    check(
        runs["05_queue.py"],
        [
            "Main process received message: Hello from the worker process",
            "squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
            "joined first, exit code 0 then got 4000000 bytes",
            "put(threading.Lock()): SerializationError - the queue holds 0",
            "then: still usable",
        ],
    )


def test_06_pipe(runs: Runs) -> None:
    check(
        runs["06_pipe.py"],
        [
            "Main process received message: Hello from the worker process",
            "Worker received message: Hello from the main process",
            "the child died without sending: EOFError, names its pid: True",
            "recv(timeout=0.2) with nothing sent: TimeoutError",
        ],
    )


def test_07_lock(runs: Runs) -> None:
    run = runs["07_lock.py"]
    fruit = ["apple", "banana", "cherry"]
    check(
        run,
        [
            *(f"Printing {item}" for item in fruit),
            *(f"Printing {item} from a pool task" for item in fruit),
            "LockAbandoned, names the dead holder: True",
            "and the lock works again: True",
        ],
        in_order=False,
    )
    # The parent's own lines come last, in order (the children's order varies).
    assert run.lines[-2:] == [
        "LockAbandoned, names the dead holder: True",
        "and the lock works again: True",
    ]


def test_08_semaphore(runs: Runs) -> None:
    check(
        runs["08_semaphore.py"],
        [
            "10 processes done; never more than 3 inside at once: True",
            # A top-level semaphore is made again by every spawn child: parkit's
            # copy refuses to be used there, loudly.
            re.compile(
                r"top-level semaphore used in a spawn child: this parkit\.Semaphore was "
                r"made when process '\w+Process-\d+' \(pid \d+\) imported your main "
                r"module, as spawn and forkserver children do"
            ),
        ],
    )


def test_09_lifecycle(runs: Runs) -> None:
    check(
        runs["09_lifecycle.py"],
        [
            "created:  pid None, alive False, exit code None",
            "running:  has a pid True, alive True, exit code None",
            "finished: alive False, exit code 0, result 'demo finished its work'",
        ],
    )


def test_10_value(runs: Runs) -> None:
    check(
        runs["10_value.py"],
        [
            "Counter = 10",
            "4 pool tasks x 1000 add(1): 4000",
            "2 more x 500 under get_lock(): 5000",
            "update(lambda v: v * 2): 10000",
            "counter.value = 2**31: value 2147483648 is out of range for typecode 'i' (c_int): "
            "-2147483648 to 2147483647",
            "counter unchanged: 10",
        ],
    )


def test_11_array(runs: Runs) -> None:
    check(
        runs["11_array.py"],
        [
            "Squared numbers are: [0, 1, 4, 9, 16]",
            "after numbers[1:3] = [10, 20]: [0, 10, 20, 9, 16] length 5",
            "floats: [0.0, 0.5, 1.0, 1.5]",
            "50000 ** 2 into a C int: item 2500000000 is out of range for typecode 'i' (c_int): "
            "-2147483648 to 2147483647",
            "the element kept its value: 50000",
        ],
    )


def test_12_manager_list_dict(runs: Runs) -> None:
    check(
        runs["12_manager_list_dict.py"],
        [
            "Squares are: [0, 1, 4, 9, 16]",
            "Squares are: {0: 0, 1: 1, 2: 4, 3: 9, 4: 16}",
            "from pool tasks: [25, 36, 49, 64, 81] {5: 25, 6: 36, 7: 49, 8: 64, 9: 81}",
            "counter: 400",
        ],
    )


def test_13_daemon(runs: Runs) -> None:
    run = runs["13_daemon.py"]
    check(
        run,
        [
            "the daemon's parent was killed by SIGKILL",
            "the orphaned daemon exited on its own (LockAbandoned: its holder died)",
            "Starting Daemon",
            "daemon still running after join(timeout=0.1): True",
            re.compile(r"daemon pid \d+"),
            "Main Process exiting",
        ],
        in_order=False,  # "Starting Daemon" comes from the daemon
    )
    # Stopped at exit, before it got there; that it is gone at all is checked by
    # test_examples_leave_nothing_behind (it carried the run's marker).
    assert "Exiting Daemon" not in run.stdout


def test_14_inheritance(runs: Runs) -> None:
    changed = "'changed by the main process'"
    check(
        runs["14_inheritance.py"],
        [
            f"      fork: the global reads {changed}",
            '     spawn: the global reads "as the script\'s top level set it"',
            'forkserver: the global reads "as the script\'s top level set it"',
            f"      fork: as an argument {changed}, in a closure {changed}",
            f"     spawn: as an argument {changed}, in a closure {changed}",
            f"forkserver: as an argument {changed}, in a closure {changed}",
            "spawn pool, set by the initializer: {" + changed + "}",
        ],
    )


def test_15_start_methods(runs: Runs) -> None:
    check(
        runs["15_start_methods.py"],
        [
            "Using spawn start method: the worker is a SpawnProcess",
            "Using fork start method: the worker is a ForkProcess",
            "Using forkserver start method: the worker is a ForkServerProcess",
            "a pool from a context object: [2, 3]",
            "parkit's default here: forkserver",  # run without $PARKIT_START_METHOD
            "global start method unchanged: True",
            "context='fork-server': unknown start method 'fork-server'; this platform has: "
            "'forkserver', 'spawn', 'fork'",
        ],
    )


def test_16_exceptions(runs: Runs) -> None:
    run = runs["16_exceptions.py"]
    bad = "invalid literal for int() with base 10"
    check(
        run,
        [
            "start() and join() raised nothing; exit code 1",
            "p.result() raised: ValueError('Something went wrong!')",
            re.compile(r"its note: \[parkit\] raised in process 'ForkServerProcess-\d+'"),
            "the traceback ends in the child's frame: faulty_worker",
            "parkit.run raised: ValueError('Something went wrong!')",
            f"parkit.map raised the first bad item's error: {bad}: 'x'",
            f"errors='return': [1, 2, ValueError(\"{bad}: 'x'\"), 4, ValueError(\"{bad}: 'y'\")]",
        ],
    )
    _child_traceback(run, "ValueError: Something went wrong!")


def test_17_deadlock_timeouts(runs: Runs) -> None:
    check(
        runs["17_deadlock_timeouts.py"],
        [
            "lock.acquire(timeout=0.2) while another process holds it returned False",
            "lock.hold(timeout=0.2) raised LockTimeout; holder is that process: True alive: True",
            "also a TimeoutError: True",
            "the parent got a and b; the child said: "
            "'LockTimeout on a, held by my parent: True; backing off'",
            "taking a held Lock again: True",
        ],
    )


def test_18_communication_overhead(runs: Runs) -> None:
    check(
        runs["18_communication_overhead.py"],
        [
            "the receiver got ['data']",
            "the sender died; the receiver got EOFError",
            "an ndarray argument pickles to 4 MB; a SharedArray to under 1 KB: True",
            "same results: True",
            re.compile(r"8 tasks: ndarray \d+ ms, SharedArray \d+ ms"),
        ],
    )


def test_19_resource_management(runs: Runs) -> None:
    check(
        runs["19_resource_management.py"],
        [
            "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
            "collected after the block: [0, 1, 4, 9, 16]",
            "6 tasks, 1 worker replaced every 2 tasks: distinct workers = 3",
            "shared memory exists inside the block: True",
            "and is gone after it: True",
        ],
    )


def test_20_logging(runs: Runs) -> None:
    run = runs["20_logging.py"]
    worker = r"parkit-pool\d+-w\d+"
    check(
        run,
        [
            "INFO app [MainProcess] main process starting",
            *(re.compile(rf"INFO app \[{worker}\] processing {n}") for n in range(3)),
            "results: [0, 1, 4]",
            "WARNING app [my-worker] Worker Function in its own process",
            "INFO app [MainProcess] main process done",
        ],
        in_order=False,  # the pool's records arrive in the order the workers sent them
    )
    assert run.lines[0] == "INFO app [MainProcess] main process starting"
    assert run.lines[-3:] == [
        "results: [0, 1, 4]",
        "WARNING app [my-worker] Worker Function in its own process",
        "INFO app [MainProcess] main process done",
    ]


def test_21_terminate(runs: Runs) -> None:
    check(
        runs["21_terminate.py"],
        [
            "Working...",
            "Process terminated, exit code -15",
            "result(): WorkerCrashed, signal SIGTERM",
            "the lock it held: LockAbandoned, holder is the terminated process: True",
            "parkit.run(slow, timeout=0.5): TaskTimeout after 0.5 s, child stopped",
        ],
        in_order=False,  # "Working..." comes from the child
    )


def test_22_exit_codes(runs: Runs) -> None:
    run = runs["22_exit_codes.py"]
    check(
        run,
        [
            "Worker Function running on worker",
            "returns_one: Exit Code: 0; result() returned 1",
            " calls_exit: Exit Code: 3; result() raised SystemExit(3)",
            "     raises: Exit Code: 1; result() raised RuntimeError('failed')",
            " exits_hard: Exit Code: 7; WorkerCrashed(exitcode=7, signal=None)",
            "     killed: Exit Code: -9; WorkerCrashed(exitcode=-9, signal=SIGKILL)",
        ],
        in_order=False,  # the first line comes from the child
    )
    _child_traceback(run, "RuntimeError: failed")


def test_23_cpu_affinity(runs: Runs) -> None:
    check(
        runs["23_cpu_affinity.py"],
        [
            re.compile(r"this process may run on CPUs \[[\d, ]+\]"),
            "a child pinned to one CPU runs on just that one: True",
            "pool workers, cpus= all allowed CPUs: True",
            "a CPU the machine lacks: ValueError in the parent",
            "no CPU at all: ValueError in the parent",
        ],
    )


def test_23_cpu_affinity_where_only_some_cpus_are_allowed() -> None:
    # Under `taskset` (or a container's cpuset) that leaves out CPU 0.
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip("needs two usable CPUs to leave one out")
    subset = allowed[1:]
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_AFFINITY, str(EXAMPLES_DIR / "23_cpu_affinity.py"),
         ",".join(map(str, subset))],
        capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == [
        f"this process may run on CPUs {subset}",
        "a child pinned to one CPU runs on just that one: True",
        "pool workers, cpus= all allowed CPUs: True",
    ]


_UNDER_AFFINITY = """
import os, runpy, sys
path, cpus = sys.argv[1], {int(c) for c in sys.argv[2].split(",")}
os.sched_setaffinity(0, cpus)
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""


def test_24_when_not_to_parallelize(runs: Runs) -> None:
    # The timings and the verdicts they lead to vary with the machine: patterns only.
    timing = r"serial [\d.]+ ms, pool [\d.]+ ms, overhead/function [\d.]+"
    verdict = r"verdict here: (keep it serial|parallelize)"
    check(
        runs["24_when_not_to_parallelize.py"],
        [
            "square x 1000: same results as the serial loop: True",
            re.compile(f"square x 1000: {timing}"),
            re.compile(f"square x 1000: {verdict}"),
            "heavy x 8: same results as the serial loop: True",
            re.compile(f"heavy x 8: {timing}"),
            re.compile(f"heavy x 8: {verdict}"),
            "rule of thumb: parallelize when each item costs much more than sending it "
            "(overhead/function well below 1)",
        ],
    )


def test_25_profiling(runs: Runs) -> None:
    stats = r"\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+ "
    check(
        runs["25_profiling.py"],
        [
            "the parent's cProfile sees collatz_steps: False",
            "pool.profile() counts collatz_steps calls: 200",
            "and collatz_step calls equal to the total steps: True",
            "top of the workers' report:",
            re.compile(rf"{stats}.*25_profiling\.py:\d+\(collatz_steps?\)"),
            re.compile(rf"{stats}.*25_profiling\.py:\d+\(collatz_steps?\)"),
        ],
    )


def test_26_shared_memory(runs: Runs) -> None:
    check(
        runs["26_shared_memory.py"],
        [
            "[0, 1, 4, 9, 16]",
            "[[0, 0, 0, 0, 0], [0, 1, 2, 3, 4], [0, 2, 4, 6, 8], [0, 3, 6, 9, 12]]",
            "sum of the filled grid: 60",
        ],
    )


def test_27_remote_manager(runs: Runs) -> None:
    check(
        runs["27_remote_manager.py"],
        [
            "Manager(address=('', 50000), authkey of 10 bytes): ValueError: address "
            "('', 50000) listens on every interface, where other machines can connect; use "
            "127.0.0.1 (or a Unix socket path), or pass allow_remote=True to mean it",
            "Manager(address=('127.0.0.1', 50000), authkey of 10 bytes): ValueError: authkey "
            "has 10 bytes; at least 32 are required (a short key can be guessed): make one "
            "with secrets.token_bytes(32), or leave it out for a random one",
            "Server started on 127.0.0.1, key of 32 random bytes",
            "the client printed: 8",
            "a client with the wrong key: the manager refused the key",
        ],
    )


def test_28_asyncio(runs: Runs) -> None:
    check(
        runs["28_asyncio.py"],
        [
            "amap: [0, 1, 4, 9, 16, 25]",
            "aimap, as completed, sorted: [0, 1, 4, 9, 16, 25]",
            "two asubmit calls, gathered: [144, 1024]",
            "wait_for(asubmit(stuck), timeout=0.2): TimeoutError, the task cancelled",
            "the worker that ran it was stopped: True",
            "the pool goes on: [49, 64]",
        ],
    )


def test_29_dask(runs: Runs) -> None:
    check(
        runs["29_dask.py"],
        [
            "on the cluster: [0, 1, 4, 9, 16, 25]",
            "errors='return': [25, 36, ValueError('bad record 7'), 64, 81]",
            "raised: ValueError('bad record 7')",
            "its note names the Dask worker: True",
            "a Pool on the client: [1, 4, 9]",
        ],
    )
