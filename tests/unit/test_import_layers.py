"""The import graph of the product, checked from the source (AST), so no import circle and no layer
breach can come back unnoticed.

Rules:

* no circle among the product's modules (every import counts, also those inside functions, because
  a lazy import that closes a circle is still a circle in the design);
* the core ``cmdb`` imports none of the wings (``discovery``, ``impact``, ``importers``, ``api``)
  nor the composition root ``product``; no wing imports ``product``;
* no module imports another module's private (``_underscore``) name.

An import edge goes to the module named (``from a.b import c`` goes to ``a.b.c`` when that is a
module, else to ``a.b``), not to the parent packages that Python initialises on the way: a
package's ``__init__`` re-exporting its submodules is the usual shape, not a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cmdb", "discovery", "impact", "importers", "api", "product")
WINGS = ("discovery", "impact", "importers", "api", "product")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py")}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """(module imported, name imported from it or None, line) for each import of the product's modules."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] in PACKAGES]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, None, node.lineno) if sub in modules else (base, alias.name, node.lineno))
    return found


def graph() -> dict[str, set[str]]:
    modules = product_modules()
    return {name: {m for m, _n, _l in imports_of(name, path, modules) if m in modules and m != name}
            for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_circle_and_only_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    assert cycles(graph()) == []


def test_the_core_imports_no_wing_and_no_wing_imports_the_product_root() -> None:
    modules = product_modules()
    breaches = []
    for name, path in modules.items():
        top = name.split(".")[0]
        forbidden = WINGS if top == "cmdb" else ("product",) if top != "product" else ()
        breaches += [f"{path.relative_to(ROOT)}:{line} imports {m}" for m, _n, line in imports_of(name, path, modules)
                     if m.split(".")[0] in forbidden]
    assert breaches == []


def test_no_module_imports_another_modules_private_names() -> None:
    modules = product_modules()
    breaches = [f"{path.relative_to(ROOT)}:{line} imports {n} from {m}"
                for name, path in modules.items() for m, n, line in imports_of(name, path, modules)
                if n is not None and n.startswith("_") and m != name]
    assert breaches == []


def test_the_checker_sees_the_imports_it_must_see() -> None:
    """Guards the checker itself: a known edge of the code base is found, lazy ones included."""
    edges = graph()
    assert "cmdb.store.base" in edges["cmdb.ingest"]
    assert "discovery.runner" in edges["discovery.cli"]
    assert "cmdb.cli" in edges["product.cli"]
