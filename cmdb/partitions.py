"""Partitions: every CI belongs to one, and an API token may be limited to some.

A CI's partition is its ``partition`` attribute, or ``default`` when it has none. Keeping it an
ordinary attribute (rather than a column of its own) means both stores, search filters, history,
provenance, export and migration carry it with no store change: a partition moved by hand is an
event in history like any other edit. The price is that reconciliation decides between sources that
disagree, which is what we want: an explicit (manual) value beats every rule.

Rules assign a partition to the items of a batch by the batch's source and scope; the first rule
that matches wins and an item that names its partition keeps it. Rules live in the configuration
file (``cmdb.config``)::

    partitions:
      - {source: aws, partition: aws}            # source: exact name or a glob (import:*)
      - {source: scan, scope: 10.20.0.0/16, partition: dc-east}   # scope: a CIDR covering the batch's, or a glob

A source without a rule assigns nothing, so its CIs stay in whatever partition they are in (or in
``default``): a scan of a cloud address never pulls a CI out of the ``aws`` partition.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cmdb.batch import Batch
from cmdb.errors import ConfigError
from cmdb.scopes import scope_covers

PARTITION_ATTR = "partition"
DEFAULT_PARTITION = "default"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def partition_of(attrs: dict[str, Any]) -> str:
    return str(attrs.get(PARTITION_ATTR) or DEFAULT_PARTITION)


def check_partition_name(name: str, where: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: partition {name!r} must be a word of letters, digits and . _ : -")
    return name


@dataclass(frozen=True)
class PartitionRule:
    source: str
    partition: str
    scope: str | None = None

    def matches(self, source: str, scope: str | None) -> bool:
        if not fnmatch.fnmatchcase(source, self.source):
            return False
        if self.scope is None:
            return True
        if scope is None:
            return False
        if fnmatch.fnmatchcase(scope, self.scope):
            return True

        return scope_covers(self.scope, scope)


@dataclass(frozen=True)
class PartitionRules:
    rules: tuple[PartitionRule, ...] = ()

    @classmethod
    def from_list(cls, doc: Any, origin: str = "config") -> PartitionRules:
        if doc is None:
            return cls()
        if not isinstance(doc, list):
            raise ConfigError(f"{origin}: 'partitions' must be a list of {{source, [scope], partition}} rules")
        rules = []
        for i, item in enumerate(doc):
            where = f"{origin}: partitions[{i}]"
            if not isinstance(item, dict) or not item.get("source") or not item.get("partition"):
                raise ConfigError(f"{where} needs a source and a partition, e.g. {{source: aws, partition: aws}}")
            unknown = set(item) - {"source", "scope", "partition"}
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; use source, scope, partition")
            scope = item.get("scope")
            rules.append(PartitionRule(str(item["source"]), check_partition_name(str(item["partition"]), where),
                                       None if scope is None else str(scope)))
        return cls(tuple(rules))

    @classmethod
    def load(cls, path: Path | str | None = None) -> PartitionRules:
        """The ``partitions`` list of the configuration file in effect (``cmdb.config``); no rules when
        there is none. Cached per file version: it is asked once per batch."""
        from cmdb.config import config_path, env_overrides, load_document

        found = config_path(path)
        env = sorted((k, repr(v)) for k, v in env_overrides().items() if k[0] == "partitions")
        if found is None and not env:
            return cls()
        try:
            stat = found.stat() if found is not None else None
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {found}: {exc.strerror}") from None
        cache_key = (str(found), stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0, repr(env))
        cached = _CACHE.get(cache_key)
        if cached is None:
            doc = load_document(found)
            cached = _CACHE[cache_key] = cls.from_list(doc.section("partitions"), origin=str(found or "environment"))
        return cached

    def partition_for(self, source: str, scope: str | None) -> str | None:
        for rule in self.rules:
            if rule.matches(source, scope):
                return rule.partition
        return None


_CACHE: dict[tuple[str, int, int, str], PartitionRules] = {}


def assign_partitions(batch: Batch, rules: PartitionRules | None = None) -> Batch:
    """``batch`` with the rules' partition on every item that names none (in place; returned for chaining)."""
    rules = PartitionRules.load() if rules is None else rules
    partition = rules.partition_for(batch.source, batch.scope)
    if partition is not None:
        for rec in batch.cis:
            if not rec.attrs.get(PARTITION_ATTR):
                rec.attrs = {**rec.attrs, PARTITION_ATTR: partition}
    return batch
