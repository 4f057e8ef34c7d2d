"""API tokens: issue, verify, list and revoke; the store keeps only a keyed hash.

A token is ``cmdb_`` + 43 URL-safe characters (256 random bits), shown once when it is created.
The store keeps ``HMAC-SHA256(server key, token)``. The server key lives in a file of its own, not
in the store: a copy of the database (a backup, ``cmdb export``, a migration to Neo4j) then holds
nothing that can be checked against a guessed or leaked token, and rotating the key (deleting the
file) invalidates every token at once. The key file is ``CMDB_TOKEN_KEY_FILE`` when set, else
``<store file>.token-key`` beside a SQLite store (it travels with the file it protects and has the
same owner), else ``token-key`` in the user's config directory (Neo4j); it is created 0600 on first
use and refused when group or others may read it, like every secret file of the CMDB.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from platformdirs import user_config_dir

from cmdb.errors import BadInputError, CmdbError, ConfigError, NotFoundError
from cmdb.store.base import GraphStore, iso
from cmdb.store.tokens import ROLES, TokenRecord, TokenStore

TOKEN_PREFIX = "cmdb_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
KEY_BYTES = 32


class TokenRejectedError(CmdbError):
    """A presented token is unknown, revoked or expired (HTTP 401); says which, never echoes it."""


def token_store(store: GraphStore) -> TokenStore:
    """The store's token capability (both stores have it)."""
    if not all(hasattr(store, m) for m in ("add_token", "token_by_hash", "tokens", "revoke_token", "touch_token")):
        raise ConfigError(f"the store {store.url} cannot keep API tokens")
    return cast(TokenStore, store)


def key_file_for(store_url: str) -> Path:
    """Where the server key of the store at ``store_url`` lives (see the module docstring)."""
    named = os.environ.get("CMDB_TOKEN_KEY_FILE")
    if named:
        return Path(named)
    if store_url.startswith("sqlite:///"):
        path = store_url[len("sqlite:///"):]
        if path and path != ":memory:":
            return Path(path + ".token-key")
    elif "://" not in store_url and store_url != ":memory:":
        return Path(store_url + ".token-key")
    return Path(user_config_dir("cmdb")) / "token-key"


def load_server_key(path: Path, *, create: bool = True) -> bytes:
    """The key in ``path``, created (0600, 256 random bits) when missing and ``create`` is set."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            raise ConfigError(f"the token key file {path} does not exist; create a token with `cmdb tokens create`"
                              " (it creates the key) or point CMDB_TOKEN_KEY_FILE at the key") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it just now
            return load_server_key(path, create=False)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(KEY_BYTES) + "\n")
        return load_server_key(path, create=False)
    except OSError as exc:
        raise ConfigError(f"cannot read the token key file {path} ({exc.strerror})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"the token key file {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o});"
                          f" run chmod 600 {path}")
    try:
        text = path.read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError, UnicodeDecodeError):
        raise ConfigError(f"the token key file {path} does not hold a hex key; delete it to make a new one"
                          " (every token issued so far stops working)") from None
    if len(key) < 16:
        raise ConfigError(f"the token key in {path} is too short; delete the file to make a new one")
    return key


def hash_token(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``2w``, ``30m`` or combinations such as ``1d12h``."""
    spec = text.strip().lower()
    parts = _DURATION.findall(spec)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != spec.replace(" ", ""):
        raise BadInputError(f"cannot read the duration {text!r}; write e.g. 90d, 12h, 2w or 30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise BadInputError(f"the duration {text!r} must be longer than nothing")
    return timedelta(seconds=seconds)


def _names(values: list[str] | None, what: str) -> list[str] | None:
    if values is None:
        return None
    out = sorted({v.strip() for v in values if v.strip()})
    for v in out:
        if any(c.isspace() or c == "," for c in v):
            raise BadInputError(f"{what} {v!r} must be one word")
    return out


def create_token(
    store: GraphStore,
    key: bytes,
    name: str,
    role: str,
    *,
    partitions: list[str] | None = None,
    sources: list[str] | None = None,
    scopes: list[str] | None = None,
    expires: timedelta | None = None,
    created_by: str | None = None,
    now: datetime | None = None,
) -> tuple[str, TokenRecord]:
    """A new token and its stored record; the token itself is returned here and never again."""
    if not _NAME.fullmatch(name):
        raise BadInputError(f"token name {name!r}: use up to 64 letters, digits and . _ @ - (it is the actor"
                            " shown in history)")
    if role not in ROLES:
        raise BadInputError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    if role == "collector" and not sources:
        raise BadInputError("a collector token needs --sources naming the batch sources it may write (e.g. scan)")
    if role != "collector" and (sources or scopes):
        raise BadInputError("--sources and --scopes limit collector tokens only; use --role collector")
    now = now or datetime.now(UTC)
    token = TOKEN_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    record = TokenRecord(
        name=name, role=role, token_hash=hash_token(key, token), created_at=iso(now),
        expires_at=iso(now + expires) if expires else None, partitions=_names(partitions, "partition"),
        sources=_names(sources, "source"), scopes=_names(scopes, "scope"), created_by=created_by,
    )
    token_store(store).add_token(record)
    return token, record


def verify_token(store: GraphStore, key: bytes, token: str, now: datetime | None = None) -> TokenRecord:
    """The live record of ``token``; raises TokenRejectedError saying why (never showing the token)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise TokenRejectedError("the bearer token is not a CMDB token; create one with `cmdb tokens create`")
    record = token_store(store).token_by_hash(hash_token(key, token))
    if record is None:
        raise TokenRejectedError("the bearer token is not known to this CMDB; create one with `cmdb tokens create`")
    if record.revoked_at is not None:
        raise TokenRejectedError(f"token {record.name!r} was revoked at {record.revoked_at}; ask an admin for a new"
                                 " one")
    if record.expires_at is not None and record.expires_at <= iso(now or datetime.now(UTC)):
        raise TokenRejectedError(f"token {record.name!r} expired at {record.expires_at}; ask an admin for a new one")
    return record


def revoke_token(store: GraphStore, name: str, now: datetime | None = None) -> None:
    if not token_store(store).revoke_token(name, iso(now or datetime.now(UTC))):
        raise NotFoundError(f"no live token named {name!r}; `cmdb tokens list` shows them")


def list_tokens(store: GraphStore) -> list[dict[str, Any]]:
    return [r.public() for r in token_store(store).tokens()]
