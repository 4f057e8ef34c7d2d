"""API tokens in the store: the record and the store capability that keeps them.

A store never sees a token, only its keyed hash (HMAC-SHA256 with the server key, see
``cmdb.tokens``): a dump, a backup or a read of the database alone cannot be turned into a
working token. Looking a token up is one primary-key read by that hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ROLES: tuple[str, ...] = ("viewer", "operator", "admin", "collector")


@dataclass
class TokenRecord:
    """One API token as stored: its name (the actor in history), role and reach; never the token."""

    name: str
    role: str
    token_hash: str
    created_at: str
    expires_at: str | None = None
    partitions: list[str] | None = None  # None: every partition
    sources: list[str] | None = None  # collector tokens: the batch sources it may write
    scopes: list[str] | None = None  # collector tokens: the scopes (CIDRs or names) it may write
    created_by: str | None = None
    last_used: str | None = None
    revoked_at: str | None = None

    def public(self) -> dict[str, object]:
        """What listings show: everything but the hash."""
        return {
            "name": self.name, "role": self.role, "partitions": self.partitions, "sources": self.sources,
            "scopes": self.scopes, "created_at": self.created_at, "created_by": self.created_by,
            "expires_at": self.expires_at, "last_used": self.last_used, "revoked_at": self.revoked_at,
        }


class TokenStore(Protocol):
    """The token capability every store implements (contract: ``tests/contract/test_tokens_contract.py``)."""

    def add_token(self, record: TokenRecord) -> None:
        """Insert a new token; a name already taken (even by a revoked token) raises BadInputError."""

    def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...

    def get_token(self, name: str) -> TokenRecord | None: ...

    def tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included, by name."""

    def revoke_token(self, name: str, at: str) -> bool:
        """Mark a token revoked; False when there is no live token of that name."""

    def touch_token(self, name: str, at: str) -> None:
        """Record that the token was used at ``at`` (only ever moves forward)."""
