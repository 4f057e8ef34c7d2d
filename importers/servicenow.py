"""ServiceNow CMDB records (exports or Table API pulls) into batches (source ``import:servicenow``).

Input: records of ``cmdb_ci_*`` tables (``sys_id``, ``sys_class_name``, name, serial, IP, MAC, FQDN,
``owned_by``, ``support_group`` ...) and of ``cmdb_rel_ci`` (``parent``, ``child``, ``type`` such as
``Depends on::Used by``). A field may be a plain value (a CSV or JSON export) or the Table API's
``{"value": ..., "display_value": ...}`` (``sysparm_display_value=all``). The class, relationship and
field tables are ``servicenow_map.yaml``, which a user extends with a file of the same shape.

Every CI carries ``external_ids: [servicenow:<sys_id>]``, an identity key of every class, so a
re-import updates the CIs it made; its serial, MACs, FQDN or hostname+IP still merge it with the
same box found by discovery. ``owned_by`` becomes OWNED_BY a Person (external id of the sys_user,
named by the display value), ``support_group`` SUPPORTED_BY a Team (by name). Relationships are
batched after the CIs and name their ends by external id, so they may span batches.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cmdb.batch import Batch, CIRecord, IdentityRef, RelRecord
from cmdb.errors import BadInputError
from cmdb.model import Schema
from importers.tabular import read_rows

SOURCE = "import:servicenow"
DEFAULT_MAP = Path(__file__).with_name("servicenow_map.yaml")
REL_FIELDS = frozenset({"parent", "child", "type"})


@dataclass
class SnowMap:
    classes: dict[str, tuple[str, dict[str, Any]]]
    relationships: dict[str, tuple[str, bool]]
    fields: dict[str, str]


def load_snow_map(schema: Schema, extra: Path | None = None) -> SnowMap:
    """The default table, overlaid with ``extra``; every class and type checked against the schema."""
    snow = SnowMap({}, {}, {})
    for path in [DEFAULT_MAP, *([extra] if extra else [])]:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise BadInputError(f"cannot read the ServiceNow map {path}: {exc}") from None
        if not isinstance(doc, dict):
            raise BadInputError(f"{path}: expected a mapping with classes, relationships and fields")
        for name, body in (doc.get("classes") or {}).items():
            body = body if isinstance(body, dict) else {"class": body}
            cls = str(body.get("class"))
            if cls not in schema.classes or schema.classes[cls].abstract:
                raise BadInputError(f"{path}: classes.{name}: {cls!r} is not a concrete class of the schema")
            snow.classes[str(name)] = (cls, dict(body.get("defaults") or {}))
        for name, body in (doc.get("relationships") or {}).items():
            body = body if isinstance(body, dict) else {"type": body}
            rtype = str(body.get("type"))
            if rtype not in schema.relationships:
                raise BadInputError(f"{path}: relationships.{name}: unknown relationship type {rtype!r}")
            snow.relationships[str(name)] = (rtype, bool(body.get("reverse", False)))
        for column, attr in (doc.get("fields") or {}).items():
            snow.fields[str(column)] = str(attr)
    return snow


def value(v: Any) -> Any:
    """The stored value of a field (the sys_id of a reference)."""
    if isinstance(v, Mapping):
        return v.get("value")
    return v


def display(v: Any) -> Any:
    """What a person reads (the name of a referenced user or group)."""
    if isinstance(v, Mapping):
        return v.get("display_value") or v.get("value")
    return v


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


@dataclass
class SnowReading:
    batches: list[Batch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    labels: list[list[str]] = field(default_factory=list)


def _ci_attrs(rec: Mapping[str, Any], cls: str, defaults: dict[str, Any], snow: SnowMap,
              schema: Schema) -> dict[str, Any]:
    attrs_spec = schema.classes[cls].attributes
    attrs: dict[str, Any] = {k: v for k, v in defaults.items() if k in attrs_spec}
    for column, attr in snow.fields.items():
        raw = value(rec.get(column))
        if _blank(raw) or attr not in attrs_spec:
            continue
        spec = attrs_spec[attr]
        raw = raw.strip() if isinstance(raw, str) else raw
        if spec.is_list:
            raw = [p.strip() for p in str(raw).replace(";", ",").split(",") if p.strip()]
        attrs[attr] = raw
    if schema.is_a(cls, "Device"):
        name = display(rec.get("name"))
        if "hostname" not in attrs and isinstance(name, str) and name.strip():
            attrs["hostname"] = name.strip().split(".")[0].lower()
        if "fqdn" in attrs:
            attrs["fqdn"] = str(attrs["fqdn"]).lower()
        if attrs.get("ip_addresses") and "management_ip" not in attrs:
            attrs["management_ip"] = attrs["ip_addresses"][0]
    if cls == "Subnet":
        addr, mask = value(rec.get("network_address")), value(rec.get("netmask"))
        if not _blank(addr):
            try:
                attrs["cidr"] = str(ipaddress.ip_network(f"{addr}/{mask or 32}", strict=False))
            except ValueError:
                attrs["cidr"] = f"{addr}/{mask}"  # validation names the bad value
    if cls == "Service":
        crit = str(value(rec.get("busines_criticality")) or "")
        if crit[:1] in ("1", "2", "3", "4"):
            attrs["tier"] = int(crit[:1])
        kind = str(display(rec.get("service_classification")) or "").lower()
        if kind:
            attrs["service_type"] = "business" if "business" in kind else "technical"
    if cls == "Database" and "engine" not in attrs and rec.get("type"):
        attrs["engine"] = str(display(rec.get("type")))
    return attrs


def transform_servicenow(ci_records: Iterable[Mapping[str, Any]], rel_records: Iterable[Mapping[str, Any]],
                         snow: SnowMap, schema: Schema, *, batch_size: int = 5000,
                         origin: str = "servicenow") -> SnowReading:
    """CI batches of ``batch_size`` records (with their owners and support teams), then relationship batches."""
    out = SnowReading()
    classes: dict[str, str] = {}  # sys_id -> our class, for relationship ends
    batch: Batch | None = None
    labels: list[str] = []
    targets: dict[tuple[str, str], str] = {}

    def flush() -> None:
        nonlocal batch, labels, targets
        if batch is not None and batch.cis:
            out.batches.append(batch)
            out.labels.append(labels)
        batch, labels, targets = None, [], {}

    def target(cls: str, attrs: dict[str, Any], key: str, label: str) -> str:
        assert batch is not None
        ref = targets.get((cls, key))
        if ref is None:
            ref = targets[(cls, key)] = f"{cls}:{key}"
            batch.cis.append(CIRecord(cls, attrs, ref, len(batch.cis)))
            labels.append(label)
        return ref

    for n, rec in enumerate(ci_records):
        sys_id = value(rec.get("sys_id"))
        snow_cls = value(rec.get("sys_class_name"))
        where = f"{origin} record {n + 1} (sys_id {sys_id})"
        if _blank(sys_id):
            out.notes.append(f"{origin} record {n + 1}: no sys_id; skipped")
            continue
        mapped = snow.classes.get(str(snow_cls))
        if mapped is None:
            out.notes.append(f"{where}: class {snow_cls!r} is not in the ServiceNow map; skipped (add it "
                             "with --snow-map)")
            continue
        cls, defaults = mapped
        if batch is None:
            batch = Batch(source=SOURCE, scope=origin, complete=False, origin=origin)
        attrs = _ci_attrs(rec, cls, defaults, snow, schema)
        attrs["external_ids"] = [f"servicenow:{sys_id}"]
        classes[str(sys_id)] = cls
        ref = f"ci:{sys_id}"
        batch.cis.append(CIRecord(cls, attrs, ref, len(batch.cis)))
        labels.append(where)
        owner = rec.get("owned_by")
        if not _blank(value(owner)):
            person: dict[str, Any] = {"external_ids": [f"servicenow:{value(owner)}"]}
            if not _blank(display(owner)) and display(owner) != value(owner):
                person["name"] = str(display(owner))
            pref = target("Person", person, str(value(owner)), f"{where} owned_by")
            batch.rels.append(RelRecord("OWNED_BY", ref, pref, {}, len(batch.rels)))
        group = rec.get("support_group")
        if not _blank(display(group)):
            team: dict[str, Any] = {"name": str(display(group))}
            if value(group) != display(group):
                team["external_ids"] = [f"servicenow:{value(group)}"]
            tref = target("Team", team, str(display(group)), f"{where} support_group")
            batch.rels.append(RelRecord("SUPPORTED_BY", ref, tref, {}, len(batch.rels)))
        if len(batch.cis) >= batch_size:
            flush()
    flush()

    # Everything in one batch (the common case): relationships name their ends by ref, so a dry run
    # can plan them too; otherwise relationship batches follow and find their ends by external id.
    single = out.batches[0] if len(out.batches) == 1 else None
    rels: list[RelRecord] = []
    for n, rec in enumerate(rel_records):
        parent, child, kind = value(rec.get("parent")), value(rec.get("child")), display(rec.get("type"))
        where = f"{origin} cmdb_rel_ci record {n + 1} ({parent} {kind} {child})"
        mapped_rel = snow.relationships.get(str(kind))
        if mapped_rel is None:
            out.notes.append(f"{where}: relationship type {kind!r} is not in the ServiceNow map; skipped")
            continue
        if str(parent) not in classes or str(child) not in classes:
            out.notes.append(f"{where}: an end is not among the imported CIs; skipped")
            continue
        rtype, reverse = mapped_rel
        src, dst = (child, parent) if reverse else (parent, child)
        if single is not None:
            single.rels.append(RelRecord(rtype, f"ci:{src}", f"ci:{dst}", {}, len(single.rels)))
            continue
        rels.append(RelRecord(rtype, _ref(classes, str(src)), _ref(classes, str(dst)), {}, len(rels)))
        if len(rels) >= batch_size:
            out.batches.append(Batch(source=SOURCE, scope=origin, origin=f"{origin} relationships", rels=rels))
            out.labels.append([])
            rels = []
    if rels:
        out.batches.append(Batch(source=SOURCE, scope=origin, origin=f"{origin} relationships", rels=rels))
        out.labels.append([])
    return out


def _ref(classes: dict[str, str], sys_id: str) -> IdentityRef:
    return IdentityRef(classes[sys_id], (("external_ids", [f"servicenow:{sys_id}"]),))


def read_export(paths: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(CI records, cmdb_rel_ci records) of export files: CSV, JSON (``{"records": [...]}``,
    ``{"result": [...]}`` or a list) or JSON Lines; a file of relationships is told by its columns."""
    cis: list[dict[str, Any]] = []
    rels: list[dict[str, Any]] = []
    for path in paths:
        rows = _export_rows(path)
        for line, row in rows:
            if "__error__" in row:
                raise BadInputError(f"{path}:{line}: {row['__error__']}")
            (rels if row.keys() >= REL_FIELDS else cis).append(row)
    return cis, rels


def _export_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".json":
        import json

        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise BadInputError(f"{path}: not valid UTF-8 at byte {exc.start}; save the export as UTF-8") from None
        except json.JSONDecodeError as exc:
            raise BadInputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        except OSError as exc:
            raise BadInputError(f"cannot read {path}: {exc.strerror}") from None
        if isinstance(doc, dict):
            doc = doc.get("records", doc.get("result"))
        if not isinstance(doc, list):
            raise BadInputError(f"{path}: expected a ServiceNow export: {{\"records\": [...]}} or "
                                "{\"result\": [...]}")
        for i, row in enumerate(doc):
            yield i + 1, row if isinstance(row, dict) else {"__error__": f"record {i + 1} is not an object"}
        return
    for line, row in read_rows(path):
        if "sys_id" not in row:
            raise BadInputError(f"{path}:{line}: no sys_id column; export the table with its sys_id")
        yield line, row
