"""The declarative mapping of a tabular file (CSV, JSON, YAML) onto CIs and relationships.

A mapping file says which column becomes which attribute of which class, which columns identify a
row's CI, how values are transformed, and which columns become relationships::

    name: assets                      # the batch source is import:assets
    class: Server                     # every row is one CI of this class ...
    class_column: kind                # ... or the class comes from a column,
    class_map: {vm: VirtualMachine, server: Server}   # optionally through a table
    identity: [serial, hostname]      # a row needs a value in at least one of these
    columns:
      hostname: {attribute: hostname, transforms: [strip, lower]}
      serial: serial_number           # shorthand: the attribute name
      ips: {attribute: ip_addresses, transforms: [{split: ";"}]}
      installed: {attribute: description, transforms: [{date: "%d/%m/%Y"}]}
    ignore: [notes]                   # columns deliberately left out
    relationships:
      - column: owner_email           # the row's CI OWNED_BY the Person with that email (created if new)
        type: OWNED_BY
        target: {class: Person, attribute: email}
        transforms: [lower]
    csv: {delimiter: ",", encoding: utf-8}

Every column of the file must be mapped or ignored, and every attribute must exist on its class,
so a typo fails when the mapping loads, not half way through a file. A row missing an attribute
the class requires is a bad row: an import never relies on the CI already existing.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cmdb.errors import BadInputError, CmdbError
from cmdb.model import AttributeSpec, Schema

Transform = str | dict[str, Any]
SIMPLE_TRANSFORMS = ("strip", "lower", "upper")
ARG_TRANSFORMS = ("split", "date", "datetime", "map", "prefix")


class RowError(Exception):
    """One bad cell: the column and why (the caller adds file and line)."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attribute: str
    transforms: list[Transform] = Field(default_factory=list)


class TargetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    cls: str = Field(alias="class")
    attribute: str


class RelationshipSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str
    type: str
    target: TargetSpec
    direction: Literal["out", "in"] = "out"
    transforms: list[Transform] = Field(default_factory=list)


class CsvOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("must be exactly one character")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        try:
            info = codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown encoding {v!r}") from None
        if info.name.startswith("utf-16") or info.name.startswith("utf-32"):
            raise ValueError(f"{v}: convert the file to UTF-8 (only byte-per-line encodings are streamed)")
        return v


