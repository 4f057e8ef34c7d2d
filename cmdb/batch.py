"""The native batch: what every collector and importer hands to ``ingest``.

A batch is one source's description of some CIs and relationships, optionally a complete view of
a scope (a subnet, an AWS account+region, an import file). File form (JSON or YAML)::

    source: snmp              # who says this: manual, aws, ssh, snmp, import:<tool>, scan ...
    scope: 10.0.0.0/24        # what the run covered; lifecycle ages only what a complete run missed
    complete: true            # false for a partial run: it refreshes what it saw and ages nothing
    run_id: optional-id       # defaults to a new id
    cis:
      - {ref: sw1, class: Switch, hostname: sw1, serial_number: FOC1234}
    relationships:
      - {type: CONNECTED_TO, from: sw1, to: {class: Switch, hostname: core1}, attributes: {port: Gi0/1}}
    retire:                   # source manual only: what an operator declares gone
      cis: [{class: Host, hostname: old-box}]
      relationships: [{type: DEPENDS_ON, from: {class: Service, name: shop}, to: {class: Host, hostname: db1}}]

``ref`` names an item inside the batch; a relationship end is a ref or an identity reference
(``{class: ..., <identity attribute>: value}``) to a CI already in the store.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmdb.batch_input import check_limits, parse_document
from cmdb.errors import BadInputError

RESERVED_CI_KEYS = frozenset({"ref", "class"})


@dataclass(frozen=True)
class IdentityRef:
    """A reference to a CI by class and identity attributes, resolved against the store."""

    cls: str
    attrs: tuple[tuple[str, Any], ...]

    def describe(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.attrs)
        return f"{self.cls}({inner})"


Ref = str | IdentityRef


@dataclass
class CIRecord:
    """One CI as a source sees it; ``index`` is its position in the batch, for error messages."""

    cls: str
    attrs: dict[str, Any]
    ref: str | None = None
    index: int = 0

    def describe(self) -> str:
        label = self.ref or self.attrs.get("name") or self.attrs.get("hostname") or ""
        return f"cis[{self.index}]" + (f" ({self.cls} {label})" if label else f" ({self.cls})")


@dataclass
class RelRecord:
    """One relationship as a source sees it."""

    type: str
    src: Ref
    dst: Ref
    attrs: dict[str, Any] = field(default_factory=dict)
    index: int = 0

    def describe(self) -> str:
        def end(r: Ref) -> str:
            return r if isinstance(r, str) else r.describe()

        return f"relationships[{self.index}] ({end(self.src)} {self.type} {end(self.dst)})"


@dataclass
class Batch:
    """A source's batch of CIs and relationships; written all or nothing."""

    source: str
    cis: list[CIRecord] = field(default_factory=list)
    rels: list[RelRecord] = field(default_factory=list)
    scope: str | None = None
    complete: bool = False
    run_id: str = field(default_factory=lambda: "run-" + uuid.uuid4().hex[:16])
    actor: str | None = None
    origin: str = "batch"
    retire_cis: list[IdentityRef] = field(default_factory=list)
    retire_rels: list[RelRecord] = field(default_factory=list)

    def add_ci(self, cls: str, attrs: dict[str, Any], ref: str | None = None) -> CIRecord:
        """Append a CI numbered by its position, so an error names the item where it really is."""
        rec = CIRecord(cls, attrs, ref, len(self.cis))
        self.cis.append(rec)
        return rec

    def add_rel(self, rtype: str, src: Ref, dst: Ref, attrs: dict[str, Any] | None = None) -> RelRecord:
        """Append a relationship numbered by its position."""
        rec = RelRecord(rtype, src, dst, dict(attrs or {}), len(self.rels))
        self.rels.append(rec)
        return rec

    @classmethod
    def from_dict(cls, doc: Any, origin: str = "batch") -> Batch:
        """Parse the native format; errors name ``origin`` and the item index."""
        if not isinstance(doc, Mapping):
            raise BadInputError(f"{origin}: a batch must be a mapping with source, cis and relationships")
        unknown = set(doc) - {"source", "scope", "complete", "run_id", "actor", "cis", "relationships", "retire"}
        if unknown:
            raise BadInputError(f"{origin}: unknown top-level key(s) {', '.join(sorted(unknown))}")
        header = _header(doc, origin)
        source = header["source"]
        assert source is not None
        raw_cis = doc.get("cis") or []
        raw_rels = doc.get("relationships") or []
        if not isinstance(raw_cis, Sequence) or isinstance(raw_cis, str):
            raise BadInputError(f"{origin}: 'cis' must be a list")
        if not isinstance(raw_rels, Sequence) or isinstance(raw_rels, str):
            raise BadInputError(f"{origin}: 'relationships' must be a list")
        batch = cls(source=source.strip(), scope=header["scope"], complete=doc.get("complete") is True,
                    actor=header["actor"], origin=origin)
        if header["run_id"]:
            batch.run_id = header["run_id"]
        # ``type(x) is dict`` first: isinstance against an ABC costs a lookup per item of a large batch.
        for i, item in enumerate(raw_cis):
            if type(item) is not dict and not isinstance(item, Mapping):
                raise BadInputError(f"{origin}: cis[{i}] must be a mapping with 'class' and attributes")
            ci_cls = item.get("class")
            if not isinstance(ci_cls, str):
                raise BadInputError(f"{origin}: cis[{i}] has no 'class'")
            ref = item.get("ref")
            attrs = {k: v for k, v in item.items() if k not in RESERVED_CI_KEYS}
            batch.cis.append(CIRecord(ci_cls, attrs, str(ref) if ref is not None else None, i))
        for i, item in enumerate(raw_rels):
            if type(item) is not dict and not isinstance(item, Mapping):
                raise BadInputError(f"{origin}: relationships[{i}] must be a mapping with type, from, to")
            rtype = item.get("type")
            if not isinstance(rtype, str):
                raise BadInputError(f"{origin}: relationships[{i}] has no 'type'")
            attrs = item.get("attributes") or {}
            if type(attrs) is not dict and not isinstance(attrs, Mapping):
                raise BadInputError(f"{origin}: relationships[{i}].attributes must be a mapping")
            src = _parse_ref(item.get("from"), origin, i, "from")
            dst = _parse_ref(item.get("to"), origin, i, "to")
            batch.rels.append(RelRecord(rtype, src, dst, dict(attrs), i))
        if doc.get("retire") is not None:
            _parse_retire(batch, doc["retire"], origin)
        return batch

    @classmethod
    def from_file(cls, path: Path | str) -> Batch:
        """Read a JSON or YAML batch file; a malformed file is an error naming its line."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise BadInputError(f"cannot read {path}: {exc.strerror}") from exc
        return cls.from_bytes(raw, str(path), as_json=path.suffix.lower() == ".json")

    @classmethod
    def from_bytes(cls, raw: bytes, origin: str, *, as_json: bool | None = None) -> Batch:
        """A batch from raw bytes (a file, standard input); JSON or YAML, guessed when ``as_json`` is None."""
        if as_json is None:
            as_json = raw.lstrip()[:1] in (b"{", b"[")
        doc = parse_document(raw, origin, as_json=as_json)
        # The limits walk costs ~10% of an in-process ingest, so it guards bytes from outside (files,
        # standard input) rather than every from_dict; the API bounds its bodies itself (api/limits.py).
        check_limits(doc, origin)
        return cls.from_dict(doc, origin=origin)

    def to_dict(self) -> dict[str, Any]:
        def ref_out(r: Ref) -> Any:
            return r if isinstance(r, str) else {"class": r.cls, **dict(r.attrs)}

        out: dict[str, Any] = {
            "source": self.source,
            "scope": self.scope,
            "complete": self.complete,
            "run_id": self.run_id,
            "cis": [
                {**({"ref": c.ref} if c.ref else {}), "class": c.cls, **c.attrs} for c in self.cis
            ],
            "relationships": [
                {"type": r.type, "from": ref_out(r.src), "to": ref_out(r.dst),
                 **({"attributes": r.attrs} if r.attrs else {})}
                for r in self.rels
            ],
        }
        if self.retire_cis or self.retire_rels:
            out["retire"] = {"cis": [ref_out(r) for r in self.retire_cis],
                             "relationships": [{"type": r.type, "from": ref_out(r.src), "to": ref_out(r.dst)}
                                               for r in self.retire_rels]}
        return out


def _parse_retire(batch: Batch, doc: Any, origin: str) -> None:
    """The ``retire`` section: identity references only (a retirement names what exists already)."""
    if not isinstance(doc, Mapping) or set(doc) - {"cis", "relationships"}:
        raise BadInputError(f"{origin}: 'retire' must be a mapping with 'cis' and/or 'relationships'")
    if batch.source != "manual":
        raise BadInputError(f"{origin}: only a batch of source manual may retire items (this one is "
                            f"{batch.source!r}); other sources stop reporting an item and a complete run ages it")
    def identity_ref(value: Any, where: str) -> IdentityRef:
        if not isinstance(value, Mapping) or not isinstance(value.get("class"), str) or len(value) < 2:
            raise BadInputError(f"{origin}: {where} must be an identity reference {{class: ..., <identity"
                                f" attribute>: value}}, got {value!r}")
        ref = _parse_ref(value, origin, 0, where)
        assert isinstance(ref, IdentityRef)
        return ref

    for i, item in enumerate(doc.get("cis") or []):
        batch.retire_cis.append(identity_ref(item, f"retire.cis[{i}]"))
    for i, item in enumerate(doc.get("relationships") or []):
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
            raise BadInputError(f"{origin}: retire.relationships[{i}] needs type, from and to")
        src, dst = (identity_ref(item.get(end), f"retire.relationships[{i}].{end}") for end in ("from", "to"))
        batch.retire_rels.append(RelRecord(item["type"], src, dst, {}, i))


HEADER_STRINGS = ("source", "scope", "actor", "run_id")


def _header(doc: Mapping[str, Any], origin: str) -> dict[str, str | None]:
    """The header's fields, type-checked: a string where a string belongs, ``complete`` a boolean."""
    out: dict[str, str | None] = {}
    for name in HEADER_STRINGS:
        value = doc.get(name)
        if value is not None and not isinstance(value, str):
            raise BadInputError(f"{origin}: '{name}' must be a string, not {type(value).__name__} {value!r:.60}"
                                + ("; quote it" if isinstance(value, int | float | bool) else ""))
        out[name] = value
    if not (out["source"] or "").strip():
        raise BadInputError(f"{origin}: 'source' is required (e.g. manual, import:servicenow, snmp)")
    complete = doc.get("complete", False)
    if complete is not None and not isinstance(complete, bool):
        raise BadInputError(f"{origin}: 'complete' must be true or false (a boolean), not "
                            f"{type(complete).__name__} {complete!r:.60}; a complete run ages what it did not see")
    return out


def _ref_error(origin: str, i: int, end: str, problem: str) -> BadInputError:
    return BadInputError(f"{origin}: relationships[{i}].{end}: {problem}")


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _parse_ref(value: Any, origin: str, i: int, end: str) -> Ref:
    """One end of relationship ``i``; the error text is built only for an error (a large batch has
    hundreds of thousands of ends)."""
    if type(value) is str and value:
        return value
    if type(value) is dict or isinstance(value, Mapping):
        cls = value.get("class")
        if not isinstance(cls, str):
            raise _ref_error(origin, i, end, "an identity reference needs 'class' and identity attributes")
        pairs = [(k if type(k) is str else str(k), v) for k, v in value.items() if k != "class"]
        if len(pairs) > 1:
            pairs.sort(key=_first)
        attrs = tuple(pairs)
        if not attrs:
            raise _ref_error(origin, i, end, "an identity reference needs at least one identity attribute")
        return IdentityRef(cls, attrs)
    raise _ref_error(origin, i, end, f"expected a ref name or {{class: ..., <key>: ...}}, got {value!r}")
