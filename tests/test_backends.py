"""The backend protocol as a third party sees it: parkit.backends and docs/backends.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import parkit
import parkit.backends
from parkit.backends import Backend

DOC = Path(__file__).parent.parent / "docs" / "backends.md"


def _example() -> tuple[str, str]:
    """The two code blocks of the doc's "Writing one" section: the class, its use."""
    section = DOC.read_text().split("## Writing one", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    return blocks[0], blocks[1]


def _inline() -> Any:
    namespace: dict[str, Any] = {}
    exec(_example()[0], namespace)
    return namespace["Inline"]


def test_the_documented_example_runs_as_written() -> None:
    definition, use = _example()
    namespace: dict[str, Any] = {}
    exec(definition + use, namespace)
    assert namespace["backend"].closed is True


def test_a_third_party_backend_is_a_backend() -> None:
    backend = _inline()()
    assert isinstance(backend, Backend)
    assert parkit.map(lambda x: x * x, range(5), backend=backend) == [0, 1, 4, 9, 16]


def test_a_third_party_backend_keeps_errors_semantics() -> None:
    backend = _inline()()

    def f(x: int) -> int:
        if x in (3, 5):
            raise ValueError(x)
        return x

    out = parkit.map(f, range(7), backend=backend, errors="return")
    assert [type(v) if isinstance(v, BaseException) else v for v in out] == [
        0,
        1,
        2,
        ValueError,
        4,
        ValueError,
        6,
    ]
    with pytest.raises(ValueError, match=r"^3$") as info:
        parkit.map(f, range(7), backend=backend, chunksize=7)
    assert info.value.args == (3,)
    assert list(parkit.imap(f, [0, 1], backend=backend)) == [0, 1]


def test_a_pool_uses_only_the_protocol_of_a_third_party_backend() -> None:
    backend: Any = _inline()()
    pool = parkit.Pool(backend=backend)
    assert pool.backend == backend
    assert pool.submit(abs, -7).result(timeout=10) == 7
    assert pool.stats() == parkit.PoolStats(1, 0, 0, 0, 0, ())
    pool.terminate()
    assert backend.closed is True
    with pytest.raises(RuntimeError, match="after shutdown"):
        backend.submit_batch(
            parkit.backends.Batch(parkit.backends.Call(1, abs), 0, [-1]),
        )


def test_an_object_without_the_whole_protocol_is_refused() -> None:
    class Half:
        workers = 1
        stops_tasks = True

        def submit_batch(self, batch: object, future: object = None) -> None: ...
        def forget(self, call: object, after: int) -> None: ...
        def interrupt(self, call: object) -> None: ...

    with pytest.raises(TypeError, match="or a backend object, not"):
        parkit.Pool(backend=Half())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "public"), [("process", "Process"), ("thread", "Thread"), ("serial", "Serial")]
)
def test_the_public_classes_are_what_the_names_make(name: str, public: str) -> None:
    with parkit.Pool(1, backend=name) as pool:  # type: ignore[arg-type]
        backend = pool.backend
        assert type(backend) is getattr(parkit.backends, public)
        assert isinstance(backend, Backend)
        assert backend.workers == 1
        assert backend.shares_memory is True
        assert backend.stops_tasks is (name != "thread")
        assert pool.map(abs, [-1, -2]) == [1, 2]
        stats = backend.stats()
    assert type(stats) is parkit.PoolStats
    assert stats.tasks_done == (2 if name == "process" else 0)


@pytest.mark.parametrize("public", ["Thread", "Serial", "Process"])
def test_a_backend_object_made_by_hand_is_stopped_by_terminate(public: str) -> None:
    cls = getattr(parkit.backends, public)
    backend = cls() if public == "Serial" else cls(1)
    with parkit.Pool(backend=backend) as pool:
        assert pool.map(abs, [-3]) == [3]
        pool.terminate()
    if public != "Serial":
        with pytest.raises((RuntimeError, parkit.PoolBroken)):
            backend.submit_batch(parkit.backends.Batch(parkit.backends.Call(1, abs), 0, [-1]))


def test_backends_module_surface() -> None:
    assert set(parkit.backends.__all__) == {
        "NOT_RUN",
        "Backend",
        "Batch",
        "BatchResult",
        "Call",
        "Dask",
        "Process",
        "Serial",
        "Thread",
    }
    assert set(parkit.backends.__all__) <= set(dir(parkit.backends))
    assert repr(parkit.backends.NOT_RUN) == "NOT_RUN"
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        parkit.backends.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_unknown_backend_name_and_misplaced_options() -> None:
    with pytest.raises(
        ValueError, match="backend must be one of 'process', 'thread', 'serial', 'dask'"
    ):
        parkit.Pool(backend="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="initializer= applies to the 'process' backend only"):
        parkit.Pool(backend="thread", initializer=print)
    with pytest.raises(ValueError, match="context= applies to the 'process' backend only"):
        parkit.Pool(backend="serial", context="spawn")