class MappingSpec(BaseModel):
    """The mapping file as written; ``compile`` checks it against the schema."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    cls: str | None = Field(default=None, alias="class")
    class_column: str | None = None
    class_map: dict[str, str] = Field(default_factory=dict)
    identity: list[str] = Field(min_length=1)
    columns: dict[str, str | ColumnSpec]
    ignore: list[str] = Field(default_factory=list)
    relationships: list[RelationshipSpec] = Field(default_factory=list)
    csv: CsvOptions = Field(default_factory=CsvOptions)
    batch_size: int = Field(default=5000, ge=1, le=10_000_000)

    @field_validator("name")
    @classmethod
    def _word(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v) or ":" in v:
            raise ValueError("must be one word (it becomes the source import:<name>)")
        return v

    @model_validator(mode="after")
    def _one_class_source(self) -> MappingSpec:
        if (self.cls is None) == (self.class_column is None):
            raise ValueError("give exactly one of 'class' or 'class_column'")
        return self


def _compile_transform(t: Transform, where: str) -> Callable[[Any], Any]:
    if isinstance(t, str):
        if t == "strip":
            return lambda v: v.strip() if isinstance(v, str) else v
        if t == "lower":
            return lambda v: v.lower() if isinstance(v, str) else [x.lower() for x in v] if isinstance(v, list) else v
        if t == "upper":
            return lambda v: v.upper() if isinstance(v, str) else [x.upper() for x in v] if isinstance(v, list) else v
        raise BadInputError(f"{where}: unknown transform {t!r}; use {', '.join(SIMPLE_TRANSFORMS + ARG_TRANSFORMS)}")
    if len(t) != 1:
        raise BadInputError(f"{where}: a transform with an argument is one key, e.g. {{split: ';'}}")
    (kind, arg), = t.items()
    if kind == "split":
        sep = str(arg)
        return lambda v: [p.strip() for p in v.split(sep) if p.strip()] if isinstance(v, str) else v
    if kind in ("date", "datetime"):
        fmt = str(arg)

        def parse(v: Any) -> Any:
            if not isinstance(v, str):
                return v
            try:
                dt = datetime.strptime(v.strip(), fmt)
            except ValueError:
                raise ValueError(f"{v!r} does not match the date format {fmt!r}") from None
            if kind == "date":
                return dt.date().isoformat()
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()

        return parse
    if kind == "map":
        if not isinstance(arg, Mapping):
            raise BadInputError(f"{where}: map takes a table like {{map: {{Y: true, N: false}}}}")
        table = {str(k): v for k, v in arg.items()}
        return lambda v: table.get(v, v) if isinstance(v, str) else v
    if kind == "prefix":
        pre = str(arg)
        return lambda v: pre + v if isinstance(v, str) else v
    raise BadInputError(f"{where}: unknown transform {kind!r}; use {', '.join(SIMPLE_TRANSFORMS + ARG_TRANSFORMS)}")


CACHE_LIMIT = 4096


class _Column:
    """One mapped column; ``seen`` remembers the canonical value of cells that repeat (an environment,
    a site, a vendor), so a million rows validate each distinct value once."""

    __slots__ = ("attribute", "column", "identity", "seen", "transforms")

    def __init__(self, column: str, attribute: str, transforms: list[Callable[[Any], Any]], identity: bool) -> None:
        self.column = column
        self.attribute = attribute
        self.transforms = transforms
        self.identity = identity
        self.seen: dict[tuple[str, Any], Any] = {}


class _Relation:
    __slots__ = ("column", "direction", "seen", "spec", "target_attr", "target_cls", "transforms", "type")

    def __init__(self, rel: RelationshipSpec, spec: AttributeSpec, transforms: list[Callable[[Any], Any]]) -> None:
        self.column = rel.column
        self.type = rel.type
        self.direction = rel.direction
        self.target_cls = rel.target.cls
        self.target_attr = rel.target.attribute
        self.spec = spec
        self.transforms = transforms
        self.seen: dict[str, list[Any]] = {}  # cell -> canonical values (owners repeat across rows)


class MappedRow:
    """One row as the mapping makes it: the CI and the relationship ends it names."""

    __slots__ = ("attrs", "cls", "rels")

    def __init__(self, cls: str, attrs: dict[str, Any], rels: list[tuple[_Relation, Any]]) -> None:
        self.cls = cls
        self.attrs = attrs
        self.rels = rels


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or v == []


class Mapping_:
    """A mapping checked against the schema: turns one row (column -> raw value) into a MappedRow."""

    def __init__(self, spec: MappingSpec, schema: Schema, origin: str) -> None:
        self.spec = spec
        self.schema = schema
        self.origin = origin
        self.name = spec.name
        self.source = f"import:{spec.name}"
        classes = [spec.cls] if spec.cls else sorted(set(spec.class_map.values()))
        for cls in classes:
            try:
                if schema.ci_class(cls).abstract:
                    raise BadInputError(f"{origin}: class {cls!r} is abstract; name a concrete class")
            except CmdbError as exc:
                raise BadInputError(f"{origin}: {exc}") from None
        self.classes = classes
        self.columns: list[_Column] = []
        for column, raw in spec.columns.items():
            col = raw if isinstance(raw, ColumnSpec) else ColumnSpec(attribute=raw)
            where = f"{origin}: columns.{column}"
            for cls in classes:
                if col.attribute not in schema.ci_class(cls).attributes:
                    raise BadInputError(f"{where}: attribute {col.attribute!r} is not defined for class {cls} "
                                        "(add it with a schema extension, or map the column to another attribute)")
            self.columns.append(_Column(column, col.attribute,
                                        [_compile_transform(t, where) for t in col.transforms],
                                        column in spec.identity))
        mapped_attrs = {c.attribute for c in self.columns}
        for cls in classes:
            missing = [a for a in schema.ci_class(cls).required if a not in mapped_attrs]
            if missing:
                raise BadInputError(f"{origin}: class {cls} requires {', '.join(missing)}; map a column to it")
        self.relations: list[_Relation] = []
        for i, rel in enumerate(spec.relationships):
            where = f"{origin}: relationships[{i}] ({rel.column})"
            try:
                rtype = schema.rel_type(rel.type)
                target = schema.ci_class(rel.target.cls)
            except CmdbError as exc:
                raise BadInputError(f"{where}: {exc}") from None
            attr_spec = target.attributes.get(rel.target.attribute)
            if attr_spec is None or not any(rel.target.attribute in key for key in target.identity):
                keys = sorted({a for key in target.identity for a in key})
                raise BadInputError(f"{where}: target attribute {rel.target.attribute!r} is not an identity "
                                    f"attribute of {rel.target.cls}; use one of {', '.join(keys)}")
            row_side, target_side = (rtype.from_classes, rtype.to_classes)
            if rel.direction == "in":
                row_side, target_side = target_side, row_side
            if target_side and not any(schema.is_a(rel.target.cls, c) for c in target_side):
                raise BadInputError(f"{where}: {rel.type} cannot point at a {rel.target.cls} this way")
            for cls in classes:
                if row_side and not any(schema.is_a(cls, c) for c in row_side):
                    raise BadInputError(f"{where}: {rel.type} cannot start from a {cls} this way")
            self.relations.append(_Relation(rel, attr_spec, [_compile_transform(t, where) for t in rel.transforms]))
        by_column = {c.column for c in self.columns} | {r.column for r in self.relations}
        for ident in spec.identity:
            if ident not in {c.column for c in self.columns}:
                raise BadInputError(f"{origin}: identity column {ident!r} is not mapped under columns")
        self.identity = list(spec.identity)
        self._identity_sets: dict[str, list[frozenset[str]]] = {}
        self.known_columns = by_column | set(spec.ignore) | ({spec.class_column} if spec.class_column else set())

    # -- headers ---------------------------------------------------------------------------------
    def check_header(self, header: list[str]) -> str | None:
        """A problem with the file's columns, or None (every mapped column present, none unknown)."""
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            return f"duplicate column(s) {', '.join(dupes)}"
        missing = sorted(c for c in self.known_columns - set(self.spec.ignore) if c not in header)
        unknown = sorted(h for h in header if h not in self.known_columns)
        problems = []
        if missing:
            problems.append(f"the mapping names column(s) {', '.join(missing)} that the file does not have "
                            f"(it has: {', '.join(header)})")
        if unknown:
            problems.append(f"column(s) {', '.join(unknown)} are not in the mapping; map them or list them "
                            "under ignore")
        return "; ".join(problems) or None

    # -- rows ------------------------------------------------------------------------------------
    def map_row(self, row: Mapping[str, Any]) -> MappedRow:
        """The row's CI class, canonical attributes and relationship targets; RowError on a bad cell."""
        if self.spec.cls is not None:
            cls = self.spec.cls
        else:
            col = self.spec.class_column
            assert col is not None
            raw = row.get(col)
            cls = self.spec.class_map.get(str(raw), str(raw)) if not _empty(raw) else ""
            if cls not in self.classes and cls not in self.schema.classes:
                raise RowError(col, f"no class for {raw!r}; add it to class_map")
            if self.schema.classes[cls].abstract:
                raise RowError(col, f"class {cls} is abstract")
        ci_class = self.schema.classes[cls]
        attrs: dict[str, Any] = {}
        identified = False
        for c in self.columns:
            value = row.get(c.column)
            hashable = type(value) is str
            if hashable:
                if not value or value.isspace():
                    continue
                canonical = c.seen.get((cls, value), c)
                if canonical is not c:
                    identified = identified or c.identity
                    if canonical is not None and canonical != []:
                        attrs[c.attribute] = canonical
                    continue
            elif value is None or value == []:
                continue
            identified = identified or c.identity
            raw = value
            try:
                for t in c.transforms:
                    value = t(value)
                spec = ci_class.attributes.get(c.attribute)
                if spec is None:
                    raise ValueError(f"class {cls} has no attribute {c.attribute!r}")
                canonical = spec.validate(value)
            except ValueError as exc:
                raise RowError(c.column, str(exc)) from None
            if hashable and len(c.seen) < CACHE_LIMIT:
                c.seen[(cls, raw)] = canonical
            if canonical is not None and canonical != []:
                attrs[c.attribute] = canonical
        if not identified:
            raise RowError(self.identity[0], f"no identity value: fill one of {', '.join(self.identity)}")
        for attr in ci_class.required:
            if attr not in attrs and ci_class.defaults.get(attr) is None:
                column = next(c.column for c in self.columns if c.attribute == attr)
                raise RowError(column, f"required for a {cls} ({attr})")
        have = attrs.keys() | ci_class.defaults.keys() if ci_class.defaults else attrs.keys()
        for key in self._keysets(cls):
            if key <= have:
                break
        else:
            names = " | ".join("+".join(k) for k in ci_class.identity)
            raise RowError(self.identity[0], f"not enough to identify a {cls}; it needs {names}")
        rels: list[tuple[_Relation, Any]] = []
        for r in self.relations:
            value = row.get(r.column)
            if _empty(value):
                continue
            cached = r.seen.get(value) if type(value) is str else None
            if cached is not None:
                rels.extend((r, v) for v in cached)
                continue
            try:
                out = value
                for t in r.transforms:
                    out = t(out)
                values = [r.spec.validate(v) for v in (out if isinstance(out, list) else [out])]
            except ValueError as exc:
                raise RowError(r.column, str(exc)) from None
            if type(value) is str and len(r.seen) < CACHE_LIMIT:
                r.seen[value] = values
            rels.extend((r, v) for v in values)
        return MappedRow(cls, attrs, rels)

    def _keysets(self, cls: str) -> list[frozenset[str]]:
        keys = self._identity_sets.get(cls)
        if keys is None:
            keys = self._identity_sets[cls] = [frozenset(k) for k in self.schema.classes[cls].identity]
        return keys


def load_mapping(path: Path | str, schema: Schema) -> Mapping_:
    """Read and check a mapping file; errors name the file and the field."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"cannot read mapping {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise BadInputError(f"mapping {path}: not valid UTF-8 at byte {exc.start}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise BadInputError(f"mapping {path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return mapping_from_dict(doc, schema, str(path))


def mapping_from_dict(doc: Any, schema: Schema, origin: str = "mapping") -> Mapping_:
    if not isinstance(doc, dict):
        raise BadInputError(f"{origin}: a mapping file is a YAML mapping with name, class, identity and columns")
    try:
        spec = MappingSpec.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'mapping'}: {e['msg']}" for e in exc.errors())
        raise BadInputError(f"{origin}: {problems}") from None
    return Mapping_(spec, schema, origin)
