"""The public surface: parkit.__all__ is exact, sorted, and names show as parkit.X."""

from __future__ import annotations

import pickle

import parkit


def test_all_is_sorted_and_complete() -> None:
    assert parkit.__all__ == sorted(parkit.__all__)
    # Names load on first use (PEP 562), so vars() holds only those used so far;
    # dir() lists them all, and neither may hold anything outside __all__.
    public = {name for name in dir(parkit) if not name.startswith("_")}
    assert public == set(parkit.__all__)
    assert {name for name in vars(parkit) if not name.startswith("_")} <= set(parkit.__all__)


def test_every_name_in_all_exists() -> None:
    for name in parkit.__all__:
        assert hasattr(parkit, name), name


def test_public_classes_live_in_parkit() -> None:
    assert parkit.Process.__module__ == "parkit"
    assert parkit.ParkitError.__module__ == "parkit.errors"
    assert repr(parkit.Process) == "<class 'parkit.Process'>"


def test_public_functions_pickle_by_reference() -> None:
    assert pickle.loads(pickle.dumps(parkit.run)) is parkit.run
    assert pickle.loads(pickle.dumps(parkit.default_context)) is parkit.default_context
