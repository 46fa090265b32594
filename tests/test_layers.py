"""Arrows point down only (STYLE.md, "Layout"): read every module's imports with ``ast``.

* ``parkit._core`` knows nothing above it: it imports only itself,
  ``parkit.errors`` (the error tree, a leaf) and outside modules;
* a backend (``parkit._backends``) knows the protocol, not the pool: it never
  imports ``parkit._pool``.

Every import counts, those under ``TYPE_CHECKING`` or inside a function too: a
lazy import is still an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import parkit

SRC = Path(parkit.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """The absolute names of the modules ``source`` (module ``module``) imports."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # ``from . import _wire`` imports the submodule _wire.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _parkit_modules() -> list[tuple[str, set[str]]]:
    modules = []
    for path in sorted(SRC.rglob("*.py")):
        name = _module_name(path)
        imported = imports_of(path.read_text(), name, path.name == "__init__.py")
        # Keep only parkit's own modules (and drop names that are attributes
        # of a module, such as ``parkit.errors.SerializationError``).
        ours = {m for m in imported if m == "parkit" or m.startswith("parkit.")}
        modules.append((name, ours))
    return modules


def _is_in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _attribute_of_allowed(module: str, allowed: tuple[str, ...]) -> bool:
    # ``from ..errors import SerializationError`` names parkit.errors.SerializationError.
    return any(_is_in(module, a) for a in allowed)


def core_violations(modules: list[tuple[str, set[str]]]) -> list[str]:
    allowed = ("parkit._core", "parkit.errors")
    return [
        f"{name} imports {target}"
        for name, imported in modules
        if _is_in(name, "parkit._core")
        for target in sorted(imported)
        if not _attribute_of_allowed(target, allowed)
    ]


def backend_violations(modules: list[tuple[str, set[str]]]) -> list[str]:
    return [
        f"{name} imports {target}"
        for name, imported in modules
        if _is_in(name, "parkit._backends")
        for target in sorted(imported)
        if _is_in(target, "parkit._pool")
    ]


def test_core_imports_nothing_above_it() -> None:
    modules = _parkit_modules()
    assert any(_is_in(name, "parkit._core") for name, _ in modules)
    assert core_violations(modules) == []


def test_backends_do_not_import_the_pool_layer() -> None:
    modules = _parkit_modules()
    assert any(_is_in(name, "parkit._backends._process") for name, _ in modules)
    assert backend_violations(modules) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("parkit._core._wire", "from .._pool import _mapping", ["parkit._core._wire imports"]),
        ("parkit._core._wire", "import parkit._sync._queue", ["parkit._core._wire imports"]),
        ("parkit._core._wire", "from .. import Pool", ["parkit._core._wire imports"]),
        (
            "parkit._core._wire",
            "def f():\n    from .._shared import SharedArray",
            ["parkit._core._wire imports"],
        ),
        ("parkit._core._wire", "from ..errors import SerializationError\nfrom . import _oob", []),
    ],
)
def test_the_core_rule_catches_an_upward_import(
    module: str, source: str, expected: list[str]
) -> None:
    found = core_violations([(module, {m for m in imports_of(source, module) if "parkit" in m})])
    assert [v.partition(" imports ")[0] + " imports" for v in found[:1]] == expected


@pytest.mark.parametrize(
    ("module", "is_package", "source", "bad"),
    [
        ("parkit._backends._thread", False, "from .._pool._stats import PoolStats", True),
        (
            "parkit._backends._process._engine",
            False,
            "if TYPE_CHECKING:\n    from ..._pool import _mapping",
            True,
        ),
        ("parkit._backends._process", True, "from ..._pool._pool import Pool", True),
        ("parkit._backends._process._engine", False, "from .._protocol import Batch", False),
        ("parkit._backends._dask", False, "from .._stats import PoolStats", False),
    ],
)
def test_the_backend_rule_catches_an_import_of_the_pool(
    module: str, is_package: bool, source: str, bad: bool
) -> None:
    imported = {m for m in imports_of(source, module, is_package) if "parkit" in m}
    assert bool(backend_violations([(module, imported)])) is bad
