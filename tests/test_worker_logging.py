"""Records logged in workers reach the parent's handlers (issue 15, SPEC §8)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import observe_tasks
import parkit
from observe_tasks import LOGGER
from parkit.errors import WorkerCrashed

FORMAT = "%(processName)s %(process)d %(levelname)s %(message)s"


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Captured:
    """The parent's configuration: ``LOGGER`` at INFO, a list and a file handler."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.list = _ListHandler()
        self.file = logging.FileHandler(path)
        self.file.setFormatter(logging.Formatter(FORMAT))

    @property
    def records(self) -> list[logging.LogRecord]:
        return self.list.records

    def lines(self) -> list[str]:
        self.file.flush()
        return sorted(self.path.read_text().splitlines())


@pytest.fixture
def captured(tmp_path: Path) -> Iterator[Captured]:
    logger = logging.getLogger(LOGGER)
    found = Captured(tmp_path / "parent.log")
    saved = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    # Not propagated to pytest's own capture on the root: the parent routes a
    # forwarded record as its logger says, and the workers must too.
    logger.propagate = False
    logger.addHandler(found.list)
    logger.addHandler(found.file)
    try:
        yield found
    finally:
        logger.removeHandler(found.list)
        logger.removeHandler(found.file)
        found.file.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _line(record: logging.LogRecord) -> str:
    return f"{record.processName} {record.process} {record.levelname} {record.getMessage()}"


def test_pool_records_reach_the_parent_once_with_the_workers_identity(
    context: str, captured: Captured
) -> None:
    with parkit.Pool(2, context=context) as pool:
        who = pool.map(observe_tasks.log_item, range(6), chunksize=1)
    records = sorted(captured.records, key=lambda r: r.args)  # type: ignore[arg-type,return-value]
    # DEBUG is below the parent's INFO: filtered in the worker, never sent.
    assert [r.getMessage() for r in records] == [f"item {i}" for i in range(6)]
    for i, record in enumerate(records):
        assert (record.process, record.processName) == who[i]
        assert str(record.processName).startswith("parkit-")
        assert record.process != os.getpid()
        assert (record.name, record.levelno, record.msg, record.args) == (
            LOGGER,
            logging.INFO,
            "item %d",
            (i,),
        )
    # Under fork the workers inherit the parent's FileHandler: had it stayed,
    # every line would be there twice.
    assert captured.lines() == sorted(f"{n} {p} INFO item {i}" for i, (p, n) in enumerate(who))


def test_debug_is_delivered_when_the_parent_is_at_debug(context: str, captured: Captured) -> None:
    logging.getLogger(LOGGER).setLevel(logging.DEBUG)
    with parkit.Pool(1, context=context) as pool:
        pool.map(observe_tasks.log_item, [7])
    assert [r.getMessage() for r in captured.records] == ["debug 7", "item 7"]


def test_record_logged_before_os_exit_in_a_pool_worker(context: str, captured: Captured) -> None:
    with parkit.Pool(1, context=context) as pool:
        future = pool.submit(observe_tasks.log_then_exit, 5)
        with pytest.raises(WorkerCrashed) as info:
            future.result(timeout=60)
    assert info.value.exitcode == 5
    assert [(r.levelname, r.getMessage()) for r in captured.records] == [
        ("WARNING", "about to exit with 5")
    ]
    assert captured.records[0].process == info.value.pid


def test_record_logged_before_os_exit_in_a_process(context: str, captured: Captured) -> None:
    process = parkit.Process(observe_tasks.log_then_exit, args=(4,), context=context)
    process.start()
    process.join(60)
    assert process.exitcode == 4
    assert [_line(r) for r in captured.records] == [
        f"{process.name} {process.pid} WARNING about to exit with 4"
    ]
    assert captured.lines() == [f"{process.name} {process.pid} WARNING about to exit with 4"]


def test_process_and_run_forward_records(context: str, captured: Captured) -> None:
    with parkit.Process(observe_tasks.log_item, args=(3,), context=context) as process:
        process.start()
        assert process.result(timeout=60) == (process.pid, process.name)
    pid, name = parkit.run(observe_tasks.log_item, 4, context=context)
    assert [_line(r) for r in captured.records] == [
        f"{process.name} {process.pid} INFO item 3",
        f"{name} {pid} INFO item 4",
    ]
    assert captured.lines() == sorted(_line(r) for r in captured.records)


