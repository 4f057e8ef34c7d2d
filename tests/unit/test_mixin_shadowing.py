"""No method name is defined by two classes of one MRO unless it deliberately chains through ``super()``.

The planner (``cmdb.planning.planner.Planner``) and the stores (``SqliteStore``, ``Neo4jStore`` and the
readers and writers of their transactions) are assembled from mixins. A name defined in two of them is
resolved silently by the MRO: one definition wins, the other is dead code that its author believes runs
(two planner mixins once defined ``only_this_source`` with different meanings). The one legitimate shape
is an extension hook, where every definition but the last in the MRO calls ``super().<name>`` (e.g. the
Neo4j connection's ``_extend_schema`` / ``_dump_extra`` / ``_restore_extra``, each capability adding its
part): that is detected from the source, so a new hook needs no list here.

Checked: every class defined in ``cmdb.planning`` and ``cmdb.store`` (the planner, the stores, their
mixins, readers and writers), over the product's classes of its MRO (``object``, ``Protocol``,
``Generic`` and other library classes are not ours to police).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import Iterator
from typing import Any

import cmdb.planning
import cmdb.store
from cmdb.planning.planner import Planner
from cmdb.store.neo4j import Neo4jStore
from cmdb.store.sqlite import SqliteStore

PACKAGES = (cmdb.planning, cmdb.store)


def product_classes() -> Iterator[type]:
    """Every class defined (not just imported) in a module of ``PACKAGES``."""
    for package in PACKAGES:
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if inspect.isclass(obj) and obj.__module__ == module.__name__:
                    yield obj


def _ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "cmdb" and not getattr(cls, "_is_protocol", False)


def _function(value: Any) -> Any:
    """The function behind a class attribute (method, static/class method, property getter), or None."""
    if isinstance(value, staticmethod | classmethod):
        return value.__func__
    if isinstance(value, property):
        return value.fget
    return value if inspect.isfunction(value) else None


def calls_super(func: Any, name: str) -> bool:
    """Does ``func``'s source reach ``super().<name>`` or ``super(C, self).<name>`` (nested functions too)?"""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return False
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id == "super"):
            return True
    return False


def shadowed(cls: type) -> list[str]:
    """Names ``cls``'s MRO defines more than once without every earlier definition chaining by ``super()``."""
    defined: dict[str, list[tuple[type, Any]]] = {}
    for klass in cls.__mro__:
        if not _ours(klass):
            continue
        for name, value in vars(klass).items():
            func = _function(value)
            if func is not None and func.__code__.co_filename.endswith(".py"):
                defined.setdefault(name, []).append((klass, func))
    out = []
    for name, found in sorted(defined.items()):
        if len(found) < 2:
            continue
        broken = [k for k, func in found[:-1] if not calls_super(func, name)]
        if broken:
            where = ", ".join(f"{k.__module__}.{k.__qualname__}" for k, _ in found)
            out.append(f"{cls.__qualname__}.{name} is defined in {where}; "
                       + ", ".join(k.__qualname__ for k in broken) + " does not call super()." + name
                       + ": rename one (two meanings under one name) or chain it through super()")
    return out


def test_the_assembled_classes_are_among_those_checked() -> None:
    checked = set(product_classes())
    assert {Planner, SqliteStore, Neo4jStore} <= checked
    assert len(checked) > 30  # the walk found the packages' modules


def test_no_method_is_shadowed_in_a_planner_or_store_mro() -> None:
    problems = [p for cls in product_classes() for p in shadowed(cls)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_shadowed_name_and_accepts_a_hook_chain() -> None:
    class First:
        def only_this_source(self) -> bool:
            return True

        def hook(self) -> list[str]:
            return ["first"]

    class Second:
        def only_this_source(self) -> bool:
            return False

    class Chaining(First):
        def hook(self) -> list[str]:
            return ["chaining", *super().hook()]

    class Both(Chaining, Second):
        pass

    class NotChaining(First):
        def hook(self) -> list[str]:
            return ["replaced"]

    for klass in (First, Second, Chaining, Both, NotChaining):
        klass.__module__ = "cmdb.planning.example"  # count them as ours
    problems = shadowed(Both)
    assert len(problems) == 1 and "Both.only_this_source" in problems[0] and "First" in problems[0]
    assert shadowed(Chaining) == []
    problems = shadowed(NotChaining)
    assert len(problems) == 1 and "NotChaining.hook" in problems[0]
