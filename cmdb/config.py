"""One configuration file for the whole product, found in the standard places, overridable from the
environment, every section validated by the part of the product that owns it.

Which file: the first of

1. an explicit path (a command's ``--config FILE``) or ``CMDB_CONFIG``; a named file that is missing
   is an error;
2. ``$XDG_CONFIG_HOME/cmdb/config.yaml`` (``~/.config/cmdb/config.yaml`` when the variable is unset);
3. ``/etc/cmdb/config.yaml``.

None found: every section takes its defaults. One file, not a merge of several: what the product does
is read off one file (``cmdb config show`` names it and where each value came from).

Environment overrides: ``CMDB__<SECTION>__<KEY>[__<KEY>...]=value`` sets one value, parsed as YAML
(``72``, ``true``, ``[manual, ssh]``, ``{mail: ...}``), e.g. ``CMDB__RECONCILIATION__STALE_AFTER_RUNS=4``.

Sections (the core's own are ``reconciliation`` and ``partitions``; ``retention`` (``cmdb.retention``, which
imports this module) and the wings' are registered by the composition root with ``register_sections`` and
validated by their own pydantic models)::

    reconciliation: {precedence: [manual, aws, ssh, snmp, import, scan], fresh_for_hours: 168,
                     stale_after_runs: 3, retire_after_runs: 6, precedence_overrides: {"Host.os": [ssh, aws]}}
    partitions: [{source: aws, partition: aws}]
    retention: {jobs: 30d, idempotency_keys: 7d, outbox: 90d, health_snapshots: 365d, discovery_runs: 365d}
    priority: {...}            # impact.priority: the impact x urgency matrix
    tasks: {...}               # impact.automation_config: thresholds, channels, delivery, scheduler
    channels: {...}
    delivery: {...}
    scheduler: {...}

``check_config`` validates every registered section and reports every problem at once, each with its
path (``reconciliation.stale_after_runs``) and where the value came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cmdb.errors import CmdbError, ConfigError

ENV_FILE = "CMDB_CONFIG"
ENV_PREFIX = "CMDB__"
SYSTEM_FILE = Path("/etc/cmdb/config.yaml")


def user_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cmdb" / "config.yaml"


def search_path() -> list[Path]:
    """The standard places, in the order they are tried after an explicit file."""
    return [user_file(), SYSTEM_FILE]


def config_path(explicit: Path | str | None = None) -> Path | None:
    """The configuration file in effect (see the module docstring), or None for defaults only."""
    named = explicit or os.environ.get(ENV_FILE)
    if named:
        path = Path(named)
        if not path.is_file():
            how = "--config" if explicit else ENV_FILE
            raise ConfigError(f"configuration file {path} (named by {how}) does not exist; fix the path or unset it")
        return path
    return next((p for p in search_path() if p.is_file()), None)


@dataclass
class ConfigDocument:
    """The configuration file's content with the environment's overrides applied, and where each
    value came from (``origins``: key path -> ``file PATH`` or ``env NAME``)."""

    path: Path | None
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[str, ...], str] = field(default_factory=dict)
    branches: set[tuple[str, ...]] = field(default_factory=set)  # keys whose value is a mapping

    def section(self, name: str) -> Any:
        return self.data.get(name)

    def origin(self, key: tuple[str | int, ...]) -> str:
        """Where the value at ``key`` came from: itself or the closest enclosing value given whole (a list,
        a mapping set by one environment variable), else the default."""
        parts = tuple(str(k) for k in key)
        if parts in self.origins:
            return self.origins[parts]
        for n in range(len(parts) - 1, 0, -1):
            if parts[:n] in self.origins and parts[:n] not in self.branches:
                return self.origins[parts[:n]]
        return "default"

    def given_by(self, key: tuple[str | int, ...]) -> str:
        """Where the closest existing part of ``key`` came from: for a problem (a missing field names its
        mapping), else ``default``."""
        parts = tuple(str(k) for k in key)
        for n in range(len(parts), 0, -1):
            if parts[:n] in self.origins:
                return self.origins[parts[:n]]
        return "default"


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"configuration {path} must be a mapping of sections (reconciliation:, tasks: ...)")
    return doc


def _leaves(value: Any, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    yield prefix
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, (*prefix, str(k)))


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[tuple[str, ...], tuple[str, Any]]:
    """``CMDB__A__B=value`` -> {("a", "b"): ("CMDB__A__B", parsed value)}."""
    environ = os.environ if environ is None else environ
    out: dict[tuple[str, ...], tuple[str, Any]] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or len(name) <= len(ENV_PREFIX):
            continue
        key = tuple(p.lower() for p in name[len(ENV_PREFIX):].split("__"))
        if any(not p for p in key):
            raise ConfigError(f"environment variable {name}: use CMDB__SECTION__KEY (two underscores between parts)")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        out[key] = (name, value)
    return out


def load_document(explicit: Path | str | None = None, environ: Mapping[str, str] | None = None) -> ConfigDocument:
    """The configuration file in effect with the environment's overrides applied (not validated)."""
    path = config_path(explicit)
    doc = ConfigDocument(path, _read(path) if path else {})
    if path is not None:
        for key in _leaves(doc.data, ()):
            if key:
                doc.origins[key] = f"file {path}"
    for key, (name, value) in sorted(env_overrides(environ).items()):
        node = doc.data
        for part in key[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[key[-1]] = value
        for sub in _leaves(value, key):
            doc.origins[sub] = f"env {name}"
    doc.branches = {k for k in _leaves(doc.data, ()) if k and isinstance(_at(doc.data, k), Mapping)}
    return doc


def _at(data: Mapping[str, Any], key: tuple[str, ...]) -> Any:
    node: Any = data
    for part in key:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


# -- sections --------------------------------------------------------------------------------------
Validator = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class ConfigSections:
    """Top-level keys validated together by one function (a pydantic ``model_validate``): the wings'
    sections are registered by the composition root, so the core never imports a wing."""

    names: tuple[str, ...]
    validate: Validator
    owner: str


_REGISTRY: dict[str, ConfigSections] = {}


def register_sections(names: tuple[str, ...], validate: Validator, owner: str) -> None:
    group = ConfigSections(names, validate, owner)
    for name in names:
        _REGISTRY[name] = group


def registered_sections() -> dict[str, ConfigSections]:
    return dict(_REGISTRY)


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    message: str
    origin: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} ({self.origin})"


