"""parkit against its peers, side by side: workloads A-G, IMPORT, D-cold, Q, LOCK, PORT, DASK.

    python benchmarks/run.py                 # everything, ~5 minutes on 2 cores
    python benchmarks/run.py --only A,E      # some workloads
    python benchmarks/run.py --smoke         # smallest sizes, one repetition (CI)

Contenders run interleaved (A B C A B C ...) after one warm-up run each, so drift
of the machine hits all of them alike (fresh interpreters: in a shuffled order
each round); each figure is the median of the repetitions. The markdown table
(versions, core count, date) goes to stdout and to ``--out``. Peers:
``multiprocessing.Pool`` and ``concurrent.futures.ProcessPoolExecutor`` always;
loky, joblib, mpire and pebble when installed (``pip install 'parkit[bench]'``).
Worker functions live in ``benchmarks/workloads.py`` so every library ships them
by reference.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import datetime
import importlib.metadata
import json
import multiprocessing
import os
import pickle
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ipc
import workloads

import parkit
from parkit._core._cpus import usable_cpus

# ---------------------------------------------------------------- contenders


@dataclass
class Contender:
    """One library, driven through the same small interface."""

    name: str
    start: Callable[[int, str], Any]  # (workers, method) -> pool
    map: Callable[[Any, Callable[..., Any], list[Any]], list[Any]]
    stop: Callable[[Any], None]
    imap: Callable[[Any, Callable[..., Any], Iterator[Any]], Iterator[Any]] | None = None
    note: str = ""


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _parkit() -> Contender:
    return Contender(
        "parkit",
        lambda n, m: parkit.Pool(n, context=m),
        lambda p, f, xs: p.map(f, xs),
        lambda p: p.shutdown(),
        imap=lambda p, f, it: p.imap(f, it),
    )


def _mp_pool() -> Contender:
    return Contender(
        "multiprocessing.Pool",
        lambda n, m: multiprocessing.get_context(m).Pool(n),
        lambda p, f, xs: p.map(f, xs),
        lambda p: (p.close(), p.join()),
        imap=lambda p, f, it: p.imap(f, it),
    )


def _ppe(chunksize: int = 1, label: str = "") -> Contender:
    return Contender(
        f"ProcessPoolExecutor{label}",
        lambda n, m: ProcessPoolExecutor(n, mp_context=multiprocessing.get_context(m)),
        lambda p, f, xs: list(p.map(f, xs, chunksize=chunksize)),
        lambda p: p.shutdown(),
        imap=lambda p, f, it: p.map(f, it, chunksize=chunksize),
    )


def _loky(chunksize: int = 1, label: str = "") -> Contender:
    import loky

    return Contender(
        f"loky{label}",
        lambda n, m: loky.ProcessPoolExecutor(n, context=multiprocessing.get_context(m)),
        lambda p, f, xs: list(p.map(f, xs, chunksize=chunksize)),
        lambda p: p.shutdown(),
        imap=lambda p, f, it: p.map(f, it, chunksize=chunksize),
    )


def _joblib() -> Contender:
    import joblib

    return Contender(
        "joblib",
        lambda n, m: joblib.Parallel(n_jobs=n),
        lambda p, f, xs: p(joblib.delayed(f)(x) for x in xs),
        lambda p: None,
        imap=None,
        note="loky backend, its own start method",
    )


def _mpire() -> Contender:
    import mpire

    def start(n: int, m: str, keep_alive: bool = True) -> Any:
        # keep_alive keeps the workers warm between maps (as the other pools
        # are), but its imap then never yields on an endless input; F uses a
        # pool without it.
        return mpire.WorkerPool(n, start_method=m, keep_alive=keep_alive)

    return Contender(
        "mpire",
        start,
        lambda p, f, xs: p.map(f, xs, progress_bar=False),
        lambda p: p.terminate(),
        imap=lambda p, f, it: p.imap(f, it, progress_bar=False),
    )


def _pebble() -> Contender:
    import pebble

    return Contender(
        "pebble",
        lambda n, m: pebble.ProcessPool(n, context=multiprocessing.get_context(m)),
        lambda p, f, xs: list(p.map(f, xs).result()),
        lambda p: (p.close(), p.join()),
        imap=lambda p, f, it: p.map(f, it).result(),
    )


def contenders() -> list[Contender]:
    out = [_parkit(), _mp_pool(), _ppe()]
    for module, make in (
        ("loky", _loky),
        ("joblib", _joblib),
        ("mpire", _mpire),
        ("pebble", _pebble),
    ):
        if _have(module):
            out.append(make())
    return out


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("parkit", "loky", "joblib", "mpire", "pebble", "numpy", "cloudpickle"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    return out


# ------------------------------------------------------------------ machinery


@dataclass
class Table:
    title: str
    unit: str
    better: str  # "lower" or "higher"
    rows: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", f"| contender | {self.unit} |", "|---|---|"]
        for name, value in self.rows.items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"| {name} | {shown} |")
        lines += ["", *self.notes] if self.notes else []
        return "\n".join(lines)


def interleaved(
    runs: dict[str, Callable[[], float]], repeat: int, warmup: bool = True
) -> dict[str, float]:
    """Each callable returns one measurement; medians over ``repeat`` rounds."""
    if warmup:
        for fn in runs.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            samples[name].append(fn())
    return {name: statistics.median(xs) for name, xs in samples.items()}


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@contextlib.contextmanager
def pools(cs: list[Contender], workers: int, method: str) -> Iterator[dict[str, Any]]:
    started: dict[str, Any] = {}
    try:
        for c in cs:
            started[c.name] = c.start(workers, method)
        yield started
    finally:
        for c in cs:
            if c.name in started:
                c.stop(started[c.name])


# ------------------------------------------------------------------ workloads


def workload_a(cs: list[Contender], args: argparse.Namespace) -> Table:
    n = 2_000 if args.smoke else 200_000
    slow = n // 10  # default chunksize 1 executors: ~60 us/item; fewer items, same figure
    extra = [_ppe(max(1, n // (4 * args.workers)), " (chunksize=n/4w)")]
    if _have("loky"):
        extra.append(_loky(max(1, n // (4 * args.workers)), " (chunksize=n/4w)"))
    everyone = cs + extra
    table = Table(f"A. x*x over {n:,} ints, pool warm ({args.method})", "µs per item", "lower")
    with pools(everyone, args.workers, args.method) as started:
        runs: dict[str, Callable[[], float]] = {}
        for c in everyone:
            size = slow if c.name in ("ProcessPoolExecutor", "loky", "pebble") else n
            items = list(range(size))
            runs[c.name] = lambda c=c, items=items, size=size: (
                timed(lambda: c.map(started[c.name], workloads.square, items)) / size * 1e6
            )
        items = list(range(n))
        squares = [x * x for x in items]
        chunk = max(1, n // (4 * args.workers))

        def floor() -> float:
            # The parent's share alone: pickle the arguments, unpickle the results,
            # in the chunks multiprocessing.Pool uses. No pool can do less here.
            def go() -> None:
                for i in range(0, n, chunk):
                    pickle.loads(pickle.dumps(items[i : i + chunk]))
                    pickle.loads(pickle.dumps(squares[i : i + chunk]))

            return timed(go) / n * 1e6

        runs["floor: the parent's pickling alone"] = floor
        table.rows = interleaved(runs, args.repeat)
    table.notes.append(
        f"ProcessPoolExecutor, loky and pebble at their default chunksize run {slow:,} items."
    )
    return table


def calibrate_spin(target: float) -> int:
    iterations = 100_000
    while True:
        t = timed(lambda n=iterations: workloads.spin(n))
        if t > 0.02:
            return int(iterations * target / t)
        iterations *= 2


def workload_b(cs: list[Contender], args: argparse.Namespace) -> Table:
    tasks, target = (4, 0.01) if args.smoke else (32, 0.04)
    iterations = calibrate_spin(target)
    items = [iterations] * tasks
    table = Table(
        f"B. {tasks} tasks of ~{target * 1000:.0f} ms pure-Python CPU",
        "parallel efficiency %",
        "higher",
    )
    serial_times: list[float] = []

    def serial() -> float:
        t = timed(lambda: [workloads.spin(i) for i in items])
        serial_times.append(t)
        return t

    # This machine's CPU speed drifts by tens of percent within seconds (a shared VM),
    # so each parallel run is paired with a serial run taken just before it: a serial
    # time measured once at the start made efficiencies of 80% and 115% out of the
    # same pools.
    # parkit's own share of the loss, free of that drift: the seconds its workers spent
    # running items (PoolStats.busy) over wall x workers, in the same runs.
    occupancy: list[float] = []

    def efficiency(c: Contender, pool: Any) -> float:
        reference = serial()
        before: float = sum(pool.stats().busy) if c.name == "parkit" else 0.0
        wall = timed(lambda: c.map(pool, workloads.spin, items))
        if c.name == "parkit":
            occupancy.append(100 * (sum(pool.stats().busy) - before) / (wall * args.workers))
        return float(100 * reference / (wall * args.workers))

    with pools(cs, args.workers, args.method) as started:
        runs = {c.name: (lambda c=c: efficiency(c, started[c.name])) for c in cs}
        table.rows = interleaved(runs, args.repeat)
    if occupancy:
        table.rows["parkit: its workers' busy time / (wall x workers)"] = statistics.median(
            occupancy[1:] or occupancy  # not the warm-up
        )
    table.notes.append(
        f"efficiency = serial / (wall x {args.workers} workers), each parallel run paired "
        f"with a serial run just before it (serial times {min(serial_times):.3f}"
        f" to {max(serial_times):.3f} s, median {statistics.median(serial_times):.3f} s). "
        "The busy-time row is the efficiency parkit's scheduling allows whatever the "
        "CPU speed: the rest of the wall time its workers waited for work "
        "(dispatch, result handling, the last item's tail)."
    )
    return table


def workload_c(cs: list[Contender], args: argparse.Namespace) -> list[Table]:
    import numpy as np

    count = 4 if args.smoke else 64
    mib = count * workloads.ARRAY_BYTES / 2**20
    arrays = [np.full(workloads.ARRAY_BYTES // 8, float(i)) for i in range(count)]
    seeds = list(range(count))
    tables = [
        Table(f"C1. {count} NumPy arrays of 4 MiB as arguments (sum returned)", "MiB/s", "higher"),
        Table(f"C2. {count} NumPy arrays of 4 MiB as results", "MiB/s", "higher"),
    ]
    with pools(cs, args.workers, args.method) as started:
        tables[0].rows = interleaved(
            {
                c.name: (
                    lambda c=c: (
                        mib / timed(lambda: c.map(started[c.name], workloads.array_sum, arrays))
                    )
                )
                for c in cs
            },
            args.repeat,
        )
        tables[1].rows = interleaved(
            {
                c.name: (
                    lambda c=c: (
                        mib / timed(lambda: c.map(started[c.name], workloads.make_array, seeds))
                    )
                )
                for c in cs
            },
            args.repeat,
        )
    return tables


def workload_d(cs: list[Contender], args: argparse.Namespace) -> list[Table]:
    tables = []
    for method in args.methods:
        table = Table(f"D. create a pool + one task + shut down ({method})", "ms", "lower")

        def once(c: Contender, method: str = method) -> float:
            def go() -> None:
                pool = c.start(args.workers, method)
                try:
                    assert c.map(pool, workloads.square, [3]) == [9]
                finally:
                    c.stop(pool)

            return timed(go) * 1000

        table.rows = interleaved(
            {c.name: (lambda c=c: once(c)) for c in cs if c.name != "joblib"}, args.repeat
        )
        tables.append(table)
    return tables


def workload_e(cs: list[Contender], args: argparse.Namespace) -> Table:
    calls = 20 if args.smoke else 200
    items = list(range(8))
    table = Table(f"E. {calls} consecutive maps of 8 items", "ms per call", "lower")
    with pools(cs, args.workers, args.method) as started:

        def warm(c: Contender) -> float:
            pool = started[c.name]
            return (
                timed(lambda: [c.map(pool, workloads.square, items) for _ in range(calls)])
                / calls
                * 1000
            )

        runs: dict[str, Callable[[], float]] = {
            f"{c.name} (warm pool)": (lambda c=c: warm(c)) for c in cs
        }
        runs["parkit.map (one-shot calls)"] = lambda: (
            timed(
                lambda: [
                    parkit.map(workloads.square, items, workers=args.workers, context=args.method)
                    for _ in range(calls)
                ]
            )
            / calls
            * 1000
        )
        # The asyncio twins, beside the blocking ones (issue 15: at most 1.1x).
        # Timed inside the loop: asyncio.run's own set-up is not the call's cost.
        if "parkit" in started:
            pool = started["parkit"]

            async def warm_async() -> float:
                t0 = time.perf_counter()
                for _ in range(calls):
                    await pool.amap(workloads.square, items)
                return time.perf_counter() - t0

            runs["parkit await pool.amap (warm pool)"] = lambda: (
                asyncio.run(warm_async()) / calls * 1000
            )

        async def one_shot_async() -> float:
            t0 = time.perf_counter()
            for _ in range(calls):
                await parkit.amap(
                    workloads.square, items, workers=args.workers, context=args.method
                )
            return time.perf_counter() - t0

        runs["await parkit.amap (one-shot calls)"] = lambda: (
            asyncio.run(one_shot_async()) / calls * 1000
        )
        table.rows = interleaved(runs, args.repeat)
    parkit.shutdown()
    return table


F_LIMIT_S = 10.0


def f_child(name: str, workers: int, method: str, first: int) -> None:
    """Run in a subprocess: imap over an endless input; print JSON figures."""
    import resource

    c = {x.name: x for x in contenders()}[name]
    assert c.imap is not None
    pool = c.start(workers, method, False) if name == "mpire" else c.start(workers, method)
    # Every pool has its workers running before the clock starts (some start
    # them in the constructor, parkit on first use).
    assert c.map(pool, workloads.square, [2]) == [4]
    counter = [0]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    it = iter(c.imap(pool, workloads.square, workloads.counted(counter)))
    for _ in range(first):
        next(it)
    elapsed = time.perf_counter() - t0
    pulled_then = counter[0]
    time.sleep(1.0)
    pulled_later = counter[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "first": elapsed,
                "then": pulled_then,
                "later": pulled_later,
                "rss_mib": (rss - rss0) / 1024,
            }
        ),
        flush=True,
    )
    os._exit(0)  # don't wait for pools that are still chewing an endless input


def workload_f(cs: list[Contender], args: argparse.Namespace) -> Table:
    first = 100 if args.smoke else 1000
    limit = 6.0 if args.smoke else F_LIMIT_S
    table = Table(
        f"F. imap over an endless generator: first {first} results",
        "s to first results / items pulled then / 1 s later / peak RSS growth MiB",
        "lower",
    )
    for c in cs:
        if c.imap is None:
            continue
        # A session of its own: on timeout, the child and whatever workers the
        # library left behind are killed together; the semaphores that a killed
        # peer can no longer unlink are removed after it.
        shm_before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
        child = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--f-child",
                c.name,
                str(args.workers),
                args.method,
                str(first),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        err = ""
        try:
            out, err = child.communicate(timeout=limit)
            r = json.loads(out.strip().splitlines()[-1])
            table.rows[c.name] = (
                f"{r['first']:.3f} / {r['then']:,} / {r['later']:,} / {r['rss_mib']:.0f}"
            )
        except subprocess.TimeoutExpired:
            table.rows[c.name] = f"no first result within {limit:.0f} s"
        except (IndexError, ValueError, KeyError):
            table.rows[c.name] = f"failed: {err.strip().splitlines()[-1:]}"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            time.sleep(0.2)
            if shm_before:
                for name in set(os.listdir("/dev/shm")) - shm_before:
                    if name.startswith(("sem.mp-", "sem.loky-")):
                        with contextlib.suppress(OSError):
                            os.unlink(os.path.join("/dev/shm", name))
    return table


def workload_g(cs: list[Contender], args: argparse.Namespace) -> Table:
    import numpy as np

    mib = 8 if args.smoke else 256
    array = np.ones(mib * 2**20 // 8)
    shared = parkit.SharedArray.copy_of(array)
    table = Table(f"G. handing a {mib} MiB array to a worker", "ms per task", "lower")
    ctx = multiprocessing.get_context(args.method)
    with parkit.Pool(1, context=args.method) as pool, ctx.Pool(1) as mp_pool:
        pool.submit(workloads.square, 1).result()
        mp_pool.apply(workloads.square, (1,))
        runs = {
            "parkit.SharedArray (a handle)": lambda: (
                timed(lambda: pool.submit(workloads.shape_of, shared).result()) * 1000
            ),
            "parkit, the ndarray pickled (out-of-band buffers)": lambda: (
                timed(lambda: pool.submit(workloads.shape_of, array).result()) * 1000
            ),
            "multiprocessing.Pool, the ndarray pickled": lambda: (
                timed(lambda: mp_pool.apply(workloads.shape_of, (array,))) * 1000
            ),
        }
        table.rows = interleaved(runs, args.repeat)
    shared.close()
    ratio = (
        table.rows["parkit, the ndarray pickled (out-of-band buffers)"]
        / table.rows["parkit.SharedArray (a handle)"]
    )
    table.notes.append(f"SharedArray is {ratio:.0f}x faster than pickling the same array.")
    return table


# ------------------------------------------------------- fresh interpreters

# IMPORT and D-cold time whole programs, each in a fresh interpreter that imports
# nothing but the library it measures (the suite's own parent holds NumPy and
# five peers, and under forkserver its main module reaches every worker). Each
# snippet prints the seconds its import took; the runner times the whole process
# from outside. Task functions come from cold.py, which imports nothing.

_BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

_IMPORT = """
import time
t = time.perf_counter()
import {module}
print(time.perf_counter() - t)
"""

_COLD = {
    "parkit.Pool": """