def test_executor_forwards_records(context: str, captured: Captured) -> None:
    with parkit.ProcessPoolExecutor(1, mp_context=context) as ex:
        pid, name = ex.submit(observe_tasks.log_item, 8).result(timeout=60)
    assert [_line(r) for r in captured.records] == [f"{name} {pid} INFO item 8"]


def test_one_shot_map_forwards_records(captured: Captured) -> None:
    who = parkit.map(observe_tasks.log_item, [1, 2], workers=1)
    assert sorted(_line(r) for r in captured.records) == sorted(
        f"{n} {p} INFO item {i}" for i, (p, n) in zip([1, 2], who, strict=True)
    )


def test_records_from_the_users_threads(context: str, captured: Captured) -> None:
    with parkit.Pool(1, context=context) as pool:
        assert pool.map(observe_tasks.log_from_thread, range(20)) == list(range(20))
    assert sorted(r.getMessage() for r in captured.records) == sorted(
        [f"from a thread {i}" for i in range(20)] + [f"from the task {i}" for i in range(20)]
    )


def test_unpicklable_argument_is_delivered_formatted(context: str, captured: Captured) -> None:
    with parkit.Pool(1, context=context) as pool:
        message = pool.submit(observe_tasks.log_unpicklable).result(timeout=60)
    process = parkit.Process(observe_tasks.log_unpicklable, context=context)
    process.start()
    assert process.result(timeout=60).startswith("holding <unlocked _thread.lock object at ")
    process.join(60)
    assert message.startswith("holding <unlocked _thread.lock object at ")
    assert len(captured.records) == 2
    record = captured.records[0]
    assert (record.msg, record.args, record.getMessage()) == (message, None, message)
    assert str(captured.records[1].getMessage()).startswith("holding <unlocked _thread.lock")


def test_exception_info_travels_as_text(context: str, captured: Captured) -> None:
    with parkit.Pool(1, context=context) as pool:
        pool.submit(observe_tasks.log_exception).result(timeout=60)
    [record] = captured.records
    assert (record.levelname, record.getMessage(), record.exc_info) == ("ERROR", "it failed", None)
    assert record.exc_text is not None
    assert record.exc_text.startswith("Traceback (most recent call last):\n")
    assert record.exc_text.endswith("ValueError: boom in the worker")
    assert 'raise ValueError("boom in the worker")' in record.exc_text
    text = captured.path.read_text()
    assert text.endswith("ValueError: boom in the worker\n")
    assert text.count("Traceback (most recent call last):") == 1


def test_opt_out_leaves_logging_to_the_initializer(
    context: str, captured: Captured, tmp_path: Path
) -> None:
    own = tmp_path / "worker.log"
    with parkit.Pool(
        1,
        context=context,
        initializer=observe_tasks.configure_file_logging,
        initargs=(str(own),),
        worker_logging=False,
    ) as pool:
        pid, _ = pool.submit(observe_tasks.log_item, 1).result(timeout=60)
    assert captured.records == []
    assert own.read_text() == f"{pid} item 1\n"


def test_process_opt_out(context: str, captured: Captured) -> None:
    with parkit.Process(
        observe_tasks.log_item, args=(2,), context=context, worker_logging=False
    ) as process:
        process.start()
        process.result(timeout=60)
    assert captured.records == []


_UNCONFIGURED = """
    import sys

    import parkit


    def probe(_):
        import sys
        return "logging" in sys.modules


    if __name__ == "__main__":
        with parkit.Pool(1, context=sys.argv[1]) as pool:
            print(pool.submit(probe, 0).result(timeout=60))
        print(parkit.run(probe, 0, context=sys.argv[1]))
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_workers_of_an_unconfigured_parent_do_not_import_logging(
    method: str, tmp_path: Path
) -> None:
    script = tmp_path / "unconfigured.py"
    script.write_text(textwrap.dedent(_UNCONFIGURED))
    done = subprocess.run(
        [sys.executable, str(script), method],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "False\nFalse\n")
