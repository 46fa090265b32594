"""Every public name has a Google-style docstring that the API reference can render.

The public names are those in ``parkit.__all__`` and ``parkit.backends.__all__``
and, for each class among them, its public members: every attribute whose name
does not start with ``_`` defined by a class of its MRO that belongs to parkit
(stdlib bases such as ``TimeoutError`` or ``Generic`` are not parkit's to
document). The rules, one :class:`Problem` each:

``no docstring``
    A module, class, function, method or property has no docstring of its own
    (an inherited one is not rendered by the docs). A constant (``NOT_RUN``)
    needs an attribute docstring: a string literal right after its assignment.
``no Args section`` / ``Args misses NAME``
    A callable with parameters (``self``/``cls`` aside) has an ``Args:``
    section naming each of them (``*args`` as ``*args`` or ``args``). For a
    class the parameters are its ``__init__``'s, documented in the class's or
    ``__init__``'s docstring; a dataclass documents its fields instead.
``Args names unknown NAME``
    An ``Args`` entry names no parameter: a renamed or removed one.
``no Returns section``
    A function or method (not a property, not ``__init__``) whose return
    annotation is not ``None``/``NoReturn`` has ``Returns:`` (or ``Yields:``).
``no Raises section`` / ``Raises misses NAME``
    A function or method whose own body (nested functions aside) has a
    ``raise X`` statement (a bare ``raise`` re-raises, it raises nothing new;
    a class raised inside a ``try`` that catches it is control flow) has a
    ``Raises:`` section, and every exception class raised by name is listed
    there, itself or one of its bases (``ValueError`` covers a
    ``SegmentGone``).
``no Attributes section`` / ``Attributes misses NAME``
    A dataclass lists its fields, and a class its public data attributes
    (``__slots__`` entries), under ``Attributes:``.

Parameters and slots whose names start with ``_`` are private and exempt.

The checker is tested on a bad sample below, so a rule that stops firing fails.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import functools
import inspect
import re
import textwrap
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import parkit
import parkit.backends

SECTION_NAMES = (
    "Args",
    "Arguments",
    "Returns",
    "Yields",
    "Raises",
    "Attributes",
    "Example",
    "Examples",
    "Note",
    "Notes",
    "Warning",
    "Warnings",
    "See Also",
)


@dataclasses.dataclass(frozen=True, order=True)
class Problem:
    """One rule broken by one public name."""

    name: str
    what: str


def sections(doc: str) -> dict[str, list[str]]:
    """A Google-style docstring's sections: title -> the names of its entries.

    An entry is a line indented one level under the title, ``name:`` or
    ``name (type):``; continuation lines are indented deeper.
    """
    found: dict[str, list[str]] = {}
    lines = inspect.cleandoc(doc).splitlines()
    current: list[str] | None = None
    entry_indent: int | None = None
    for line in lines:
        stripped = line.strip()
        title = stripped[:-1] if stripped.endswith(":") else None
        if title in SECTION_NAMES and not line.startswith(" "):
            current = found.setdefault(title, [])
            entry_indent = None
            continue
        if current is None:
            continue
        if stripped and not line.startswith(" "):
            current = None  # a paragraph at the margin ends the section
            continue
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if entry_indent is None:
            entry_indent = indent
        if indent == entry_indent:
            match = re.match(r"(\*{0,2}[\w.]+)\s*(?:\([^)]*\))?\s*:", stripped)
            current.append(match.group(1) if match else stripped)
    return found


def own_raises(fn: Callable[..., Any]) -> tuple[bool, set[type[BaseException]]]:
    """Whether ``fn``'s own body raises, and the exception classes it raises by name."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return False, set()
    tree = ast.parse(source)
    top = tree.body[0]
    assert isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef), source[:80]
    raises = False
    classes: set[type[BaseException]] = set()
    namespace = {**vars(builtins), **getattr(fn, "__globals__", {})}

    def caught_by(handlers: list[ast.ExceptHandler]) -> tuple[type[BaseException], ...]:
        found: list[type[BaseException]] = []
        for handler in handlers:
            kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            for kind in kinds:
                value = BaseException if kind is None else resolve(kind, namespace)
                if isinstance(value, type) and issubclass(value, BaseException):
                    found.append(value)
        return tuple(found)

    def walk(node: ast.AST, caught: tuple[type[BaseException], ...]) -> None:
        nonlocal raises
        if isinstance(node, ast.Try | ast.TryStar):
            inner = caught + caught_by(node.handlers)
            for stmt in node.body:
                walk(stmt, inner)
            rest: list[ast.AST] = [*node.handlers, *node.orelse, *node.finalbody]
            for other in rest:
                walk(other, caught)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
            ):
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                value = (
                    resolve(exc, namespace) if isinstance(exc, ast.Name | ast.Attribute) else None
                )
                if isinstance(value, type) and issubclass(value, BaseException):
                    if issubclass(value, caught):
                        continue  # control flow: caught in the same function
                    classes.add(value)
                raises = True
            walk(child, caught)

    walk(top, ())
    return raises, classes