import time
t = time.perf_counter()
import parkit
imported = time.perf_counter() - t
pool = parkit.Pool(2, context={method!r})
assert pool.map(abs, [-3]) == [3]
pool.shutdown()
print(imported)
""",
    "multiprocessing.Pool": """
import time
t = time.perf_counter()
import multiprocessing
imported = time.perf_counter() - t
pool = multiprocessing.get_context({method!r}).Pool(2)
assert pool.map(abs, [-3]) == [3]
pool.close()
pool.join()
print(imported)
""",
    "parkit.run": """
import time
t = time.perf_counter()
import parkit
imported = time.perf_counter() - t
import cold
assert parkit.run(cold.square, 3, context={method!r}) == 9
print(imported)
""",
    "multiprocessing.Process + Pipe": """
import time
t = time.perf_counter()
import multiprocessing
imported = time.perf_counter() - t
import cold
ctx = multiprocessing.get_context({method!r})
reader, writer = ctx.Pipe(duplex=False)
child = ctx.Process(target=cold.reply, args=(writer, 3))
child.start()
writer.close()
assert reader.recv() == 9
child.join()
print(imported)
""",
    "floor: python -c pass": "print(0.0)",
}

# Each library in its own interpreter: under forkserver, a server started for
# one library would serve the other's workers too.
_FOOTPRINT = {
    "parkit": """
