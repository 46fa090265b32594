"""``PARKIT_METHODS=sample`` (tests/conftest.py): one start method per test, rotating."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from conftest import METHODS, sampled_method


def _kept(nodeid: str) -> list[str]:
    """The variants of ``nodeid`` (``{m}`` marks the method) that the sample keeps."""
    kept = []
    for method in METHODS:
        item: Any = SimpleNamespace(nodeid=nodeid.format(m=method))
        if sampled_method(item, method) == method:
            kept.append(method)
    return kept


def test_each_test_keeps_exactly_one_method() -> None:
    # "fork" inside a file or test name, or inside "forkserver", is not the method.
    for nodeid in [
        "tests/test_user_fork.py::test_a_forked_child[{m}]",
        "tests/test_pool.py::test_map[process-{m}]",
        "tests/test_pool_faults.py::test_a_dying_worker[{m}-segfault]",
        "tests/test_x.py::test_forkserver_only_name[{m}-forkish]",
    ]:
        assert len(_kept(nodeid)) == 1, nodeid


def test_every_method_is_kept_somewhere() -> None:
    chosen = {_kept(f"tests/test_x.py::test_{i}[{{m}}]")[0] for i in range(60)}
    assert chosen == set(METHODS)
