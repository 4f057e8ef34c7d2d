"""Schema extensions kept in the store: the record and the store capability that keeps them.

The schema a store's data was written against travels with the data (in dumps, migrations and
to every process that opens the store), so impact analysis and ingest never depend on which
environment variables a process happens to have. ``cmdb.schema_store`` merges them with the core
schema; ``SqliteSchemaExtensions`` (``sqlite_schema``) and ``Neo4jSchemaExtensions``
(``neo4j.schema_ext``) implement the capability. Contract: ``tests/contract/test_schema_ext_contract.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class SchemaExtension:
    """One extension document (YAML text, as added) under a name; ``seq`` is the merge order."""

    name: str
    text: str
    added_at: str
    added_by: str | None = None
    seq: int = 0


class SchemaExtensionStore(Protocol):
    """The schema-extension capability every store implements."""

    def schema_extensions(self) -> list[SchemaExtension]:
        """Every extension in merge order (the order names were first added)."""

    def put_schema_extension(self, ext: SchemaExtension) -> SchemaExtension:
        """Add an extension, or replace the text of one of the same name keeping its place; returns it
        as stored (with its ``seq``). Validating the text is the caller's job (``cmdb.schema_store``)."""

    def remove_schema_extension(self, name: str) -> bool:
        """Drop an extension; False when there is none of that name."""
