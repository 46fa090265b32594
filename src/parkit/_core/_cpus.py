"""How many CPUs this process may really use."""

from __future__ import annotations

import math
import os

from . import _platform

__all__ = ["allowed_cpus", "check_cpus", "usable_cpus"]


def _cgroup_limit() -> int | None:
    """CPUs allowed by a cgroup v2 quota (containers), or None if unlimited."""
    if not _platform.CGROUPS:
        return None
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


def allowed_cpus() -> int:
    """CPUs in this process's affinity mask (the machine's where there is none)."""
    if _platform.AFFINITY:
        try:
            return len(os.sched_getaffinity(0))
        except OSError:
            pass
    return os.cpu_count() or 1


def usable_cpus() -> int:
    """CPUs this process may run on: affinity mask and cgroup quota aware.

    ``os.cpu_count()`` counts the machine's CPUs, which over-subscribes a
    container limited to a few of them or a process pinned with ``taskset``.
    """
    count = allowed_cpus()
    limit = _cgroup_limit()
    if limit is not None:
        count = min(count, limit)
    return max(1, count)


def check_cpus(cpus: object) -> frozenset[int] | None:
    """``cpus`` as given to ``Pool``/``Process``, checked in the parent.

    Returns:
        The CPU numbers, or ``None`` for no affinity.

    Raises:
        TypeError: not an iterable of ints.
        ValueError: empty, or a CPU this machine does not have.
        NotImplementedError: this platform has no way to set a process's
            affinity (``os.sched_setaffinity``: Linux; not macOS or Windows).
    """
    if cpus is None:
        return None
    if isinstance(cpus, str | bytes) or not hasattr(cpus, "__iter__"):
        raise TypeError(f"cpus must be a set of CPU numbers (ints), not {cpus!r}")
    found = frozenset(cpus)
    for cpu in found:
        if isinstance(cpu, bool) or not isinstance(cpu, int):
            raise TypeError(f"cpus must be a set of CPU numbers (ints), not {cpus!r}")
    if not found:
        raise ValueError("cpus must name at least one CPU, not an empty set")
    if not _platform.AFFINITY:
        raise NotImplementedError(
            f"cpus= needs os.sched_setaffinity, which Python does not offer on {_platform.NAME}"
        )
    machine = os.cpu_count() or 1
    bad = sorted(cpu for cpu in found if not 0 <= cpu < machine)
    if bad:
        raise ValueError(
            f"cpus names CPUs this machine does not have: {bad} (it has CPUs 0 to {machine - 1})"
        )
    return found
