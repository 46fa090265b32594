"""The fault matrix: every fault by entry point, and what parkit does about it.

This table is the source of truth: ``test_matrix.py`` runs every cell of it
(under each start method, or a sample of them, see ``methods_for``) and
``docs/reliability.md`` is checked against :func:`markdown_table` by
``test_docs.py``. A cell is an :class:`Expect` (the outcome and its bound) or a
:class:`NotApplicable` with the reason.

Outcomes are those of SPEC §3; the stdlib column quotes FAULTS.md.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import hostile
import parkit
from conftest import METHODS


@dataclass(frozen=True)
class Fault:
    """A fault, injected by running ``action`` as one item (see fault_tasks.act)."""

    name: str
    what: str
    action: tuple[str, tuple[Any, ...]] | None
    stdlib: str


@dataclass(frozen=True)
class Expect:
    """What the parent sees for the faulty item.

    ``kind`` None means the item's correct value. ``attrs`` are checked exactly;
    ``bound_s`` is from the call to its outcome (a generous bound on a loaded machine:
    no speed claim, a hang detector).
    """

    kind: type[BaseException] | None
    attrs: dict[str, Any] = field(default_factory=dict)
    bound_s: float = 10.0
    usable_after: bool = True

    def describe(self) -> str:
        name = "the correct value" if self.kind is None else f"`{self.kind.__name__}`"
        attrs = ", ".join(f"{k}={_show(v)}" for k, v in self.attrs.items())
        return f"{name}({attrs})" if attrs else name


@dataclass(frozen=True)
class NotApplicable:
    reason: str


Cell = Expect | NotApplicable


def _show(value: Any) -> str:
    if isinstance(value, signal.Signals):
        return value.name
    if isinstance(value, type):
        return value.__name__
    return repr(value)


#: A per-item timeout short enough for the suite, long enough for a loaded machine.
TIMEOUT_S = 1.0

FAULTS: dict[str, Fault] = {
    f.name: f
    for f in [
        Fault(
            "sigkill",
            "worker SIGKILLed (the OOM killer)",
            ("sigkill_self", ()),
            "Pool hangs (F01); PPE: every future BrokenProcessPool (F23)",
        ),
        Fault(
            "sigterm",
            "worker SIGTERMed",
            ("sigterm_self", ()),
            "Pool hangs (F01); PPE: BrokenProcessPool (F23)",
        ),
        Fault(
            "sigsegv",
            "segfault in native code",
            ("segfault", ()),
            "Pool hangs (F01); PPE: BrokenProcessPool (F23)",
        ),
        Fault(
            "os_exit",
            "`os._exit(3)`",
            ("os_exit", (3,)),
            "Pool hangs (F01); PPE: BrokenProcessPool (F23)",
        ),
        Fault(
            "sys_exit",
            "`sys.exit(3)`",
            ("sys_exit", (3,)),
            "Pool hangs (F02); Process: exitcode 3, exception lost (F22)",
        ),
        Fault(
            "base_exception",
            "a `BaseException` subclass raised",
            ("raise_base_exception", ()),
            "Pool hangs (F02)",
        ),
        Fault(
            "memory_limit",
            "allocation past `RLIMIT_AS`",
            ("exceed_memory_limit", ()),
            "MemoryError re-raised",
        ),
        Fault(
            "hang",
            f"item sleeps for ever (timeout={TIMEOUT_S:g})",
            ("sleep_forever", ()),
            "no per-item timeout: waits for ever",
        ),
        Fault(
            "unpicklable_argument",
            "argument can't be pickled",
            ("identity", ("LOCK",)),
            "PPE: TypeError; Pool.map raises at submit (F29)",
        ),
        Fault(
            "argument_fails_to_unpickle",
            "argument fails to unpickle in the worker",
            ("identity", (hostile.ErrorAtUnpickle(),)),
            "Pool hangs; PPE: BrokenProcessPool (F30)",
        ),
        Fault(
            "unpicklable_result",
            "result can't be pickled",
            ("return_unpicklable", ()),
            "Pool: MaybeEncodingError; PPE: TypeError (F05)",
        ),
        Fault(
            "result_too_deep",
            "result nested deeper than the recursion limit",
            ("return_deep", ()),
            "Pool hangs; PPE: RecursionError (F34)",
        ),
        Fault(
            "unpicklable_exception",
            "exception can't be pickled",
            ("raise_unpicklable_attr", ()),
            "Pool hangs (F03); PPE: BrokenProcessPool (F04)",
        ),
        Fault(
            "exception_fails_to_unpickle",
            "exception can't be rebuilt in the parent",
            ("raise_custom_init", ()),
            "Pool hangs (F03); PPE: BrokenProcessPool (F04)",
        ),
        Fault("big_result", "a 300 MB result", ("return_bytes", (300 << 20,)), "works (F39)"),
    ]
}

#: Entry points that run items; each runs one fault among ordinary items where it can.
ENTRIES = (
    "map",
    "imap",
    "starmap",
    "Pool.submit",
    "ProcessPoolExecutor",
    "run",
    "Process",
    "thread backend",
)

#: The Dask backend's entry in SCENARIOS (any call with ``backend="dask"``).
DASK = "dask backend"

#: Entries that run several items in one call: the others' values are checked too.
BATCH_ENTRIES = ("map", "imap", "starmap", "thread backend")

_CRASHES = {
    "sigkill": (-signal.SIGKILL, signal.SIGKILL),
    "sigterm": (-signal.SIGTERM, signal.SIGTERM),
    "sigsegv": (-signal.SIGSEGV, signal.SIGSEGV),
    "os_exit": (3, None),
}

_INHERITED = {"unpicklable_argument": "pickle", "argument_fails_to_unpickle": "unpickle"}
_IN_THREAD = NotApplicable("would end the test process itself: threads share it")
_NO_PICKLE = Expect(None)  # the thread backend does not pickle: the item just works


def expected(fault: str, entry: str, method: str = "forkserver") -> Cell:
    """The documented outcome of ``fault`` at ``entry`` under start method ``method``."""
    if entry in ("Process", "run") and method == "fork" and fault in _INHERITED:
        # fork hands a Process (and run) its arguments by inheritance, unpickled: the object
        # comes back as the result and meets its fault there.
        return Expect(
            parkit.SerializationError,
            {"direction": "result", "stage": _INHERITED[fault], "item_index": None},
        )
    batch = entry in BATCH_ENTRIES or entry in ("Pool.submit", "ProcessPoolExecutor")
    index: dict[str, Any] = (
        {"item_index": 0 if entry in ("Pool.submit", "ProcessPoolExecutor") else BAD}
        if batch
        else {"item_index": None}
    )
    if fault in _CRASHES:
        if entry == "thread backend":
            return _IN_THREAD
        exitcode, sig = _CRASHES[fault]
        return Expect(parkit.WorkerCrashed, {"exitcode": exitcode, "signal": sig, **index})
    if fault == "sys_exit":
        return Expect(SystemExit, {"code": 3})
    if fault == "base_exception":
        return Expect(hostile.MyBaseException)
    if fault == "memory_limit":
        if entry == "thread backend":
            return NotApplicable("the limit is per process: it would fail the test process")
        return Expect(MemoryError)
    if fault == "hang":
        if entry == "ProcessPoolExecutor":
            return NotApplicable(
                "the stdlib contract has no per-task timeout: "
                "`future.result(timeout)` raises TimeoutError, the task runs on"
            )
        if entry in ("Process", "Pool.submit"):
            if entry == "Process":
                # result(timeout) keeps the stdlib meaning: the child runs on.
                return Expect(TimeoutError, usable_after=False)
            return Expect(parkit.TaskTimeout, {"timeout": TIMEOUT_S, **index})
        return Expect(parkit.TaskTimeout, {"timeout": TIMEOUT_S, **index})
    if fault in ("unpicklable_argument", "argument_fails_to_unpickle"):
        if entry == "thread backend":
            return _NO_PICKLE
        stage = "pickle" if fault == "unpicklable_argument" else "unpickle"
        return Expect(parkit.SerializationError, {"direction": "argument", "stage": stage, **index})
    if fault in ("unpicklable_result", "result_too_deep"):
        if entry == "thread backend":
            return _NO_PICKLE
        return Expect(
            parkit.SerializationError, {"direction": "result", "stage": "pickle", **index}
        )
    if fault in ("unpicklable_exception", "exception_fails_to_unpickle"):
        if entry == "thread backend":
            return Expect(
                hostile.UnpicklableAttrError
                if fault == "unpicklable_exception"
                else hostile.CustomInitError
            )
        name = (
            "hostile.UnpicklableAttrError"
            if fault == "unpicklable_exception"
            else "hostile.CustomInitError"
        )
        return Expect(parkit.RemoteError, {"type_name": name})
    if fault == "big_result":
        if entry not in ("map", "run", "thread backend"):
            return NotApplicable(
                "one path per transport: map (batches) and run (one call) "
                "cover it; 300 MB per cell is CI time"
            )
        return Expect(None, bound_s=60.0)
    raise KeyError((fault, entry))


#: Where the fault item sits in a batch call: mid-batch with CHUNK items a batch.
N_ITEMS = 8
BAD = 3
CHUNK = 2

# --------------------------------------------------------------- other entry points


@dataclass(frozen=True)
class Scenario:
    """A fault met by an object rather than by a task (run by test_matrix.py)."""

    fault: str
    entry: str
    what: str
    expect: Cell
    stdlib: str
    #: A test elsewhere in the suite that runs this cell already, in a subprocess.
    covered_by: str = ""


SCENARIOS: list[Scenario] = [
    Scenario(
        "initializer_fails",
        "Pool",
        "the initializer raises",
        Expect(parkit.PoolBroken, {"cause": ValueError}, usable_after=False),
        "Pool: endless respawn, hangs (F06)",
    ),
    Scenario(
        "initializer_fails",
        "ProcessPoolExecutor",
        "the initializer raises",
        Expect(parkit.PoolBroken, {"cause": ValueError}, usable_after=False),
        "BrokenProcessPool without the cause (F06)",
    ),
    Scenario(
        "producer_killed_mid_message",
        "Queue",
        "producer SIGKILLed half-way through put",
        Expect(__import__("queue").Empty, {}, bound_s=TIMEOUT_S + 2),
        "get(timeout) hangs on the truncated frame (F40)",
    ),
    Scenario(
        "producer_killed_mid_message",
        "Pipe",
        "writer SIGKILLed mid-frame",
        Expect(EOFError, {}, bound_s=TIMEOUT_S + 2),
        "recv hangs (F26, F40)",
    ),
    Scenario(
        "holder_killed",
        "Lock",
        "holder SIGKILLed while holding it",
        Expect(parkit.LockAbandoned, {}, bound_s=5.0),
        "acquire() hangs for ever (F25)",
    ),
    Scenario(
        "holder_killed",
        "Value",
        "holder of `.lock` SIGKILLed while holding it",
        Expect(parkit.LockAbandoned, {}, bound_s=5.0),
        "acquire() hangs for ever (F25)",
    ),
    Scenario(
        "worker_crash",
        "SharedArray",
        "a worker using it dies (os._exit)",
        Expect(parkit.WorkerCrashed, {"exitcode": 7}),
        "segment leaked or unlinked by the wrong process (F13-F15)",
    ),
    Scenario(
        "shm_full",
        "SharedArray",
        "/dev/shm full (1 MiB tmpfs)",
        Expect(OSError, {"errno": 28}),
        "SIGBUS when a page is first written",
    ),
    Scenario(
        "shm_full",
        "Value",
        "/dev/shm full (1 MiB tmpfs)",
        Expect(OSError, {"errno": 28}),
        "SIGBUS when a page is first written",
    ),
    Scenario(
        "shm_full",
        "map",
        "/dev/shm full, NumPy arguments",
        Expect(None),
        "n/a (stdlib pickles in-band)",
    ),
    Scenario(
        "ctrl_c_group",
        "map",
        "SIGINT to the whole process group",
        Expect(KeyboardInterrupt, {"tracebacks": 1}, bound_s=1.5),
        "Pool: 1-3 worker tracebacks; PPE waits for running tasks (F09)",
        "test_pool_signals.py::test_ctrl_c_stops_the_call_and_leaves_nothing",
    ),
    Scenario(
        "ctrl_c_parent",
        "ProcessPoolExecutor",
        "SIGINT to the parent alone",
        Expect(KeyboardInterrupt, {"tracebacks": 1}, bound_s=1.5),
        "PPE waits for running and queued tasks (F09)",
        "test_pool_signals.py::test_ctrl_c_to_the_parent_alone_leaves_the_executor_block",
    ),
    Scenario(
        "parent_sigkilled",
        "Pool",
        "the parent SIGKILLed",
        Expect(None, {"survivors": 0}, bound_s=5.0),
        "workers orphaned (F31)",
        "test_pool_signals.py::test_workers_exit_when_the_parent_is_sigkilled",
    ),
    Scenario(
        "parent_sigkilled",
        "Process",
        "the parent SIGKILLed",
        Expect(None, {"survivors": 0}, bound_s=5.0),
        "children orphaned (F31)",
        "test_orphans.py::test_child_exits_when_parent_is_killed",
    ),
    Scenario(
        "parent_sigkilled",
        "Manager",
        "the parent SIGKILLed",
        Expect(None, {"survivors": 0}, bound_s=5.0),
        "server orphaned (F31)",
        "test_managers.py::test_server_exits_when_its_owner_is_killed",
    ),
    Scenario(
        "server_killed",
        "Manager",
        "the server process SIGKILLed while a proxy call waits in it",
        # Then every later call, and a new object, raise it too (their causes:
        # BrokenPipeError or ConnectionResetError, ConnectionRefusedError); the
        # owner's with block ends without a hang or a survivor.
        Expect(parkit.ManagerGone, {"cause": EOFError}, bound_s=5.0, usable_after=False),
        "no hang, but a different error each way: the waiting call EOFError, later calls "
        "BrokenPipeError or ConnectionResetError, a new object ConnectionRefusedError "
        "(measured on 3.11.7 and 3.13.0; not in FAULTS.md)",
    ),
    # The Dask backend (docs/dask.md), on the session's cluster (tests/conftest.py):
    # the faults that apply there and don't restart its workers run in one call
    # (errors="return", so each item's outcome is checked and the others' values);
    # a killed worker and a stuck item are test_dask.py's.
    *(
        Scenario(fault, DASK, FAULTS[fault].what, expect, FAULTS[fault].stdlib)
        for fault, expect in [
            ("sys_exit", Expect(SystemExit, {"code": 3})),
            (
                "unpicklable_argument",
                Expect(parkit.SerializationError, {"direction": "argument", "stage": "pickle"}),
            ),
            (
                "unpicklable_result",
                Expect(parkit.SerializationError, {"direction": "result", "stage": "pickle"}),
            ),
            (
                "exception_fails_to_unpickle",
                Expect(parkit.RemoteError, {"type_name": "hostile.CustomInitError"}),
            ),
        ]
    ),
    Scenario(
        "sigkill",
        DASK,
        "a Dask worker SIGKILLed by its item, each time it runs",
        # Dask retries the item on another worker (allowed-failures), then
        # gives up with KilledWorker (its __cause__); Dask's nannies restart
        # the workers. No pid: the scheduler does not say which process died.
        Expect(parkit.WorkerCrashed, {"pid": None, "exitcode": None}, bound_s=60.0),
        FAULTS["sigkill"].stdlib,
        "test_dask.py::test_a_worker_that_dies_is_worker_crashed_for_the_items_of_its_batch",
    ),
    Scenario(
        "hang",
        DASK,
        "an item outlasts its timeout (Dask can't stop it: it runs on)",
        Expect(parkit.TaskTimeout, bound_s=30.0),
        FAULTS["hang"].stdlib,
        "test_dask.py::test_a_timeout_is_reported_on_time_and_the_task_may_keep_running",
    ),
]

# ------------------------------------------------------------------ start methods


def full_matrix() -> bool:
    """Every cell under every start method: on Python 3.11, or PARKIT_FAULTS=full."""
    wanted = os.environ.get("PARKIT_FAULTS", "")
    if wanted:
        return wanted == "full"
    return sys.version_info[:2] == (3, 11)


def methods_for(key: str) -> list[str]:
    """Start methods a cell runs under: all, or one that rotates with the cell."""
    if full_matrix():
        return list(METHODS)
    # The sample: one method per cell, spread over the cells (stable across runs).
    return [METHODS[sum(map(ord, key)) % len(METHODS)]]


# ------------------------------------------------------------------------- the docs


def markdown_table() -> str:
    """The matrix as docs/reliability.md shows it (checked by test_docs.py).

    One row per fault and outcome, naming the entries that share it; ``item_index``
    is left out (the item's index for map/imap/starmap, 0 for a future, None for
    ``run`` and ``Process``).
    """
    lines = [
        "| fault | entry points | parkit | bound | multiprocessing / concurrent.futures |",
        "|---|---|---|---|---|",
    ]
    for fault in FAULTS.values():
        groups: dict[str, list[str]] = {}
        bounds: dict[str, str] = {}
        for entry in ENTRIES:
            cell = expected(fault.name, entry)
            if isinstance(cell, NotApplicable):
                text, bound = f"n/a: {cell.reason}", ""
            else:
                shown = Expect(
                    cell.kind,
                    {k: v for k, v in cell.attrs.items() if k != "item_index"},
                    cell.bound_s,
                )
                text, bound = shown.describe(), f"{cell.bound_s:g} s"
            groups.setdefault(text, []).append(entry)
            bounds[text] = bound
        for text, entries in groups.items():
            lines.append(
                f"| {fault.what} | {', '.join(entries)} | {text} | {bounds[text]} "
                f"| {fault.stdlib} |"
            )
    for s in SCENARIOS:
        cell = s.expect
        text = f"n/a: {cell.reason}" if isinstance(cell, NotApplicable) else cell.describe()
        bound = "" if isinstance(cell, NotApplicable) else f"{cell.bound_s:g} s"
        lines.append(f"| {s.what} | {s.entry} | {text} | {bound} | {s.stdlib} |")
    return "\n".join(lines) + "\n"
