"""``python -m parkit info``: what parkit sees on this machine, for a bug report."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import sys
from typing import Any

from ._core import _context, _cpus, _platform

__all__ = ["gather", "render"]

#: The distributions parkit uses or can use, in the order shown.
_PACKAGES = ("cloudpickle", "tblib", "numpy", "tqdm", "distributed")

_WHY_FORKSERVER = (
    "forkserver is available: workers start from a clean server process "
    "(safe with threads in the parent, no inherited state)"
)
_WHY_SPAWN = "forkserver is not available here: spawn starts a fresh interpreter per worker"


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _default() -> dict[str, Any]:
    env = os.environ.get(_context.START_METHOD_ENV, "").strip()
    result: dict[str, Any] = {"env": env or None}
    try:
        result["method"] = _context.default_context().get_start_method()
    except ValueError as exc:
        result["method"] = None
        result["why"] = str(exc)
        return result
    if env:
        result["why"] = f"${_context.START_METHOD_ENV} is set to {env!r}"
    elif result["method"] == "forkserver":
        result["why"] = _WHY_FORKSERVER
    else:
        result["why"] = _WHY_SPAWN
    return result


def _cpus_seen() -> dict[str, Any]:
    affinity: int | None = None
    if _platform.AFFINITY:
        with contextlib.suppress(OSError):
            affinity = len(os.sched_getaffinity(0))
    quota = _cpus._cgroup_limit()
    return {
        "usable": _cpus.usable_cpus(),
        "machine": os.cpu_count(),
        "affinity": affinity,
        "cgroup_quota": quota,
    }


def _fast_paths() -> dict[str, Any]:
    from ._sync import _futex, _mutex  # noqa: PLC0415  (ctypes: only when asked)

    return {
        "shared_memory": _platform.describe()["shm"],
        "futex": _futex.NATIVE,
        "robust_mutex": _mutex.AVAILABLE,
        "flock": _platform.FLOCK,
        "affinity": _platform.AFFINITY,
        "forced": _platform.FORCED,
    }


def gather() -> dict[str, Any]:
    """Everything ``info`` reports, as plain data (what ``--json`` prints)."""
    return {
        "parkit": _version("parkit"),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": platform.platform(),
        "machine": platform.machine(),
        "start_methods": _context.available_methods(),
        "default_start_method": _default(),
        "cpus": _cpus_seen(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "fast_paths": _fast_paths(),
    }


def render(info: dict[str, Any]) -> str:
    """The report as text."""
    python = info["python"]
    default = info["default_start_method"]
    cpus = info["cpus"]
    fast = info["fast_paths"]
    quota = cpus["cgroup_quota"]
    forced = f" (probes forced: {fast['forced']})" if fast["forced"] else ""
    lines = [
        f"parkit {info['parkit'] or '(not installed as a distribution)'}{forced}",
        f"Python {python['version']} ({python['implementation']}) {python['executable']}",
        f"platform {info['platform']} ({info['machine']})",
        f"start methods: {', '.join(info['start_methods'])}",
        f"default start method: {default['method'] or '(none: see why)'} - {default['why']}",
        f"usable CPUs: {cpus['usable']} (machine {cpus['machine']}, affinity "
        f"{cpus['affinity'] if cpus['affinity'] is not None else 'unknown'}, cgroup quota "
        f"{quota if quota is not None else 'none'})",
        "packages: "
        + ", ".join(f"{name} {version or 'missing'}" for name, version in info["packages"].items()),
        f"shared memory: {fast['shared_memory'] or 'missing (SharedArray, locks, Queue fail)'}",
        "futex: " + ("yes" if fast["futex"] else "no (waits poll in growing slices)"),
        "sync guard: "
        + (
            "robust mutex"
            if fast["robust_mutex"]
            else ("flock" if fast["flock"] else "none (sync objects fail)")
        ),
        "cpus=: " + ("yes" if fast["affinity"] else "no (NotImplementedError)"),
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m parkit info [--json]``."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m parkit")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="what parkit sees here (paste it into a bug report)")
    info.add_argument("--json", action="store_true", help="as JSON")
    args = parser.parse_args(argv)
    data = gather()
    print(json.dumps(data, indent=2) if args.json else render(data))
    return 0
