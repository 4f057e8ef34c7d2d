"""What a health report checks: recommended attributes, duplicate rules, relationship rules, staleness.

The defaults are data (``cmdb/schema/health.yaml``) beside the schema they speak about; a
deployment overrides any part with its own file (``CMDB_HEALTH_CONFIG`` or ``--config``). Class
names are checked against the schema when loading, so a typo is an error naming the file and the
class, not a rule that silently matches nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cmdb.errors import ConfigError
from cmdb.model import Schema
from cmdb.store.health import EdgeRule

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "schema" / "health.yaml"
ENV_VAR = "CMDB_HEALTH_CONFIG"


@dataclass(frozen=True)
class RelationshipRule:
    """CIs of ``classes`` (and subclasses) lacking every one of ``lacks`` are a correctness finding."""

    id: str
    title: str
    classes: tuple[str, ...]
    lacks: tuple[EdgeRule, ...]
    why: str = ""
    action: str = ""


@dataclass
class HealthConfig:
    stale_after_days: int = 30
    recommended: dict[str, list[str]] = field(default_factory=dict)
    hostname_classes: list[str] = field(default_factory=list)
    name_skip: list[str] = field(default_factory=list)
    rules: list[RelationshipRule] = field(default_factory=list)

    @classmethod
    def load(cls, schema: Schema, path: Path | str | None = None) -> HealthConfig:
        """The defaults, overridden by ``path`` or the file named by ``CMDB_HEALTH_CONFIG``."""
        doc = dict(_read(DEFAULT_CONFIG))
        extra = path or os.environ.get(ENV_VAR)
        origin = str(DEFAULT_CONFIG)
        if extra:
            origin = str(extra)
            override = _read(Path(extra))
            unknown = set(override) - {"stale_after_days", "recommended", "duplicates", "relationship_rules"}
            if unknown:
                raise ConfigError(f"{extra}: unknown key(s) {', '.join(sorted(unknown))}; known: stale_after_days,"
                                  " recommended, duplicates, relationship_rules")
            doc["recommended"] = {**(doc.get("recommended") or {}), **(override.get("recommended") or {})}
            rules = {r["id"]: r for r in doc.get("relationship_rules") or []}
            for r in override.get("relationship_rules") or []:
                if not isinstance(r, Mapping) or "id" not in r:
                    raise ConfigError(f"{extra}: each relationship rule needs an id")
                rules[str(r["id"])] = dict(r)
            doc["relationship_rules"] = list(rules.values())
            for key in ("stale_after_days", "duplicates"):
                if key in override:
                    doc[key] = override[key]
        return _build(doc, schema, origin)


def _read(path: Path) -> Mapping[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read the health configuration {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the health configuration {path} is not valid YAML: {exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise ConfigError(f"the health configuration {path} must be a mapping (see cmdb/schema/health.yaml)")
    return doc


def _classes(schema: Schema, names: Any, where: str) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where} must be a list of class names")
    unknown = [n for n in names if n not in schema.classes]
    if unknown:
        raise ConfigError(f"{where} names unknown class(es) {', '.join(unknown)}; known classes:"
                          f" {', '.join(sorted(schema.classes))}")
    return list(names)


def _build(doc: Mapping[str, Any], schema: Schema, origin: str) -> HealthConfig:
    days = doc.get("stale_after_days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ConfigError(f"{origin}: stale_after_days must be a whole number of days (1 or more), got {days!r}")
    recommended: dict[str, list[str]] = {}
    for cls, attrs in (doc.get("recommended") or {}).items():
        _classes(schema, [cls], f"{origin}: recommended")
        if not isinstance(attrs, list):
            raise ConfigError(f"{origin}: recommended.{cls} must be a list of attribute names")
        known = schema.classes[cls].attributes
        bad = [a for a in attrs if a not in known]
        if bad:
            raise ConfigError(f"{origin}: recommended.{cls} names attribute(s) {', '.join(map(str, bad))} that class"
                              f" {cls} does not have (known: {', '.join(sorted(known))})")
        recommended[cls] = [str(a) for a in attrs]
    dup = doc.get("duplicates") or {}
    if not isinstance(dup, Mapping):
        raise ConfigError(f"{origin}: duplicates must be a mapping with hostname_classes and name_skip")
    rules = []
    for raw in doc.get("relationship_rules") or []:
        rid = str(raw.get("id"))
        where = f"{origin}: relationship rule {rid!r}"
        lacks = []
        for entry in raw.get("lacks") or []:
            types = entry.get("types", "any")
            direction = entry.get("direction", "both")
            if direction not in ("out", "in", "both"):
                raise ConfigError(f"{where}: direction must be out, in or both, got {direction!r}")
            if types != "any":
                if not isinstance(types, list) or not types:
                    raise ConfigError(f"{where}: types must be 'any' or a list of relationship types")
                unknown = [t for t in types if t not in schema.relationships]
                if unknown:
                    raise ConfigError(f"{where} names unknown relationship type(s) {', '.join(map(str, unknown))}")
            lacks.append(EdgeRule(None if types == "any" else tuple(types), direction))
        if not lacks:
            raise ConfigError(f"{where} needs a non-empty lacks list")
        rules.append(RelationshipRule(rid, str(raw.get("title") or rid), tuple(_classes(schema, raw.get("classes"),
                                      f"{where}: classes")), tuple(lacks), str(raw.get("why") or ""),
                                      str(raw.get("action") or "")))
    return HealthConfig(
        stale_after_days=days, recommended=recommended,
        hostname_classes=_classes(schema, dup.get("hostname_classes") or [], f"{origin}: duplicates.hostname_classes"),
        name_skip=_classes(schema, dup.get("name_skip") or [], f"{origin}: duplicates.name_skip"), rules=rules,
    )


def concrete(schema: Schema, classes: list[str] | tuple[str, ...]) -> list[str]:
    """The concrete classes at or below ``classes`` (what CIs can be)."""
    return sorted({c for name in classes for c in schema.descendants_concrete(name)})


def checked_attributes(schema: Schema, config: HealthConfig, cls: str) -> tuple[list[str], list[str]]:
    """(required, recommended) attributes of concrete class ``cls``; recommended lists are inherited."""
    spec = schema.ci_class(cls)
    required = list(spec.required)
    recommended: list[str] = []
    for ancestor in reversed(spec.ancestors):
        for a in config.recommended.get(ancestor, []):
            if a not in required and a not in recommended:
                recommended.append(a)
    return required, recommended
