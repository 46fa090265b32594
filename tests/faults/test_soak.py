"""Soak: many mixed tasks on one long-lived pool, with seeded injected faults.

Every task is accounted for exactly once (its value or its typed error), and the
pool's process count and the parent's open descriptors do not grow. 40 s on
Python 3.11 and 10 s on the others by default; ``PARKIT_SOAK_SECONDS`` sets the
length, ``PARKIT_SOAK_SEED`` the seed (printed on failure).
"""

from __future__ import annotations

import os
import random
import sys
import time
from typing import Any

import psutil
import pytest

import fault_tasks as ft
import parkit

# About a minute once per CI run (the full matrix's Python), a quarter on the others.
# About a minute of .ci/run in all (it runs 3.11, 3.12 and 3.13 in turn).
_DEFAULT_S = "40" if sys.version_info[:2] == (3, 11) else "10"
SECONDS = float(os.environ.get("PARKIT_SOAK_SECONDS", _DEFAULT_S))
SEED = int(os.environ.get("PARKIT_SOAK_SEED", str(random.SystemRandom().randrange(1 << 32))))

#: fault -> (the item, the outcome's type); None: the item's value.
KINDS: dict[str, tuple[tuple[str, Any], type[BaseException] | None]] = {
    "ok": (("ok", 0), None),
    "crash": (("os_exit", (3,)), parkit.WorkerCrashed),
    "timeout": (("sleep_forever", ()), parkit.TaskTimeout),
    "unpicklable": (("return_unpicklable", ()), parkit.SerializationError),
    "slow": (("nap", (0.05,)), None),
    "raises": (("raise_chained", ()), ValueError),
}
WEIGHTS = {"ok": 200, "crash": 2, "timeout": 1, "unpicklable": 3, "slow": 10, "raises": 5}


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.soak
@pytest.mark.timeout(SECONDS + 120)
def test_soak() -> None:
    rng = random.Random(SEED)
    names = list(WEIGHTS)
    weights = [WEIGHTS[n] for n in names]
    seen = 0
    with parkit.Pool(2, timeout=1.0) as pool:
        pool.map(ft.act, [("ok", i) for i in range(4)])  # started: the baseline
        me = psutil.Process()
        base_children = len(me.children(recursive=True))
        base_fds = _fds()
        base_rss = me.memory_info().rss
        deadline = time.monotonic() + SECONDS
        rounds = 0
        while time.monotonic() < deadline:
            kinds = rng.choices(names, weights, k=200)
            items = [("ok", seen + i) if k == "ok" else KINDS[k][0] for i, k in enumerate(kinds)]
            out = pool.map(ft.act, items, chunksize=rng.choice([1, 4, 16]), errors="return")
            assert len(out) == len(items), f"seed {SEED}"
            for i, (kind, got) in enumerate(zip(kinds, out, strict=True)):
                want = KINDS[kind][1]
                if kind == "ok":
                    assert got == (seen + i) * ft.SCALE, f"seed {SEED}: item {i} {got!r}"
                elif want is None:
                    assert got is None, f"seed {SEED}: item {i} {got!r}"
                else:
                    assert type(got) is want, f"seed {SEED}: item {i} {kind}: {got!r}"
                    if want is not ValueError:
                        assert got.item_index == i, f"seed {SEED}"  # type: ignore[attr-defined]
            seen += len(items)
            rounds += 1
        # No growth: the pool replaced what died, and nothing piled up.
        assert len(me.children(recursive=True)) <= base_children, f"seed {SEED}"
        assert _fds() <= base_fds + 4, f"seed {SEED}"
        assert me.memory_info().rss < base_rss + (200 << 20), f"seed {SEED}"
    print(f"soak: seed {SEED}, {seen} tasks in {rounds} rounds")
