"""Exceptions keep their attributes when something installed tblib's pickling.

``import distributed`` (and ``dask.multiprocessing``) call
``tblib.pickling_support.install()``, which registers a reducer for every
exception class in the process's global ``copyreg`` table; parkit pickles
exceptions the standard way regardless. Run in a fresh interpreter: the install
can't be undone.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_SCRIPT = """
    import sys
    import tblib.pickling_support
    tblib.pickling_support.install()

    import parkit
    from parkit._core import _remote

    def leave(code):
        raise SystemExit(code)

    def stop(value):
        raise StopIteration(value)

    if __name__ == "__main__":
        local = _remote.rebuild(_remote.capture(SystemExit(3)))
        print("local", type(local).__name__, local.code)
        with parkit.Pool(1, context=sys.argv[1]) as pool:
            got = pool.map(leave, [4], errors="return")
            print("pool", type(got[0]).__name__, got[0].code)
            got = pool.map(stop, [5], errors="return")
            print("pool", type(got[0]).__name__, got[0].value)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_exception_attributes_survive_tblib_install(method: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SCRIPT), method],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "local SystemExit 3",
        "pool SystemExit 4",
        "pool StopIteration 5",
    ]
