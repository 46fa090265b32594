"""How many CPUs this process may really use."""

from __future__ import annotations

import math
import os

__all__ = ["usable_cpus"]


def _cgroup_limit() -> int | None:
    """CPUs allowed by a cgroup v2 quota (containers), or None if unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def usable_cpus() -> int:
    """CPUs this process may run on: affinity mask and cgroup quota aware.

    ``os.cpu_count()`` counts the machine's CPUs, which over-subscribes a
    container limited to a few of them or a process pinned with ``taskset``.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    limit = _cgroup_limit()
    if limit is not None:
        count = min(count, limit)
    return max(1, count)