def resolve(node: ast.expr, namespace: dict[str, Any]) -> object:
    """The object a ``Name`` or dotted ``Attribute`` stands for in ``namespace``."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        base = resolve(node.value, namespace)
        return getattr(base, node.attr, None) if base is not None else None
    return None


def names_exception(listed: list[str], exc: type[BaseException]) -> bool:
    """Whether a Raises section's entries name ``exc`` or a base of it."""
    bases = {
        klass.__name__ for klass in exc.__mro__ if klass not in (BaseException, Exception, object)
    }
    return any(entry.rsplit(".", 1)[-1] in bases for entry in listed)


def parameters(fn: Callable[..., Any], method: bool) -> list[str]:
    """``fn``'s parameter names as a docstring lists them, ``self``/``cls`` aside."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []
    if method and params and params[0].name in ("self", "cls"):
        params = params[1:]
    prefix: dict[inspect._ParameterKind, str] = {
        inspect.Parameter.VAR_POSITIONAL: "*",
        inspect.Parameter.VAR_KEYWORD: "**",
    }
    # A parameter named _... is a placeholder that nobody passes on purpose.
    return [prefix.get(p.kind, "") + p.name for p in params if not p.name.startswith("_")]


def documents(listed: list[str], name: str) -> bool:
    return name in listed or name.lstrip("*") in listed


def unknown_args(
    name: str, listed: list[str], fn: Callable[..., Any], method: bool
) -> Iterator[Problem]:
    """An ``Args`` entry that names no parameter of ``fn`` (a stale one)."""
    try:
        known = {p.name for p in inspect.signature(fn).parameters.values()}
    except (TypeError, ValueError):
        return
    for entry in listed:
        if entry.lstrip("*") not in known:
            yield Problem(name, f"Args names unknown {entry}")


def returns_value(fn: Callable[..., Any]) -> bool:
    annotation = inspect.signature(fn).return_annotation
    return annotation not in (None, "None", "NoReturn", "Never", inspect.Signature.empty)


def check_callable(name: str, fn: Callable[..., Any], method: bool) -> Iterator[Problem]:
    doc = fn.__doc__
    if not doc or not doc.strip():
        yield Problem(name, "no docstring")
        return
    found = sections(doc)
    params = parameters(fn, method)
    if params:
        if "Args" not in found and "Arguments" not in found:
            yield Problem(name, "no Args section")
        else:
            listed = found.get("Args", []) + found.get("Arguments", [])
            for param in params:
                if not documents(listed, param):
                    yield Problem(name, f"Args misses {param}")
            yield from unknown_args(name, listed, fn, method)
    if returns_value(fn) and "Returns" not in found and "Yields" not in found:
        yield Problem(name, "no Returns section")
    yield from check_raises(name, fn, found)


def check_raises(
    name: str, fn: Callable[..., Any], found: dict[str, list[str]]
) -> Iterator[Problem]:
    raises, classes = own_raises(fn)
    if not raises:
        return
    if "Raises" not in found:
        yield Problem(name, "no Raises section")
        return
    for exc in sorted(classes, key=lambda c: c.__name__):
        if not names_exception(found["Raises"], exc):
            yield Problem(name, f"Raises misses {exc.__name__}")


def owned_classes(cls: type) -> list[type]:
    """The classes of ``cls``'s MRO whose members are parkit's to document."""
    return [
        klass
        for klass in cls.__mro__
        if (klass.__module__ or "").split(".")[0] in ("parkit", cls.__module__.split(".")[0])
    ]


def check_class(name: str, cls: type) -> Iterator[Problem]:
    doc = cls.__doc__
    if not doc or not doc.strip():
        yield Problem(name, "no docstring")
    found = sections(doc or "")
    top = cls.__module__.split(".")[0]
    init = next(
        (
            vars(k)["__init__"]
            for k in owned_classes(cls)
            # Not the __init__ that typing.Protocol puts on its subclasses.
            if getattr(vars(k).get("__init__"), "__module__", "").split(".")[0] == top
        ),
        None,
    )
    if dataclasses.is_dataclass(cls):
        listed = found.get("Attributes", [])
        if "Attributes" not in found:
            yield Problem(name, "no Attributes section")
        for field in dataclasses.fields(cls):
            if "Attributes" in found and field.name not in listed:
                yield Problem(name, f"Attributes misses {field.name}")
    elif isinstance(init, types.FunctionType):
        params = parameters(init, method=True)
        init_doc = sections(init.__doc__ or "")
        listed = (
            found.get("Args", [])
            + found.get("Arguments", [])
            + init_doc.get("Args", [])
            + init_doc.get("Arguments", [])
        )
        if params and not listed:
            yield Problem(name, "no Args section")
        elif params:
            for param in params:
                if not documents(listed, param):
                    yield Problem(name, f"Args misses {param}")
        yield from unknown_args(name, listed, init, method=True)
        yield from check_raises(f"{name}.__init__", init, {**found, **init_doc})
    seen: set[str] = set()
    for klass in owned_classes(cls):
        slots = vars(klass).get("__slots__", ())
        for slot in [slots] if isinstance(slots, str) else slots:
            if not slot.startswith("_") and slot not in seen:
                seen.add(slot)
                if slot not in found.get("Attributes", []):
                    yield Problem(name, f"Attributes misses {slot}")
        for member, value in vars(klass).items():
            if member.startswith("_") or member in seen:
                continue
            seen.add(member)
            yield from check_member(f"{name}.{member}", value)


def check_member(name: str, value: object) -> Iterator[Problem]:
    if isinstance(value, property | functools.cached_property):
        getter = value.fget if isinstance(value, property) else value.func
        if not (getter and getter.__doc__ and getter.__doc__.strip()):
            yield Problem(name, "no docstring")
        return
    if isinstance(value, staticmethod):
        yield from check_callable(name, value.__func__, method=False)
    elif isinstance(value, classmethod):
        yield from check_callable(name, value.__func__, method=True)
    elif isinstance(value, types.FunctionType):
        yield from check_callable(name, value, method=True)
    elif isinstance(value, type):
        yield from check_class(name, value)


def check_constant(name: str, module: types.ModuleType, attr: str) -> Iterator[Problem]:
    """A module-level constant needs an attribute docstring where it is assigned."""
    value = getattr(module, attr)
    for where in [module, *(m for m in sys_modules_of(value))]:
        try:
            tree = ast.parse(inspect.getsource(where))
        except (OSError, TypeError):
            continue
        body = tree.body
        for k, node in enumerate(body):
            targets = (
                [node.target]
                if isinstance(node, ast.AnnAssign)
                else node.targets
                if isinstance(node, ast.Assign)
                else []
            )
            if any(isinstance(t, ast.Name) and t.id == attr for t in targets):
                after = body[k + 1] if k + 1 < len(body) else None
                if (
                    isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)
                    and after.value.value.strip()
                ):
                    return
    yield Problem(name, "no docstring")


def sys_modules_of(value: object) -> list[types.ModuleType]:
    """The parkit modules that define a constant equal to ``value``."""
    import sys

    return [
        module
        for key, module in sorted(sys.modules.items())
        if key.startswith("parkit.") and any(v is value for v in vars(module).values())
    ]


def check(module: types.ModuleType) -> list[Problem]:
    """Every problem of ``module``'s public names (its ``__all__``)."""
    problems: list[Problem] = []
    prefix = module.__name__
    if not (module.__doc__ and module.__doc__.strip()):
        problems.append(Problem(prefix, "no docstring"))
    for attr in module.__all__:
        value = getattr(module, attr)
        name = f"{prefix}.{attr}"
        if isinstance(value, types.ModuleType):
            if not (value.__doc__ and value.__doc__.strip()):
                problems.append(Problem(name, "no docstring"))
        elif isinstance(value, type):
            problems.extend(check_class(name, value))
        elif isinstance(value, types.FunctionType):
            problems.extend(check_callable(name, value, method=False))
        else:
            problems.extend(check_constant(name, module, attr))
    return sorted(set(problems))