import json
import parkit
import cold
with parkit.Pool(1, context={method!r}) as pool:
    assert pool.map(abs, [-1, -2]) == [1, 2]
    print(json.dumps(pool.submit(cold.footprint, 0).result()))
""",
    "multiprocessing": """
import json
import multiprocessing
import cold
with multiprocessing.get_context({method!r}).Pool(1) as pool:
    assert pool.map(abs, [-1, -2]) == [1, 2]
    print(json.dumps(pool.apply(cold.footprint, (0,))))
""",
}


def byte_compile() -> None:
    """Write parkit's and ``cold.py``'s bytecode caches, as an install would.

    The stdlib's modules load from the ``.pyc`` files its installation wrote;
    an installed wheel's do too (pip compiles them). An editable install under
    ``PYTHONDONTWRITEBYTECODE=1`` (as in some CI and sandboxes) never writes
    them, so every fresh interpreter, and every spawn or forkserver worker,
    would compile parkit's sources again (~50 ms on 2 cores): a cost of the
    checkout, not of the library. ``compileall`` writes them whatever that
    variable says; an up-to-date cache is left alone.
    """
    compileall.compile_dir(os.path.dirname(parkit.__file__), quiet=1)
    compileall.compile_file(os.path.join(_BENCH_DIR, "cold.py"), quiet=1)


def fresh(code: str) -> tuple[float, str]:
    """Run ``code`` in a fresh interpreter: (wall seconds, its stdout)."""
    path = [_BENCH_DIR, *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"fresh interpreter failed: {done.stderr.strip()[-2000:]}")
    return wall, done.stdout


def interleaved_fresh(
    snippets: dict[str, str], repeat: int, warmup: bool = True
) -> dict[str, tuple[float, float]]:
    """(whole-process ms, import ms) per snippet: medians, interleaved, after a warm-up.

    Each round runs the snippets in its own shuffled order (a fixed seed): a
    forkserver or a resource tracker that a snippet started exits after it, while
    the next snippet starts, and with a fixed order one contender would always
    start beside the same one's leftovers (parkit.run after multiprocessing.Pool,
    parkit.Pool after the bare interpreter).
    """
    byte_compile()
    walls: dict[str, list[float]] = {name: [] for name in snippets}
    imports: dict[str, list[float]] = {name: [] for name in snippets}
    order = random.Random(0)
    for rnd in range(repeat + warmup):
        names = list(snippets)
        order.shuffle(names)
        for name in names:
            code = snippets[name]
            wall, out = fresh(code)
            if rnd or not warmup:  # round 0 warms the disk cache and the machine
                walls[name].append(wall * 1000)
                imports[name].append(float(out.strip().splitlines()[-1]) * 1000)
    return {
        name: (statistics.median(walls[name]), statistics.median(imports[name]))
        for name in snippets
    }


def workload_import(cs: list[Contender], args: argparse.Namespace) -> list[Table]:
    del cs  # fresh interpreters only
    repeat = 3 if args.smoke else max(15, 3 * args.repeat)
    table = Table(
        "IMPORT. the import alone, in fresh interpreters", "import ms / whole process ms", "lower"
    )
    snippets = {f"import {m}": _IMPORT.format(module=m) for m in ("parkit", "multiprocessing")}
    snippets["floor: python -c pass"] = "print(0.0)"
    figures = interleaved_fresh(snippets, repeat, warmup=not args.smoke)
    for name, (wall, imported) in figures.items():
        table.rows[name] = f"{imported:.2f} / {wall:.1f}"
    ratio = figures["import parkit"][1] / figures["import multiprocessing"][1]
    table.rows["ratio parkit / multiprocessing (import)"] = f"{ratio:.2f}x"
    table.notes.append(
        f"Median of {repeat} interleaved runs; the import is timed inside the interpreter "
        "around the import statement, the whole process from outside. parkit's names "
        "load on first use: the cost of using them is in D-cold."
    )
    tables = [table]
    footprint = Table(
        "IMPORT-W. a pool worker that ran abs: what it loaded",
        "modules / private MiB (parkit, multiprocessing.Pool, ratio)",
        "lower",
    )
    runs = 1 if args.smoke else 3
    for method in args.methods:
        if method == "fork":
            continue  # a forked worker inherits the parent's modules: nothing to compare
        samples = [
            [json.loads(fresh(code.format(method=method))[1]) for code in _FOOTPRINT.values()]
            for _ in range(runs)
        ]
        (mods, kib), (mp_mods, mp_kib) = (
            [statistics.median(s[i][k] for s in samples) for k in (0, 1)] for i in (0, 1)
        )
        footprint.rows[method] = (
            f"{mods:.0f} vs {mp_mods:.0f} ({mods / mp_mods:.2f}x) / "
            f"{kib / 1024:.1f} vs {mp_kib / 1024:.1f} ({kib / mp_kib:.2f}x)"
        )
    footprint.notes.append(
        "Private memory: Private_Clean + Private_Dirty of /proc/self/smaps_rollup in the "
        f"worker, median of {runs} fresh interpreters per start method."
    )
    tables.append(footprint)
    return tables


def workload_d_cold(cs: list[Contender], args: argparse.Namespace) -> list[Table]:
    del cs  # fresh interpreters only
    repeat = 1 if args.smoke else max(7, args.repeat)
    tables = []
    for method in args.methods:
        table = Table(
            f"D-cold. a fresh interpreter: import, start, one task, shut down ({method})",
            "whole process ms (import ms)",
            "lower",
        )
        figures = interleaved_fresh(
            {name: code.format(method=method) for name, code in _COLD.items()},
            repeat,
            warmup=not args.smoke,
        )
        for name, (wall, imported) in figures.items():
            table.rows[name] = f"{wall:.1f} ({imported:.1f})"
        pool = figures["parkit.Pool"][0] / figures["multiprocessing.Pool"][0]
        run = figures["parkit.run"][0] / figures["multiprocessing.Process + Pipe"][0]
        table.rows["ratio parkit.Pool / multiprocessing.Pool"] = f"{pool:.2f}x"
        table.rows["ratio parkit.run / Process + Pipe"] = f"{run:.2f}x"
        table.notes.append(
            f"Median of {repeat} interleaved runs; 2 pool workers, the task abs(-3); "
            "parkit.run and the bare pair run cold.square(3). The floor is the "
            "interpreter's own start and exit. parkit's bytecode cache is written "
            "first, as installing it would (the stdlib's is)."
        )
        tables.append(table)
    return tables


# ------------------------------------------------ queues, locks and pipes (Q, LOCK)

# Two processes of the suite's start method, each started and past a handshake
# before the clock runs (the child's start is not measured), the parent on one
# side. Children are in ipc.py. A queue's figure is items the consumer got per
# second over the whole transfer, from the producers' go to the last get:
# multiprocessing.Queue.put returns before its feeder thread has written the
# item, so what put() alone costs says nothing.

_MIB_ITEM = b"x" * 2**20


def _q_queues(method: str) -> dict[str, Callable[[], Any]]:
    ctx = multiprocessing.get_context(method)
    return {
        "parkit.Queue": lambda: parkit.Queue(context=method),
        "multiprocessing.Queue": ctx.Queue,
    }


def _q_transfer(q: Any, method: str, producers: int, count: int, item: Any) -> float:
    """Items per second from ``producers`` child processes to this one."""
    ctx = multiprocessing.get_context(method)
    ends, procs = [], []
    for _ in range(producers):
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=ipc.producer, args=(q, theirs, count // producers, item))
        proc.start()
        theirs.close()
        ends.append(mine)
        procs.append(proc)
    for end in ends:
        end.recv()  # the child is up and holds the queue
    get = q.get
    total = count // producers * producers
    t0 = time.perf_counter()
    for end in ends:
        end.send(None)
    for _ in range(total):
        get()
    elapsed = time.perf_counter() - t0
    for proc in procs:
        proc.join()
    for end in ends:
        end.close()
    return total / elapsed


def workload_q(cs: list[Contender], args: argparse.Namespace) -> list[Table]:
    del cs  # queues, not pools
    small = 2_000 if args.smoke else 200_000
    big = 4 if args.smoke else 200
    tables = []
    for label, count, item in (
        (f"{small:,} ints", small, 12345),
        (f"{big} items of 1 MiB (bytes)", big, _MIB_ITEM),
    ):
        for producers in (1, 2):
            table = Table(
                f"Q. Queue throughput, {label}, {producers} producer(s) to 1 consumer "
                f"({args.method})",
                "items/s",
                "higher",
            )
            queues = {name: make() for name, make in _q_queues(args.method).items()}
            table.rows = interleaved(
                {
                    name: (
                        lambda q=q, p=producers, n=count, x=item: _q_transfer(
                            q, args.method, p, n, x
                        )
                    )
                    for name, q in queues.items()
                },
                args.repeat,
                warmup=not args.smoke,
            )
            ratio = table.rows["parkit.Queue"] / table.rows["multiprocessing.Queue"]
            table.rows["ratio parkit / multiprocessing (higher is better)"] = f"{ratio:.2f}x"
            table.notes.append(
                "Items the consumer (the parent) got per second, from the producers' go to "
                "the last get; the producers were started and up before the clock."
            )
            for q in queues.values():
                q.close()
            tables.append(table)
    return tables


def _handshake(method: str, target: Callable[..., None], *objects: Any, rounds: int) -> Any:
    ctx = multiprocessing.get_context(method)
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*objects, theirs, rounds))
    proc.start()
    theirs.close()
    mine.send(None)
    return proc, mine


def _hand_off(method: str, ping: Any, pong: Any, rounds: int) -> float:
    """µs per round trip: release ``ping`` to the child, take ``pong`` back."""
    proc, go = _handshake(method, ipc.ping_pong, ping, pong, rounds=rounds)
    release, acquire = ping.release, pong.acquire
    release()  # the first round trip: the child is up
    acquire()
    t0 = time.perf_counter()
    for _ in range(rounds - 1):
        release()
        acquire()
    elapsed = time.perf_counter() - t0
    proc.join()
    go.close()
    return elapsed / (rounds - 1) * 1e6


def _pipe_round_trip(method: str, pipe: Callable[[], Any], rounds: int) -> float:
    ctx = multiprocessing.get_context(method)
    mine, theirs = pipe()
    proc = ctx.Process(target=ipc.echo_pipe, args=(theirs, rounds))
    proc.start()
    theirs.close()
    send, recv = mine.send, mine.recv
    send(0)  # the first round trip: the child is up
    recv()
    t0 = time.perf_counter()
    for i in range(rounds - 1):
        send(i)
        recv()
    elapsed = time.perf_counter() - t0
    proc.join()
    mine.close()
    return elapsed / (rounds - 1) * 1e6


def workload_lock(cs: list[Contender], args: argparse.Namespace) -> Table:
    del cs  # locks, not pools
    rounds = 200 if args.smoke else 20_000
    method = args.method
    ctx = multiprocessing.get_context(method)
    table = Table(
        f"LOCK. hand-off round trip between two processes, {rounds:,} rounds ({method})",
        "µs per round trip",
        "lower",
    )

    def taken(make: Callable[[], Any]) -> Any:
        # A lock both sides hand to each other: created held (any process may
        # release a Lock, in parkit as in multiprocessing).
        lock = make()
        lock.acquire()
        return lock

    pairs = {
        "parkit.Lock": lambda: taken(lambda: parkit.Lock(context=method)),
        "multiprocessing.Lock": lambda: taken(ctx.Lock),
        "parkit.Semaphore": lambda: parkit.Semaphore(0, context=method),
        "multiprocessing.Semaphore": lambda: ctx.Semaphore(0),
    }
    objects = {name: (make(), make()) for name, make in pairs.items()}
    runs: dict[str, Callable[[], float]] = {
        name: (lambda p=p: _hand_off(method, p[0], p[1], rounds)) for name, p in objects.items()
    }
    runs["parkit.Pipe"] = lambda: _pipe_round_trip(
        method, lambda: parkit.Pipe(context=method), rounds
    )
    runs["multiprocessing.Pipe"] = lambda: _pipe_round_trip(method, ctx.Pipe, rounds)
    table.rows = interleaved(runs, args.repeat, warmup=not args.smoke)
    for what in ("Lock", "Semaphore", "Pipe"):
        ratio = table.rows[f"parkit.{what}"] / table.rows[f"multiprocessing.{what}"]
        table.rows[f"ratio parkit / multiprocessing, {what} (lower is better)"] = f"{ratio:.2f}x"
    table.notes.append(
        "Lock and Semaphore: the parent releases one object to the child and takes another "
        "back from it (acquire()/release(), the objects created held). Pipe: send an int, "
        "receive it echoed. The child is up before the clock (one untimed round trip)."
    )
    return table


# ------------------------------------------------ the portable paths (PORT)

# parkit's capability probe is read once, at import: each figure comes from an
# interpreter of its own (portable.py), with PARKIT_FORCE_PORTABLE=1 (macOS's
# answers: shm_open segments, a flock guard, the futex's poll fallback) or
# without it (Linux's fast path: futex, robust mutex, /dev/shm files).

_FORCE_ENV = "PARKIT_FORCE_PORTABLE"


def _portable_figure(kind: str, library: str, count: int, method: str, forced: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != _FORCE_ENV}
    if forced:
        env[_FORCE_ENV] = "1"
    done = subprocess.run(
        [
            sys.executable,
            os.path.join(_BENCH_DIR, "portable.py"),
            kind,
            library,
            str(count),
            method,
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"portable.py failed: {done.stderr.strip()[-2000:]}")
    return float(done.stdout.split()[-1])


def workload_port(cs: list[Contender], args: argparse.Namespace) -> Table:
    """parkit's portable paths (as on macOS) beside its Linux fast path and the stdlib."""
    del cs  # locks and queues, not pools
    hand_offs = 200 if args.smoke else 10_000
    items = 2_000 if args.smoke else 100_000
    method = args.method
    table = Table(
        f"PORT. {hand_offs:,} lock hand-offs between two processes; {items:,} small items "
        f"through a Queue, one producer to the parent ({method})",
        "ms",
        "lower",
    )
    runs: dict[str, Callable[[], float]] = {}
    for kind, count, stdlib in (
        ("lock", hand_offs, "multiprocessing.Lock"),
        ("queue", items, "multiprocessing.Queue"),
    ):
        what = "Lock" if kind == "lock" else "Queue"
        runs[f"parkit.{what}, Linux fast path"] = lambda k=kind, n=count: _portable_figure(
            k, "parkit", n, method, forced=False
        )
        runs[f"parkit.{what}, probes forced portable"] = lambda k=kind, n=count: _portable_figure(
            k, "parkit", n, method, forced=True
        )
        runs[stdlib] = lambda k=kind, n=count: _portable_figure(
            k, "multiprocessing", n, method, forced=False
        )
    table.rows = interleaved(runs, args.repeat, warmup=not args.smoke)
    for what in ("Lock", "Queue"):
        fast = table.rows[f"parkit.{what}, Linux fast path"]
        portable = table.rows[f"parkit.{what}, probes forced portable"]
        stdlib = table.rows[f"multiprocessing.{what}"]
        table.rows[f"ratio portable / fast path, {what} (target <= 2x)"] = f"{portable / fast:.2f}x"
        table.rows[f"ratio portable / multiprocessing, {what}"] = f"{portable / stdlib:.2f}x"
    table.notes.append(
        "Each figure in a fresh interpreter (benchmarks/portable.py): the probe is read "
        "at import. 'Forced portable' is PARKIT_FORCE_PORTABLE=1, the answers macOS gives "
        "(shm_open segments, a flock guard, the futex's poll fallback), run on this Linux "
        "machine. The child is up before the clock; a hand-off is one release taken by "
        "the other process (a round trip is two)."
    )
    return table


