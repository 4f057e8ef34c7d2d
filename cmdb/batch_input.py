"""Reading a batch document safely: bytes to a parsed document, within limits a store can hold.

Found by feeding ``cmdb load`` hostile files: a 464-byte YAML file whose nested aliases expand to a
3.7 MB attribute (and, nine levels deep, exhaust memory), JSON nested 100,000 deep (a
``RecursionError``), bytes that are not UTF-8, and a 50 MB YAML file that took 121 s with the pure
Python parser. So:

- YAML is parsed with libyaml's C loader when PyYAML was built with it (``yaml.CSafeLoader``);
- the parsed document is walked once, iteratively (no recursion, whatever the depth), counting each
  shared (aliased) node as often as it would be written out; a document that expands past
  ``MAX_ALIAS_EXPANSION``, nests deeper than ``MAX_DEPTH``, holds a string longer than
  ``MAX_STRING`` or an attribute value larger than ``MAX_ATTRIBUTE`` is refused, naming the place;
- a value that one store would refuse (a lone UTF-16 surrogate, which the Neo4j driver cannot
  encode) is refused here for both.

``Batch.from_bytes`` (files, standard input) applies all of this; ``Batch.from_dict`` for documents
built in-process does not walk them (the walk costs about 10% of an embedded ingest), and the API
bounds its request bodies itself. The limits are far above anything a collector or importer writes
(a CI's largest attribute in the sample estate and the recorded discovery data is under 2 KB).
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from cmdb.errors import BadInputError

MAX_DEPTH = 32
"""Levels of nesting in a batch document (the batch itself, ``cis``, an item, an attribute are 4)."""
MAX_STRING = 65_536
"""Characters in one string value."""
MAX_ATTRIBUTE = 262_144
"""Size of one attribute value as written (characters of its strings plus one per other node)."""
MAX_ALIAS_EXPANSION = 1_000_000
"""How much larger than its parsed form YAML aliases may make a document when it is written out."""
MAX_ERRORS = 20
"""How many problems of one batch are reported before the rest are summarised."""

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def yaml_loader() -> type[yaml.SafeLoader]:
    """libyaml's safe loader where PyYAML has it, else the pure Python one."""
    return _LOADER


def parse_document(raw: bytes, origin: str, *, as_json: bool) -> Any:
    """``raw`` as UTF-8 JSON (``as_json``) or YAML; every failure is a BadInputError naming ``origin``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = raw.count(b"\n", 0, exc.start) + 1
        raise BadInputError(
            f"{origin}:{lineno}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8") from None
    try:
        doc = json.loads(text) if as_json else yaml.load(text, Loader=_LOADER)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{origin}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise BadInputError(f"{origin}{line}: not valid YAML: {problem}") from None
    except RecursionError:
        raise BadInputError(f"{origin}: nested too deeply to read (the limit is {MAX_DEPTH} levels)") from None
    if as_json and _SURROGATE_ESCAPE.search(raw):
        _refuse_surrogates(doc, origin)
    return doc


def _refuse_surrogates(doc: Any, origin: str) -> None:
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                raise BadInputError(f"{origin}: the string {node[:40]!r} holds a lone UTF-16 surrogate (an "
                                    "unpaired \\ud800-\\udfff escape), which no store can keep; fix the escape")
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _path(parents: dict[int, tuple[int, str]], node_id: int, root_id: int, key: str = "") -> str:
    parts = [key] if key else []
    while node_id != root_id and node_id in parents:
        node_id, step = parents[node_id]
        parts.append(step)
    return "".join(reversed(parts)).lstrip(".") or "the document"


def _step(container: Any, key: Any) -> str:
    return f"[{key}]" if isinstance(container, list) else f".{key}"


def check_limits(doc: Any, origin: str) -> None:
    """Refuse a document too deep, with a string too long, an attribute too large, or aliases that
    expand it too far; the error names the place (``cis[3].description``)."""
    if not isinstance(doc, dict | list):
        return
    weight: dict[int, int] = {}
    parents: dict[int, tuple[int, str]] = {}
    active: set[int] = set()
    unique = 0
    root = id(doc)
    stack: list[tuple[Any, int, bool]] = [(doc, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        nid = id(node)
        children = node.values() if isinstance(node, dict) else node
        if done:
            own, total = 2, 2
            for child in children:
                if isinstance(child, str):
                    own += len(child)
                    total += len(child)
                elif isinstance(child, dict | list):
                    total += weight[id(child)]
                else:
                    own += 1
                    total += 1
            weight[nid] = total
            unique += own
            active.discard(nid)
            continue
        if nid in weight:
            continue
        if depth > MAX_DEPTH:
            raise BadInputError(f"{origin}: {_path(parents, nid, root)} is nested more than {MAX_DEPTH} levels "
                                "deep; flatten the value")
        active.add(nid)
        stack.append((node, depth, True))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, str):
                if len(child) > MAX_STRING:
                    raise BadInputError(
                        f"{origin}: {_path(parents, nid, root, _step(node, key))} is a string of {len(child):,} "
                        f"characters; the limit is {MAX_STRING:,}")
            elif isinstance(child, dict | list):
                cid = id(child)
                if cid in active:
                    raise BadInputError(f"{origin}: {_path(parents, nid, root, _step(node, key))} refers to "
                                        "itself (a recursive YAML alias)")
                if cid not in weight:
                    parents.setdefault(cid, (nid, _step(node, key)))
                    stack.append((child, depth + 1, False))
    if weight[root] - unique > MAX_ALIAS_EXPANSION:
        raise BadInputError(f"{origin}: YAML aliases expand this document to {weight[root]:,} (from {unique:,}); "
                            f"the limit is {MAX_ALIAS_EXPANSION:,} more: write the values out, or fewer of them")
    if isinstance(doc, dict):
        _check_attributes(doc, weight, origin)


def _size(value: Any, weight: dict[int, int]) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict | list):
        return weight[id(value)]
    return 1


def _check_attributes(doc: dict[str, Any], weight: dict[int, int], origin: str) -> None:
    for section, nested in (("cis", None), ("relationships", "attributes")):
        items = doc.get(section)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            attrs = item.get(nested) if nested and isinstance(item, dict) else item
            if not isinstance(attrs, dict):
                continue
            for name, value in attrs.items():
                if isinstance(value, dict | list) and _size(value, weight) > MAX_ATTRIBUTE:
                    where = f"{section}[{i}]" + (f".{nested}" if nested else "") + f".{name}"
                    raise BadInputError(f"{origin}: {where} is {_size(value, weight):,} large when written out; "
                                        f"an attribute may be at most {MAX_ATTRIBUTE:,}")
