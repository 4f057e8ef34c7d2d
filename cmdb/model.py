"""The CI model: classes, typed attributes, identity keys and relationship semantics.

The model is data (``cmdb/schema/core.yaml``) so a deployment can add classes, attributes or
relationship types with an extension file without editing code. This module loads and merges
those files and validates attribute values against them.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml

from cmdb.errors import BadInputError, SchemaError, UnknownClassError

CORE_SCHEMA = Path(__file__).parent / "schema" / "core.yaml"

ScalarType = Literal["string", "int", "float", "bool", "datetime", "date", "ip", "cidr", "mac", "dict"]
SCALAR_TYPES: frozenset[str] = frozenset(
    ["string", "int", "float", "bool", "datetime", "date", "ip", "cidr", "mac", "dict"]
)
ImpactDirection = Literal["to_source", "to_target", "both", "none"]
IMPACT_DIRECTIONS: frozenset[str] = frozenset(["to_source", "to_target", "both", "none"])

_MAC_HEX = re.compile(r"[^0-9a-f]")


@dataclass(frozen=True)
class AttributeSpec:
    """One typed attribute; ``item_type`` is set for list attributes."""

    name: str
    type: str
    item_type: str | None = None
    required: bool = False
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    description: str = ""

    @property
    def is_list(self) -> bool:
        return self.item_type is not None

    def validate(self, value: Any) -> Any:
        """Return the canonical form of ``value`` or raise ValueError saying what is expected."""
        if value is None:
            return None
        if self.item_type is not None:
            if type(value) is not list and (isinstance(value, str | bytes) or not isinstance(value, Iterable)):
                raise ValueError(f"expected a list of {self.item_type}, got {type(value).__name__}")
            items = [self._scalar(self.item_type, v) for v in value if v is not None]
            # Lists are sets in meaning (MACs, IPs, SANs): sorted and deduplicated so order never
            # shows up as a change.
            return sorted(set(items))
        return self._scalar(self.type, value)

    def _scalar(self, kind: str, value: Any) -> Any:
        out: Any
        if kind == "string":
            if type(value) is str:
                out = value
            elif not isinstance(value, str | int | float) or isinstance(value, bool):
                raise ValueError(f"expected a string, got {type(value).__name__}")
            else:
                out = str(value)
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError(f"expected an integer, got {value!r}")
            try:
                out = int(value)
            except ValueError:
                raise ValueError(f"expected an integer, got {value!r}") from None
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"expected a number, got {value!r}")
            try:
                out = float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        elif kind == "bool":
            if isinstance(value, bool):
                out = value
            elif isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
                out = value.lower() in ("true", "yes", "1")
            else:
                raise ValueError(f"expected true or false, got {value!r}")
        elif kind == "datetime":
            out = _canonical_datetime(value)
        elif kind == "date":
            out = _canonical_date(value)
        elif kind == "ip":
            try:
                out = str(ipaddress.ip_address(str(value)))
            except ValueError:
                raise ValueError(f"expected an IP address, got {value!r}") from None
        elif kind == "cidr":
            try:
                out = str(ipaddress.ip_network(str(value), strict=False))
            except ValueError:
                raise ValueError(f"expected a CIDR network like 10.0.0.0/24, got {value!r}") from None
        elif kind == "mac":
            out = canonical_mac(value)
        elif kind == "dict":
            if not isinstance(value, Mapping):
                raise ValueError(f"expected a mapping, got {type(value).__name__}")
            out = dict(value)
        else:  # pragma: no cover - rejected when the schema loads
            raise ValueError(f"unknown type {kind}")
        if self.enum is not None and out not in self.enum:
            raise ValueError(f"{out!r} is not one of {', '.join(self.enum)}")
        if self.minimum is not None and isinstance(out, int | float) and out < self.minimum:
            raise ValueError(f"{out} is below the minimum {self.minimum:g}")
        if self.maximum is not None and isinstance(out, int | float) and out > self.maximum:
            raise ValueError(f"{out} is above the maximum {self.maximum:g}")
        return out


def canonical_mac(value: Any) -> str:
    """Canonical lower-case colon form, whatever separator style a source uses."""
    hexdigits = _MAC_HEX.sub("", str(value).lower())
    if len(hexdigits) != 12:
        raise ValueError(f"expected a MAC address, got {value!r}")
    return ":".join(hexdigits[i : i + 2] for i in range(0, 12, 2))


# Virtual-router MACs: every member of a redundancy group answers with the same one, so none of them
# names one box (HSRP v1 and v2, VRRP for IPv4 and IPv6, GLBP).
SHARED_MAC_PREFIXES = ("00:00:0c:07:ac:", "00:00:0c:9f:f", "00:00:5e:00:01:", "00:00:5e:00:02:", "00:07:b4:")


def identifying_mac(value: Any) -> bool:
    """Whether a MAC names one box, the rule every source follows for ``mac_addresses`` identity keys.

    Not: anything unparseable, all-zero, group (multicast and broadcast: the I/G bit), and virtual
    router MACs (``SHARED_MAC_PREFIXES``), which an HSRP/VRRP/GLBP peer answers with too and which
    would merge the two boxes of a redundant pair into one CI.
    """
    if value is None:
        return False
    try:
        mac = canonical_mac(value)
    except ValueError:
        return False
    if mac == "00:00:00:00:00:00" or int(mac[:2], 16) & 1:
        return False
    return not mac.startswith(SHARED_MAC_PREFIXES)


def _canonical_datetime(value: Any) -> str:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO-8601 time like 2027-01-31T00:00:00Z, got {value!r}") from None
    else:
        raise ValueError(f"expected an ISO-8601 time, got {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical_date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            pass
    raise ValueError(f"expected a date like 2027-01-31, got {value!r}")


@dataclass(frozen=True)
class RelationshipType:
    """A relationship type and how failure impact crosses it."""

    name: str
    impact: str = "none"
    effect: str = "down"
    group: bool = False
    stakeholder: str | None = None
    stakeholder_side: str = "target"
    from_classes: tuple[str, ...] = ()
    to_classes: tuple[str, ...] = ()
    description: str = ""


@dataclass
class CIClass:
    """A CI class; attributes and identity keys are inherited from its parents."""

    name: str
    parent: str | None
    abstract: bool
    own_attributes: dict[str, AttributeSpec]
    own_identity: list[tuple[str, ...]] | None
    own_name_from: tuple[str, ...] | None
    own_identity_domain: str | None
    name_format: str | None = None
    attributes: dict[str, AttributeSpec] = field(default_factory=dict)
    identity: list[tuple[str, ...]] = field(default_factory=list)
    name_from: tuple[str, ...] = ()
    identity_domain: str = ""
    ancestors: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()


class Schema:
    """The merged model: core schema plus any extension files."""

    def __init__(self, classes: dict[str, CIClass], relationships: dict[str, RelationshipType]) -> None:
        self.classes = classes
        self.relationships = relationships

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def load(cls, extensions: Iterable[Path | str] = ()) -> Schema:
        """The core schema plus extension files, merged in order."""
        return cls.from_documents((str(ext), _read_yaml(Path(ext))) for ext in extensions)

    @classmethod
    def from_documents(cls, extensions: Iterable[tuple[str, Mapping[str, Any]]]) -> Schema:
        """The core schema plus extension documents ``(origin, mapping)``, merged in order (the
        documents a store keeps: ``cmdb.schema_store``)."""
        docs: list[tuple[str, Mapping[str, Any]]] = [(str(CORE_SCHEMA), _read_yaml(CORE_SCHEMA)), *extensions]
        raw_classes: dict[str, dict[str, Any]] = {}
        raw_rels: dict[str, dict[str, Any]] = {}
        for origin, doc in docs:
            for name, body in (doc.get("classes") or {}).items():
                body = dict(body or {})
                if name in raw_classes:
                    # Extending an existing class: only new attributes (and identity) may be added.
                    known = raw_classes[name]
                    attrs = dict(known.get("attributes") or {})
                    for attr, spec in (body.get("attributes") or {}).items():
                        if attr in attrs:
                            raise SchemaError(f"{origin}: class {name} already has attribute {attr!r}")
                        attrs[attr] = spec
                    known["attributes"] = attrs
                    if "identity" in body:
                        known["identity"] = body["identity"]
                else:
                    body["_origin"] = origin
                    raw_classes[name] = body
            for name, body in (doc.get("relationships") or {}).items():
                raw_rels[name] = {**raw_rels.get(name, {}), **dict(body or {}), "_origin": origin}
        return cls(_build_classes(raw_classes), _build_relationships(raw_rels, raw_classes))

    # -- lookups -----------------------------------------------------------------------------
    def ci_class(self, name: str) -> CIClass:
        try:
            return self.classes[name]
        except KeyError:
            raise UnknownClassError(
                f"unknown CI class {name!r}; known classes: {', '.join(sorted(self.concrete_classes))}."
                " If it is defined by a schema extension, add that extension to this store first:"
                " cmdb schema add FILE (see cmdb schema list)"
            ) from None

    def rel_type(self, name: str) -> RelationshipType:
        try:
            return self.relationships[name]
        except KeyError:
            raise UnknownClassError(
                f"unknown relationship type {name!r}; known types: {', '.join(sorted(self.relationships))}."
                " If it is defined by a schema extension, add that extension to this store first:"
                " cmdb schema add FILE (see cmdb schema list)"
            ) from None

    @cached_property
    def concrete_classes(self) -> list[str]:
        return sorted(n for n, c in self.classes.items() if not c.abstract)

    def is_a(self, class_name: str, ancestor: str) -> bool:
        """Whether ``class_name`` is ``ancestor`` or one of its descendants."""
        c = self.classes.get(class_name)
        return c is not None and ancestor in c.ancestors

    def descendants(self, class_name: str) -> list[str]:
        """The class and all classes below it (for searches by a parent class)."""
        self.ci_class(class_name)
        return sorted(n for n, c in self.classes.items() if class_name in c.ancestors)

    # -- validation --------------------------------------------------------------------------
    def validate(self, class_name: str, attrs: Mapping[str, Any], *, partial: bool = True) -> dict[str, Any]:
        """Canonical attributes for a CI of ``class_name``; raises BadInputError naming the field.

        ``partial`` allows a source to describe only what it sees; required attributes are checked
        by ``check_required`` when a CI is first created.
        """
        ci_class = self.ci_class(class_name)
        if ci_class.abstract:
            raise UnknownClassError(
                f"class {class_name!r} is abstract; use one of: {', '.join(self.descendants_concrete(class_name))}"
            )
        out: dict[str, Any] = {}
        for key, value in attrs.items():
            spec = ci_class.attributes.get(key)
            if spec is None:
                raise BadInputError(
                    f"attribute {key!r} is not defined for class {class_name} "
                    f"(known: {', '.join(sorted(ci_class.attributes))}); if a schema extension defines it,"
                    " add that extension to this store first: cmdb schema add FILE"
                )
            try:
                canonical = spec.validate(value)
            except ValueError as exc:
                raise BadInputError(f"attribute {key!r} of class {class_name}: {exc}") from None
            if canonical is not None:
                out[key] = canonical
        if not partial:
            self.check_required(class_name, out)
        return out

    def descendants_concrete(self, class_name: str) -> list[str]:
        return [n for n in self.descendants(class_name) if not self.classes[n].abstract]

    def with_defaults(self, class_name: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
        defaults = self.ci_class(class_name).defaults
        if not defaults:
            return dict(attrs)
        return {**defaults, **attrs}

    def check_required(self, class_name: str, attrs: Mapping[str, Any]) -> None:
        missing = [n for n in self.ci_class(class_name).required if attrs.get(n) is None]
        if missing:
            raise BadInputError(f"class {class_name} requires attribute(s) {', '.join(missing)}")

    def display_name(self, class_name: str, attrs: Mapping[str, Any]) -> str | None:
        if attrs.get("name"):
            return str(attrs["name"])
        ci_class = self.ci_class(class_name)
        if ci_class.name_format:
            try:
                return ci_class.name_format.format_map(attrs)
            except KeyError:
                pass
        for candidate in ci_class.name_from:
            if attrs.get(candidate):
                return str(attrs[candidate])
        return None


def parse_schema_text(text: str, origin: str) -> Mapping[str, Any]:
    """A schema document from YAML text (an extension kept in a store); errors name ``origin``."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SchemaError(f"schema extension {origin} is not valid YAML: {exc}") from exc
    if not isinstance(doc, Mapping) or set(doc) - {"classes", "relationships"}:
        raise SchemaError(f"schema extension {origin} must be a mapping with 'classes' and/or 'relationships'")
    return doc


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise SchemaError(f"cannot read schema file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SchemaError(f"schema file {path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise SchemaError(f"schema file {path} must be a mapping with 'classes' and/or 'relationships'")
    return doc


def _attribute(origin: str, cls: str, name: str, raw: Any) -> AttributeSpec:
    where = f"{origin}: {cls}.{name}"
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{where}: expected a mapping like {{type: string}}")
    kind = str(raw.get("type", "string"))
    item_type = None
    if kind.startswith("list[") and kind.endswith("]"):
        item_type = kind[5:-1]
        if item_type not in SCALAR_TYPES:
            raise SchemaError(f"{where}: unknown list item type {item_type!r}")
    elif kind not in SCALAR_TYPES:
        raise SchemaError(f"{where}: unknown type {kind!r}; use one of {', '.join(sorted(SCALAR_TYPES))}")
    enum = raw.get("enum")
    return AttributeSpec(
        name=name,
        type=kind,
        item_type=item_type,
        required=bool(raw.get("required", False)),
        enum=tuple(str(e) for e in enum) if enum else None,
        minimum=raw.get("min"),
        maximum=raw.get("max"),
        default=raw.get("default"),
        description=str(raw.get("description", "")),
    )


def _build_classes(raw: dict[str, dict[str, Any]]) -> dict[str, CIClass]:
    classes: dict[str, CIClass] = {}
    for name, body in raw.items():
        origin = body.get("_origin", "schema")
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
            raise SchemaError(f"{origin}: class name {name!r} must be CamelCase letters and digits")
        attrs = {a: _attribute(origin, name, a, spec) for a, spec in (body.get("attributes") or {}).items()}
        identity = body.get("identity")
        classes[name] = CIClass(
            name=name,
            parent=body.get("parent"),
            abstract=bool(body.get("abstract", False)),
            own_attributes=attrs,
            own_identity=[tuple(k) for k in identity] if identity is not None else None,
            own_name_from=tuple(body["name_from"]) if "name_from" in body else None,
            own_identity_domain=body.get("identity_domain"),
            name_format=body.get("name_format"),
        )
    for name in classes:
        _resolve(name, classes, ())
    return classes


def _resolve(name: str, classes: dict[str, CIClass], seen: tuple[str, ...]) -> CIClass:
    c = classes[name]
    if c.ancestors:
        return c
    if name in seen:
        raise SchemaError(f"class {name} inherits from itself via {' -> '.join(seen)}")
    if c.parent is None:
        c.attributes = dict(c.own_attributes)
        c.identity = list(c.own_identity or [])
        c.name_from = c.own_name_from or ()
        c.identity_domain = c.own_identity_domain or name
        c.ancestors = (name,)
    else:
        if c.parent not in classes:
            raise SchemaError(f"class {name} has unknown parent {c.parent!r}")
        p = _resolve(c.parent, classes, (*seen, name))
        shadowed = sorted(set(p.attributes) & set(c.own_attributes))
        if shadowed:
            raise SchemaError(f"class {name} already has attribute(s) {', '.join(shadowed)} from {p.name}")
        c.attributes = {**p.attributes, **c.own_attributes}
        c.identity = list(c.own_identity) if c.own_identity is not None else list(p.identity)
        c.name_from = c.own_name_from if c.own_name_from is not None else p.name_from
        # Classes right under the root each have their own identity domain; deeper classes share
        # their parent's, so a scanned Host and an SNMP Switch (both Devices) can match.
        if c.own_identity_domain:
            c.identity_domain = c.own_identity_domain
        elif p.parent is None:
            c.identity_domain = name
        else:
            c.identity_domain = p.identity_domain
        c.ancestors = (name, *p.ancestors)
    for key in c.identity:
        for attr in key:
            if attr not in c.attributes:
                raise SchemaError(f"class {name}: identity key uses unknown attribute {attr!r}")
    try:
        c.defaults = {a: s.validate(s.default) for a, s in c.attributes.items() if s.default is not None}
    except ValueError as exc:
        raise SchemaError(f"class {name}: a default value is invalid: {exc}") from None
    c.required = tuple(a for a, s in c.attributes.items() if s.required)
    return c


def _build_relationships(raw: dict[str, dict[str, Any]], classes: Mapping[str, Any]) -> dict[str, RelationshipType]:
    out: dict[str, RelationshipType] = {}
    for name, body in raw.items():
        origin = body.get("_origin", "schema")
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise SchemaError(f"{origin}: relationship type {name!r} must be UPPER_SNAKE_CASE")
        impact = str(body.get("impact", "none"))
        if impact not in IMPACT_DIRECTIONS:
            raise SchemaError(f"{origin}: {name}.impact must be one of {', '.join(sorted(IMPACT_DIRECTIONS))}")
        for side in ("from", "to"):
            for cls in body.get(side, []) or []:
                if cls not in classes:
                    raise SchemaError(f"{origin}: {name}.{side} names unknown class {cls!r}")
        out[name] = RelationshipType(
            name=name,
            impact=impact,
            effect=str(body.get("effect", "down")),
            group=bool(body.get("group", False)),
            stakeholder=body.get("stakeholder"),
            stakeholder_side=str(body.get("stakeholder_side", "target")),
            from_classes=tuple(body.get("from", []) or []),
            to_classes=tuple(body.get("to", []) or []),
            description=str(body.get("description", "")),
        )
    return out


_DEFAULT: Schema | None = None


def default_schema() -> Schema:
    """The core schema plus extensions named in ``CMDB_SCHEMA`` (colon-separated paths): for code that
    has no store at hand. With a store, use ``cmdb.schema_store.store_schema``: the extensions kept in
    the store (``CMDB_SCHEMA`` is only a deprecated fallback there)."""
    global _DEFAULT
    if _DEFAULT is None:
        ext = [p for p in os.environ.get("CMDB_SCHEMA", "").split(os.pathsep) if p]
        _DEFAULT = Schema.load(ext)
    return _DEFAULT