def workload_dask(cs: list[Contender], args: argparse.Namespace) -> list[Table]:
    """parkit's Dask backend on a 2-worker LocalCluster, beside plain ``client.map``."""
    del cs
    if not _have("distributed"):
        return [Table("DASK. skipped: distributed is not installed", "-", "-")]
    import distributed

    from parkit._backends._dask import DaskBackend

    n = 1_000 if args.smoke else 10_000
    tasks, target = (4, 0.01) if args.smoke else (32, 0.04)
    chunks = 20
    trivial = Table(
        f"DASK-a. x*x over {n:,} ints on a 2-worker LocalCluster (1 thread each)",
        "ms per call",
        "lower",
    )
    cpu = Table(
        f"DASK-b. {tasks} tasks of ~{target * 1000:.0f} ms pure-Python CPU, 2 workers",
        "parallel efficiency %",
        "higher",
    )
    items = list(range(n))
    step = -(-n // chunks)
    pieces = [items[i : i + step] for i in range(0, n, step)]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
        parkit.Pool(backend=DaskBackend(client)) as on_dask,
        parkit.Pool(2, context=args.method) as on_processes,
    ):
        client.wait_for_workers(2)

        def hand_batched() -> list[int]:
            parts = client.gather(client.map(workloads.square_chunk, pieces, pure=False))
            return [y for part in parts for y in part]

        def unbatched() -> list[int]:
            return list(client.gather(client.map(workloads.square, items, pure=False)))

        want = [x * x for x in items]
        assert on_dask.map(workloads.square, items) == want == hand_batched() == unbatched()
        trivial.rows = interleaved(
            {
                "parkit backend=Dask": lambda: (
                    1e3 * timed(lambda: on_dask.map(workloads.square, items))
                ),
                f"client.map over {chunks} hand-made chunks": lambda: 1e3 * timed(hand_batched),
                "client.map, one task per item": lambda: 1e3 * timed(unbatched),
            },
            args.repeat,
        )
        rows = list(trivial.rows.values())
        trivial.notes.append(
            f"parkit / hand-batched: {rows[0] / rows[1]:.2f}x (target <= 1.2x); "
            f"unbatched / parkit: {rows[2] / rows[0]:.1f}x (target >= 5x)."
        )

        iterations = calibrate_spin(target)
        spins = [iterations] * tasks

        def efficiency(run: Callable[[], object]) -> float:
            # Paired with a serial run just before it, as in workload B (CPU drift).
            reference = timed(lambda: [workloads.spin(i) for i in spins])
            wall = timed(run)
            return float(100 * reference / (wall * 2))

        def plain_client() -> list[int]:
            return list(client.gather(client.map(workloads.spin, spins, pure=False)))

        cpu.rows = interleaved(
            {
                "parkit backend=Dask": lambda: efficiency(
                    lambda: on_dask.map(workloads.spin, spins)
                ),
                f"parkit backend=process ({args.method})": lambda: efficiency(
                    lambda: on_processes.map(workloads.spin, spins)
                ),
                # What the cluster itself allows: every task submitted at once.
                "client.map, one task per item (the cluster's own)": lambda: efficiency(
                    plain_client
                ),
            },
            args.repeat,
        )
        effs = list(cpu.rows.values())
        cpu.notes.append(
            f"Dask / process: {100 * effs[0] / effs[1]:.0f}% (target >= 90%); "
            f"parkit on Dask / plain client.map: {100 * effs[0] / effs[2]:.0f}%. "
            "efficiency = serial / (wall x 2 workers)."
        )
    return [trivial, cpu]