def test_parkit_public_names_are_documented() -> None:
    assert check(parkit) == []


def test_parkit_backends_public_names_are_documented() -> None:
    assert check(parkit.backends) == []


def test_parkit_errors_module_is_documented() -> None:
    assert check(parkit.errors) == []


# ---------------------------------------------------------------- the checker itself


def _sample_module() -> types.ModuleType:
    """A module that breaks every rule once, and keeps each rule once."""
    source = '''
"""A sample."""

import dataclasses

__all__ = ["Good", "Bare", "Data", "SENTINEL", "UNDOCUMENTED", "good", "bad", "raiser"]

SENTINEL = object()
"""A documented constant."""

UNDOCUMENTED = object()


class Good:
    """A good class.

    Args:
        size: how many.

    Attributes:
        slot: a slot.
    """

    __slots__ = ("slot",)

    def __init__(self, size: int) -> None:
        self.slot = size

    @property
    def prop(self) -> int:
        """A property."""
        return 1

    def method(self, x: int, *rest: int, **extra: int) -> int:
        """A method.

        Args:
            x: an x.
            *rest: more.
            **extra: options.

        Returns:
            a number.

        Raises:
            ValueError: ``x`` is negative.
        """
        if x < 0:
            raise ValueError(x)
        return x


class Bare:
    __slots__ = ("hidden", "_secret")

    def __init__(self, size: int) -> None:
        pass

    @property
    def prop(self) -> int:
        return 1

    def method(self, x: int) -> int:
        """No sections."""
        if x:
            raise KeyError(x)
        return x

    def half(self, x: int, y: int) -> None:
        """Half the args, and one stale.

        Args:
            x: an x.
            z: gone.

        Raises:
            KeyError: never.
        """
        raise IndexError(y)

    def _private(self) -> None:
        pass


@dataclasses.dataclass
class Data:
    """Fields, one not listed.

    Attributes:
        a: an a.
    """

    a: int
    b: int


def good(x: int) -> None:
    """Good.

    Args:
        x: an x.

    Raises:
        OSError: always (a FileNotFoundError is one).
    """

    def inner() -> None:
        raise RuntimeError  # not good's own raise

    try:
        inner()
    except RuntimeError:
        raise  # a bare raise raises nothing new
    try:
        if x:
            raise KeyError(x)  # control flow: caught below
    except LookupError:
        pass
    raise FileNotFoundError(x)


def bad(x: int) -> int:
    return x


def raiser() -> None:
    """Raises, says nothing."""
    raise ValueError
'''
    module = types.ModuleType("docsample")
    module.__file__ = "<docsample>"
    import linecache
    import sys

    linecache.cache["<docsample>"] = (len(source), None, source.splitlines(True), "<docsample>")
    sys.modules["docsample"] = module
    try:
        exec(compile(source, "<docsample>", "exec"), vars(module))
    finally:
        del sys.modules["docsample"]
    return module


