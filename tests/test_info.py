"""``python -m parkit info``: runs in a fresh interpreter; its JSON parses and is right."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from typing import Any

from parkit._core._context import available_methods
from parkit._core._cpus import usable_cpus


def _info(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # The machine's own answers, whatever the test run forced (a test below forces).
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PARKIT_START_METHOD", "PARKIT_FORCE_PORTABLE")
    }
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "parkit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environ,
    )


def _json(env: dict[str, str] | None = None) -> Any:
    done = _info("info", "--json", env=env)
    assert (done.returncode, done.stderr) == (0, "")
    return json.loads(done.stdout)


def test_json_says_what_this_machine_has() -> None:
    info = _json()
    assert info["parkit"] == importlib.metadata.version("parkit")
    assert info["python"]["version"] == platform.python_version()
    assert info["start_methods"] == available_methods()
    assert info["default_start_method"]["method"] == available_methods()[0]
    assert info["default_start_method"]["env"] is None
    assert info["cpus"]["usable"] == usable_cpus()
    assert info["cpus"]["affinity"] == len(os.sched_getaffinity(0))
    assert info["packages"]["cloudpickle"] == importlib.metadata.version("cloudpickle")
    assert info["packages"]["tblib"] == importlib.metadata.version("tblib")
    assert info["fast_paths"] == {
        "shared_memory": "files in /dev/shm",
        "futex": True,
        "robust_mutex": True,
        "flock": True,
        "affinity": True,
        "forced": None,
    }


def test_json_shows_the_probes_forced_to_the_portable_answers() -> None:
    info = _json({"PARKIT_FORCE_PORTABLE": "1"})
    assert info["cpus"]["affinity"] is None
    assert info["fast_paths"] == {
        "shared_memory": "shm_open",
        "futex": False,
        "robust_mutex": False,
        "flock": True,
        "affinity": False,
        "forced": "posix",
    }
    done = _info("info", env={"PARKIT_FORCE_PORTABLE": "1"})
    lines = done.stdout.splitlines()
    assert lines[0].endswith(" (probes forced: posix)")
    assert lines[-4:] == [
        "shared memory: shm_open",
        "futex: no (waits poll in growing slices)",
        "sync guard: flock",
        "cpus=: no (NotImplementedError)",
    ]


def test_the_environment_variable_is_shown_with_why() -> None:
    info = _json({"PARKIT_START_METHOD": "spawn"})
    assert info["default_start_method"] == {
        "env": "spawn",
        "method": "spawn",
        "why": "$PARKIT_START_METHOD is set to 'spawn'",
    }
    bad = _json({"PARKIT_START_METHOD": "nope"})["default_start_method"]
    assert bad["method"] is None
    assert bad["why"].startswith("unknown start method 'nope' in $PARKIT_START_METHOD")


def test_text_report() -> None:
    done = _info("info")
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == [
        "parkit",
        "Python",
        "platform",
        "start",
        "default",
        "usable",
        "packages:",
        "shared",
        "futex:",
        "sync",
        "cpus=:",
    ]
    assert lines[3] == "start methods: " + ", ".join(available_methods())
    assert lines[-4:] == [
        "shared memory: files in /dev/shm",
        "futex: yes",
        "sync guard: robust mutex",
        "cpus=: yes",
    ]


def test_no_command_is_a_usage_error() -> None:
    done = _info()
    assert done.returncode == 2
    assert "the following arguments are required: command" in done.stderr