# ------------------------------------------------------ shared values (VALUE)


def _count_up(method: str, counter: Any, total: int, parkit_way: bool) -> float:
    """ms for two processes to add ``total`` ones to ``counter`` between them."""
    ctx = multiprocessing.get_context(method)
    pipes = [ctx.Pipe() for _ in range(2)]
    procs = [
        ctx.Process(target=ipc.count_up, args=(counter, theirs, theirs, total // 2, parkit_way))
        for _, theirs in pipes
    ]
    for proc in procs:
        proc.start()
    for mine, _ in pipes:
        mine.recv()  # up, with the counter
    t0 = time.perf_counter()
    for mine, _ in pipes:
        mine.send(None)
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - t0
    for mine, theirs in pipes:
        mine.close()
        theirs.close()
    return elapsed * 1e3


def workload_value(cs: list[Contender], args: argparse.Namespace) -> Table:
    del cs  # values, not pools
    total = 2_000 if args.smoke else 100_000
    method = args.method
    ctx = multiprocessing.get_context(method)
    table = Table(
        f"VALUE. {total:,} race-free increments of a shared counter from 2 processes ({method})",
        "ms",
        "lower",
    )
    ours = parkit.Value(int, 0, context=method)
    theirs = ctx.Value("q", 0)
    runs = {
        "parkit.Value.add(1)": lambda: _count_up(method, ours, total, True),
        "multiprocessing.Value, with get_lock(): value += 1": lambda: _count_up(
            method, theirs, total, False
        ),
    }
    table.rows = interleaved(runs, args.repeat, warmup=not args.smoke)
    names = list(runs)
    ratio = table.rows[names[0]] / table.rows[names[1]]
    table.rows["ratio parkit / multiprocessing (lower is better)"] = f"{ratio:.2f}x"
    table.notes.append(
        "Both processes are up and past a handshake before the clock, which runs from "
        "their go to the last one's exit. Each adds total/2 ones."
    )
    return table


# ------------------------------------------------------------- managers (MGR)


def _dict_round_trips(d: Any, rounds: int) -> float:
    t0 = time.perf_counter()
    for i in range(rounds):
        d[i] = i
        d[i]
    return (time.perf_counter() - t0) / rounds * 1e6


def workload_mgr(cs: list[Contender], args: argparse.Namespace) -> Table:
    del cs  # managers, not pools
    rounds = 200 if args.smoke else 10_000
    method = args.method
    table = Table(
        f"MGR. manager dict set + get from the parent, {rounds:,} rounds ({method})",
        "µs per set + get",
        "lower",
    )
    ctx = multiprocessing.get_context(method)
    with parkit.Manager(method) as pm, ctx.Manager() as sm:
        dicts = {"parkit.Manager": pm.dict(), "multiprocessing.Manager": sm.dict()}
        runs = {name: (lambda d=d: _dict_round_trips(d, rounds)) for name, d in dicts.items()}
        table.rows = interleaved(runs, args.repeat, warmup=not args.smoke)
    ratio = table.rows["parkit.Manager"] / table.rows["multiprocessing.Manager"]
    table.rows["ratio parkit / multiprocessing (lower is better)"] = f"{ratio:.2f}x"
    table.notes.append(
        "Each round: d[i] = i, then d[i], through a dict proxy of a manager started with "
        "the suite's start method; both managers run side by side, interleaved."
    )
    return table


WORKLOADS: dict[str, Callable[[list[Contender], argparse.Namespace], Table | list[Table]]] = {
    "A": workload_a,
    "B": workload_b,
    "C": workload_c,
    "D": workload_d,
    "E": workload_e,
    "F": workload_f,
    "G": workload_g,
    "IMPORT": workload_import,
    "D-COLD": workload_d_cold,
    # queues, locks and pipes
    "Q": workload_q,
    "LOCK": workload_lock,
    # the same locks and queues on their portable paths (as on macOS)
    "PORT": workload_port,
    # the same calls on a Dask cluster
    "DASK": workload_dask,
    # shared state
    "VALUE": workload_value,
    "MGR": workload_mgr,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help="workloads, e.g. A,C,E or IMPORT,D-cold"
    )
    parser.add_argument("--workers", type=int, default=usable_cpus())
    parser.add_argument("--method", default="forkserver", help="start method for A-C, E, F")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="smallest sizes, one repetition")
    parser.add_argument("--out", default=None, help="also write the markdown here")
    parser.add_argument(
        "--plots", default=None, help="then draw the figures of --out into this folder (plots.py)"
    )
    parser.add_argument("--f-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plots and not args.out:
        parser.error("--plots draws from the record: give --out too")
    if args.f_child:
        name, workers, method, first = args.f_child
        f_child(name, int(workers), method, int(first))
        return 0
    if args.smoke:
        args.repeat = 1
    args.methods = [
        m for m in ("forkserver", "spawn", "fork") if m in multiprocessing.get_all_start_methods()
    ]
    cs = contenders()
    started = time.monotonic()
    header = [
        f"## Benchmarks, {datetime.date.today().isoformat()}",
        "",
        f"{os.cpu_count()} CPUs on the machine, {usable_cpus()} usable, {args.workers} workers; "
        f"{platform.platform()}; median of {args.repeat} interleaved runs after a warm-up.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        "",
    ]
    print("\n".join(header), flush=True)
    parts = list(header)
    for key in args.only.split(","):
        result = WORKLOADS[key.strip().upper()](cs, args)
        for table in result if isinstance(result, list) else [result]:
            print(table.markdown() + "\n", flush=True)
            parts.append(table.markdown() + "\n")
    parts.append(f"(whole run: {time.monotonic() - started:.0f} s)")
    print(parts[-1])
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(parts) + "\n")
    if args.plots:
        import pathlib

        import plots

        for path in plots.draw(pathlib.Path(args.out), pathlib.Path(args.plots)):
            print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