def test_checker_finds_every_broken_rule() -> None:
    module = _sample_module()
    assert check(module) == sorted(
        [
            Problem("docsample.Bare", "no docstring"),
            Problem("docsample.Bare", "no Args section"),
            Problem("docsample.Bare", "Attributes misses hidden"),
            Problem("docsample.Bare.prop", "no docstring"),
            Problem("docsample.Bare.method", "no Args section"),
            Problem("docsample.Bare.method", "no Returns section"),
            Problem("docsample.Bare.method", "no Raises section"),
            Problem("docsample.Bare.half", "Args misses y"),
            Problem("docsample.Bare.half", "Args names unknown z"),
            Problem("docsample.Bare.half", "Raises misses IndexError"),
            Problem("docsample.Data", "Attributes misses b"),
            Problem("docsample.UNDOCUMENTED", "no docstring"),
            Problem("docsample.bad", "no docstring"),
            Problem("docsample.raiser", "no Raises section"),
        ]
    )


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("One line.", {}),
        (
            "Summary.\n\n    Args:\n        a: first\n            more of a.\n"
            "        b (int): second.\n\n    Returns:\n        The sum of a and b.\n",
            {"Args": ["a", "b"], "Returns": ["The sum of a and b."]},
        ),
        (
            "Summary.\n\nRaises:\n    queue.Empty: nothing came.\n    ValueError: closed.\n"
            "\nA paragraph after.\n",
            {"Raises": ["queue.Empty", "ValueError"]},
        ),
    ],
)
def test_sections_parses_google_style(doc: str, expected: dict[str, list[str]]) -> None:
    assert sections(doc) == expected


def test_the_api_reference_shows_every_public_name() -> None:
    """docs/reference.md has a ``::: name`` block for every public name."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "reference.md").read_text()
    shown = set(re.findall(r"^::: ([\w.]+)$", page, re.MULTILINE))
    wanted = {f"parkit.{name}" for name in parkit.__all__ if name not in ("backends", "errors")}
    wanted |= {f"parkit.backends.{name}" for name in parkit.backends.__all__}
    wanted |= {"parkit.backends", "parkit.errors"}
    assert sorted(wanted - shown) == []
    assert sorted(shown - wanted) == []