def _problems(doc: ConfigDocument, names: tuple[str, ...], exc: Exception) -> list[ConfigProblem]:
    if isinstance(exc, ValidationError):
        out = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            if len(names) == 1:
                loc = (names[0], *loc)
            path = ".".join(str(p) for p in loc) or names[0]
            out.append(ConfigProblem(path, e["msg"].removeprefix("Value error, "), doc.given_by(loc)))
        return out
    return [ConfigProblem(names[0] if len(names) == 1 else "/".join(names), str(exc), doc.given_by((names[0],)))]


def validate_document(doc: ConfigDocument) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """Every registered section validated: (validated objects by section group, every problem)."""
    problems: list[ConfigProblem] = []
    for name in doc.data:
        if name not in _REGISTRY:
            known = ", ".join(sorted(_REGISTRY)) or "none registered"
            hint = (" (the old flat format: move it under reconciliation:)"
                    if name in ReconciliationSettings.model_fields else "")
            problems.append(ConfigProblem(str(name), f"unknown section{hint}; known: {known}",
                                          doc.given_by((str(name),))))
    values: dict[str, Any] = {}
    seen: set[ConfigSections] = set()
    for group in _REGISTRY.values():
        if group in seen:
            continue
        seen.add(group)
        if len(group.names) == 1:
            raw: Any = doc.data.get(group.names[0])
        else:
            raw = {n: doc.data[n] for n in group.names if doc.data.get(n) is not None}
        try:
            values[group.names[0]] = group.validate(raw)
        except (ValidationError, CmdbError, ValueError, TypeError) as exc:
            problems.extend(_problems(doc, group.names, exc))
    return values, problems


def validated(doc: ConfigDocument, names: tuple[str, ...], validate: Validator, raw: Any) -> Any:
    """``validate(raw)`` for one section group; every problem in one ConfigError, each with its path and origin."""
    try:
        return validate(raw)
    except ValidationError as exc:
        problems = _problems(doc, names, exc)
    where = str(doc.path) if doc.path else "configuration (environment)"
    raise ConfigError(f"{where}: " + "; ".join(str(p) for p in problems) + "; check it with: cmdb config check")


def check_config(explicit: Path | str | None = None) -> tuple[ConfigDocument, list[ConfigProblem]]:
    """Load and validate everything; every problem is returned, none raised (but an unreadable file)."""
    doc = load_document(explicit)
    return doc, validate_document(doc)[1]


# -- the core's sections ---------------------------------------------------------------------------
class ReconciliationSettings(BaseModel):
    """The ``reconciliation`` section (``cmdb.reconcile.ReconcileConfig`` is built from it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    precedence: list[str] | None = None
    precedence_overrides: dict[str, list[str]] = {}
    fresh_for_hours: float = Field(default=168.0, gt=0)
    stale_after_runs: int = Field(default=3, ge=1)
    retire_after_runs: int = Field(default=6, ge=1)

    @model_validator(mode="after")
    def _order(self) -> ReconciliationSettings:
        if self.stale_after_runs > self.retire_after_runs:
            raise ValueError("stale_after_runs must not exceed retire_after_runs")
        return self


class PartitionRuleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    partition: str = Field(min_length=1)
    scope: str | None = None


def _reconciliation(raw: Any) -> ReconciliationSettings:
    return ReconciliationSettings.model_validate(raw or {})


def _partitions(raw: Any) -> list[PartitionRuleSettings]:
    from pydantic import TypeAdapter

    return TypeAdapter(list[PartitionRuleSettings]).validate_python(raw or [])


register_sections(("reconciliation",), _reconciliation, "cmdb.reconcile")
register_sections(("partitions",), _partitions, "cmdb.partitions")


def section_or_legacy(doc: ConfigDocument, name: str, legacy_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """One section as a mapping; ``legacy_keys`` at the top level (the old flat format) are taken too."""
    section = doc.section(name)
    if section is None and legacy_keys and any(k in doc.data for k in legacy_keys):
        section = {k: doc.data[k] for k in legacy_keys if k in doc.data}
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{doc.path or 'configuration'}: '{name}' must be a mapping")
    return section
