"""Scaling out with Dask: the same ``parkit.map`` on a cluster.

Shows one call, ``parkit.map(fn, items, backend="dask")``, run on a Dask cluster
with the results in input order and a failing item's exception raised as the
serial loop would raise it (or returned in place with ``errors="return"``), then
a ``parkit.Pool`` over an explicit client. To stay small and quick, the cluster
is a ``LocalCluster(processes=False)``: one worker with two threads inside this
process; point a ``distributed.Client`` at a real scheduler
(``Client("tcp://scheduler:8786")``) and nothing else changes. Needs
``pip install 'parkit[dask]'``.

What the stdlib version gets wrong: ``multiprocessing`` stops at one machine, and
moving to Dask by hand means rewriting the loop as ``client.map``/``gather``
(one scheduler task per item: 1-2 ms each, slower than one machine for small
items) with different error handling. parkit sends items in batches sized like
its local pool's, keeps the order, ``errors=``, ``timeout=`` and exceptions of
the local call, and adds a note naming the Dask worker that raised.
"""

from __future__ import annotations

from distributed import Client, LocalCluster

import parkit
from parkit.backends import Dask


def analyse(x: int) -> int:
    if x == 7:
        raise ValueError(f"bad record {x}")
    return x * x


def main() -> None:
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        print("on the cluster:", parkit.map(analyse, range(6), backend="dask"))
        print(
            "errors='return':", parkit.map(analyse, range(5, 10), backend="dask", errors="return")
        )
        try:
            parkit.map(analyse, range(10), backend="dask")
        except ValueError as error:
            print(f"raised: {error!r}")
            print("its note names the Dask worker:", "in dask worker" in error.__notes__[0])
        with parkit.Pool(backend=Dask(client)) as pool:  # an explicit client, left open
            print("a Pool on the client:", pool.map(analyse, [1, 2, 3]))


if __name__ == "__main__":
    main()
