"""API tokens on Neo4j (the ``TokenStore`` capability as a mixin of ``Neo4jStore``).

One ``:ApiToken`` node per token, unique by name and by hash; the constraints are created with the
first token, so stores that never serve the API are left as they were.
"""

from __future__ import annotations

import json
from typing import Any

from cmdb.errors import BadInputError, StoreError
from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.tokens import TokenRecord

_FIELDS = ("name", "role", "token_hash", "created_at", "expires_at", "partitions", "sources", "scopes",
           "created_by", "last_used", "revoked_at")
_LISTS = ("partitions", "sources", "scopes")
_CONSTRAINTS = (
    "CREATE CONSTRAINT cmdb_api_token_name IF NOT EXISTS FOR (t:ApiToken) REQUIRE t.name IS UNIQUE",
    "CREATE CONSTRAINT cmdb_api_token_hash IF NOT EXISTS FOR (t:ApiToken) REQUIRE t.token_hash IS UNIQUE",
)


def _record(props: dict[str, Any]) -> TokenRecord:
    values: dict[str, Any] = {f: props.get(f) for f in _FIELDS}
    for f in _LISTS:  # JSON text: a missing list (every partition) differs from an empty one
        values[f] = None if values[f] is None else json.loads(str(values[f]))
    return TokenRecord(**values)


class Neo4jTokens(Neo4jConnection):
    """API tokens: only a keyed hash of each is stored."""

    _token_schema_ready = False


    def add_token(self, record: TokenRecord) -> None:
        if not self._token_schema_ready:
            for statement in _CONSTRAINTS:
                self._autocommit(statement, "creating the token constraints")
            self._token_schema_ready = True
        props = {f: getattr(record, f) for f in _FIELDS}
        for f in _LISTS:
            if props[f] is not None:
                props[f] = json.dumps(props[f])
        try:
            rows = self._write(
                "OPTIONAL MATCH (old:ApiToken {name: $props.name}) WITH old WHERE old IS NULL"
                " CREATE (t:ApiToken) SET t = $props RETURN count(t) AS n",
                props={k: v for k, v in props.items() if v is not None},
            )
        except StoreError as exc:
            if "already exists" not in str(exc):
                raise
            rows = []
        if not rows or int(rows[0]["n"]) == 0:
            raise BadInputError(
                f"a token named {record.name!r} exists already; choose another name (names stay taken after"
                " revocation, so history keeps meaning one token)"
            )

    def _tokens_where(self, where: str, **params: Any) -> list[TokenRecord]:
        rows = self._read(f"MATCH (t:ApiToken) {where} RETURN t {{.*}} AS t ORDER BY t.name", **params)
        return [_record(r["t"]) for r in rows]

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        found = self._tokens_where("WHERE t.token_hash = $h", h=token_hash)
        return found[0] if found else None

    def get_token(self, name: str) -> TokenRecord | None:
        found = self._tokens_where("WHERE t.name = $name", name=name)
        return found[0] if found else None

    def tokens(self) -> list[TokenRecord]:
        return self._tokens_where("")

    def revoke_token(self, name: str, at: str) -> bool:
        rows = self._write(
            "MATCH (t:ApiToken {name: $name}) WHERE t.revoked_at IS NULL SET t.revoked_at = $at RETURN count(t) AS n",
            name=name, at=at,
        )
        return bool(rows) and int(rows[0]["n"]) > 0

    def touch_token(self, name: str, at: str) -> None:
        self._write(
            "MATCH (t:ApiToken {name: $name}) WHERE t.last_used IS NULL OR t.last_used < $at SET t.last_used = $at",
            name=name, at=at,
        )
