"""The core promise as properties: a parallel map behaves like the serial loop.

For generated inputs, chunk sizes, worker counts and failure positions, on every
backend and (for processes) every start method: ``map`` equals ``list(map(f, xs))``
or raises what it raises; ``errors="return"`` equals the element-wise try/except;
``imap(ordered=False)`` is a permutation of the serial results; an input that
raises after *k* items behaves as in serial code. Failures are negative items
(``tasks.poly`` raises ``ItemError(x)``), so Hypothesis chooses their positions.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import parkit
from conftest import METHODS
from tasks import InputError, gen_then_raise, poly, serial_outcome, serial_return

BACKENDS = [("process", m) for m in METHODS] + [
    ("thread", None),
    ("serial", None),
    ("dask", None),
]
#: Examples per property on the Dask cluster: each costs a few scheduler round trips.
DASK_EXAMPLES = 10

items = st.lists(st.integers(-3, 50), max_size=40)
mostly_ok = st.lists(st.integers(-1, 50).map(lambda x: x if x >= 0 else -1), max_size=40)
chunksizes = st.none() | st.integers(1, 6)
worker_counts = st.integers(1, 3)


class Pools(dict[int, parkit.Pool]):
    """Pools by worker count, made on demand, for one backend."""

    def __init__(self, make: Callable[[int], parkit.Pool], max_examples: int | None) -> None:
        super().__init__()
        self.make = make
        self.max_examples = max_examples

    def __missing__(self, workers: int) -> parkit.Pool:
        pool = self.make(workers)
        self[workers] = pool
        return pool

    def check(self, test: Callable[[], None]) -> None:
        """Run a Hypothesis test, with fewer examples where they cost more."""
        if self.max_examples is not None:
            test = settings(max_examples=self.max_examples)(test)
        test()


@pytest.fixture(params=BACKENDS, ids=[b if m is None else f"{b}-{m}" for b, m in BACKENDS])
def pools(request: pytest.FixtureRequest) -> Iterator[Pools]:
    """Pools for one backend; on Dask, every worker count is the session cluster's."""
    backend, method = request.param
    if backend == "dask":
        from parkit._backends._dask import DaskBackend

        client = request.getfixturevalue("dask_client")
        made = Pools(lambda _: parkit.Pool(backend=DaskBackend(client)), DASK_EXAMPLES)
    else:
        made = Pools(lambda n: parkit.Pool(n, backend=backend, context=method), None)
    yield made
    for pool in made.values():
        pool.shutdown()


def _same_error(got: BaseException, want: BaseException) -> None:
    assert type(got) is type(want)
    assert got.args == want.args


def test_map_equals_the_serial_loop(pools: Pools) -> None:
    @given(xs=items, chunksize=chunksizes, workers=worker_counts)
    def check(xs: list[int], chunksize: int | None, workers: int) -> None:
        expected, error = serial_outcome(poly, xs)
        if error is None:
            assert pools[workers].map(poly, xs, chunksize=chunksize) == expected
        else:
            with pytest.raises(type(error)) as info:
                pools[workers].map(poly, xs, chunksize=chunksize)
            _same_error(info.value, error)  # the lowest-index failure, as serial

    pools.check(check)


def test_errors_return_equals_elementwise_try_except(pools: Pools) -> None:
    @given(xs=items, chunksize=chunksizes, workers=worker_counts)
    def check(xs: list[int], chunksize: int | None, workers: int) -> None:
        expected, _ = serial_return(poly, xs)
        got = pools[workers].map(poly, xs, chunksize=chunksize, errors="return")
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            if isinstance(e, BaseException):
                assert isinstance(g, BaseException)
                _same_error(g, e)
            else:
                assert g == e

    pools.check(check)


def test_imap_ordered_yields_the_serial_prefix_then_raises(pools: Pools) -> None:
    @given(xs=mostly_ok, chunksize=chunksizes, workers=worker_counts)
    def check(xs: list[int], chunksize: int | None, workers: int) -> None:
        expected, error = serial_outcome(poly, xs)
        got: list[int] = []
        raised: BaseException | None = None
        try:
            for value in pools[workers].imap(poly, iter(xs), chunksize=chunksize):
                got.append(value)
        except Exception as e:
            raised = e
        assert got == expected
        if error is None:
            assert raised is None
        else:
            assert raised is not None
            _same_error(raised, error)

    pools.check(check)


def test_imap_unordered_is_a_permutation(pools: Pools) -> None:
    @given(
        xs=st.lists(st.integers(0, 50), max_size=40), chunksize=chunksizes, workers=worker_counts
    )
    def check(xs: list[int], chunksize: int | None, workers: int) -> None:
        got = list(pools[workers].imap(poly, xs, ordered=False, chunksize=chunksize))
        assert collections.Counter(got) == collections.Counter(map(poly, xs))

    pools.check(check)


def test_an_input_that_raises_behaves_as_in_serial_code(pools: Pools) -> None:
    @given(
        xs=items,
        k=st.integers(0, 40),
        chunksize=chunksizes,
        workers=worker_counts,
        errors=st.sampled_from(["raise", "return"]),
    )
    def check(
        xs: list[int],
        k: int,
        chunksize: int | None,
        workers: int,
        errors: Literal["raise", "return"],
    ) -> None:
        k = min(k, len(xs))
        source = xs[:k]
        serial = serial_outcome if errors == "raise" else serial_return
        _, want = serial(poly, gen_then_raise(source, InputError(k)))
        assert want is not None  # the input always raises, or an item does first
        with pytest.raises(type(want)) as info:
            pools[workers].map(
                poly,
                gen_then_raise(source, InputError(k)),
                chunksize=chunksize,
                errors=errors,
            )
        _same_error(info.value, want)

    pools.check(check)


def test_starmap_equals_the_serial_loop(pools: Pools) -> None:
    @given(pairs=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 3)), max_size=30))
    def check(pairs: list[tuple[int, int]]) -> None:
        assert pools[2].starmap(pow, pairs) == [pow(a, b) for a, b in pairs]

    pools.check(check)
