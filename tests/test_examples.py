"""Every example runs, quickly, and opens with a docstring saying what it shows."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples() -> None:
    assert [p.name for p in EXAMPLES] == ["managers.py", "queues_and_locks.py", "quickstart.py"]


def _example(name: str) -> str:
    return str(next(p for p in EXAMPLES if p.name == name))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring is not None
    assert len(docstring) > 40
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_quickstart_shows_results_and_the_worker_traceback() -> None:
    done = subprocess.run(
        [sys.executable, _example("quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "collatz_steps(837799) = 524" in done.stdout
    assert "errors='return': [10, 20, ValueError(\"bad input row 17: '???'\"), 40," in done.stdout
    assert "ValueError: bad input row 17: '???'" in done.stderr
    assert 'quickstart.py", line 37, in parse_row' in done.stderr
    assert "[parkit] raised by parse_row on item 2 in worker 'parkit-pool" in done.stderr


def test_queues_and_locks_example_shows_the_diagnostics() -> None:
    done = subprocess.run(
        [sys.executable, _example("queues_and_locks.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "pipe: hello from a child",
        "LockTimeout names the holder: True True",
        "LockAbandoned names the dead holder: True",
        "and the lock works again: True",
    ]


def test_managers_example_output() -> None:
    done = subprocess.run(
        [sys.executable, _example("managers.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "list: [0, 1, 4, 9, 16] dict: {0: 0, 1: 1, 2: 4, 3: 9, 4: 16}",
        "counter: 400",
        "remote add: 8",
        "wrong key: the manager refused the key",
    ]
    assert done.stderr == ""
