"""Schema extensions on Neo4j (the ``SchemaExtensionStore`` capability as a part of ``Neo4jStore``).

One ``(:SchemaExtension {name, seq, text, added_at, added_by})`` node per extension, unique by name
(the constraint is created with the first one). Dumps carry them as ``schema_extension`` rows shaped
like the SQLite table, through the connection's ``_dump_extra`` / ``_restore_extra`` hooks; ``clear``
removes them with everything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.schema_ext import SchemaExtension
from cmdb.store.sqlite_schema import SCHEMA_EXT_TABLE

_CONSTRAINT = ("CREATE CONSTRAINT cmdb_schema_extension IF NOT EXISTS"
               " FOR (x:SchemaExtension) REQUIRE x.name IS UNIQUE")
_FIELDS = ("name", "text", "added_at", "added_by", "seq")


def _ext(props: dict[str, Any]) -> SchemaExtension:
    return SchemaExtension(props["name"], props["text"], props["added_at"], props.get("added_by"),
                           int(props["seq"]))


class Neo4jSchemaExtensions(Neo4jConnection):
    """Schema extensions as nodes beside the graph."""

    _schema_ext_ready = False

    def _ensure_schema_ext(self) -> None:
        if not self._schema_ext_ready:
            self._autocommit(_CONSTRAINT, "creating the schema extension constraint")
            self._schema_ext_ready = True

    def schema_extensions(self) -> list[SchemaExtension]:
        rows = self._read("MATCH (x:SchemaExtension) RETURN x {.*} AS x ORDER BY x.seq")
        return [_ext(r["x"]) for r in rows]

    def put_schema_extension(self, ext: SchemaExtension) -> SchemaExtension:
        self._ensure_schema_ext()
        rows = self._write(
            "OPTIONAL MATCH (o:SchemaExtension) WITH coalesce(max(o.seq), 0) AS top"
            " MERGE (x:SchemaExtension {name: $name}) ON CREATE SET x.seq = top + 1"
            " SET x.text = $text, x.added_at = $at, x.added_by = $by RETURN x {.*} AS x",
            name=ext.name, text=ext.text, at=ext.added_at, by=ext.added_by,
        )
        return _ext(rows[0]["x"])

    def remove_schema_extension(self, name: str) -> bool:
        rows = self._write("MATCH (x:SchemaExtension {name: $name}) DELETE x RETURN count(*) AS n", name=name)
        return bool(rows) and int(rows[0]["n"]) > 0

    def _dump_extra(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from super()._dump_extra()
        for ext in self.schema_extensions():
            yield SCHEMA_EXT_TABLE, {f: getattr(ext, f) for f in _FIELDS}

    def _restore_extra(self, records: Iterable[tuple[str, dict[str, Any]]]) -> Iterable[tuple[str, dict[str, Any]]]:
        return self._restore_schema_ext(super()._restore_extra(records))

    def _restore_schema_ext(self, records: Iterable[tuple[str, dict[str, Any]]]
                            ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Pass every record through but the extensions', which are written here as they go by."""
        for kind, row in records:
            if kind != SCHEMA_EXT_TABLE:
                yield kind, row
                continue
            self._ensure_schema_ext()
            self._restore_write("UNWIND $rows AS row CREATE (x:SchemaExtension) SET x = row",
                                [{f: row.get(f) for f in _FIELDS if row.get(f) is not None}])
