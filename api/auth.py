"""Who is calling: bearer tokens, roles and the ``require(role)`` dependency every route declares.

Roles: ``viewer`` reads; ``operator`` also edits CIs, starts discovery runs and posts batches;
``admin`` also manages tokens and configuration; ``collector`` may only post batches, for the
sources and scopes its token names. A route declares the least role it needs with
``Depends(require("viewer"))``; ``require("collector")`` marks the batch route, which operators
and admins may use too.

* No ``Authorization: Bearer`` header, or a token that is unknown, revoked or expired: 401 with
  ``WWW-Authenticate: Bearer``. A valid token whose role falls short: 403.
* A token is checked against the store's keyed hash (``cmdb.tokens``); verified tokens are kept
  for ``CACHE_SECONDS`` so a hot route does not read the store on every request (a revocation takes
  effect within that time). ``last_used`` is written at most once a minute per token, off the
  request path, so a busy writer never slows a read.
* No token, hash or key ever appears in a log line or an error body: errors name the token by its
  name, or say only that the presented one was not accepted.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cmdb.errors import CmdbError
from cmdb.store.base import GraphStore, iso, parse_iso
from cmdb.store.tokens import ROLES, TokenRecord
from cmdb.tokens import TokenRejectedError, key_file_for, load_server_key, token_store, verify_token

log = logging.getLogger("cmdb.api.auth")
RANK = {"viewer": 1, "operator": 2, "admin": 3}
CACHE_SECONDS = 5.0
TOUCH_EVERY_SECONDS = 60.0
bearer = HTTPBearer(auto_error=False, description="A CMDB API token (`cmdb tokens create`).")


@dataclass(frozen=True)
class Principal:
    """The caller: the token's name (the actor in history), its role and its reach."""

    name: str
    role: str
    partitions: frozenset[str] | None = None  # None: every partition
    sources: frozenset[str] | None = None  # collectors: the sources and scopes they may write
    scopes: frozenset[str] | None = None

    @classmethod
    def of(cls, rec: TokenRecord) -> Principal:
        def fs(values: list[str] | None) -> frozenset[str] | None:
            return None if values is None else frozenset(values)

        return cls(rec.name, rec.role, fs(rec.partitions), fs(rec.sources), fs(rec.scopes))


def role_allows(role: str, required: str) -> bool:
    """Whether a token of ``role`` may call a route that requires ``required``."""
    if required == "collector":
        return role in ("collector", "operator", "admin")
    if role == "collector":
        return False
    return RANK.get(role, 0) >= RANK[required]


def load_token_key(store: GraphStore) -> bytes:
    """The server key for ``store``'s tokens (``cmdb.tokens``), created 0600 when missing."""
    return load_server_key(key_file_for(store.url))


@dataclass(frozen=True)
class _Verified:
    """A token verified at ``checked`` (monotonic), its caller and when it expires (epoch seconds; None: never)."""

    checked: float
    record: TokenRecord
    principal: Principal
    expires: float | None


@dataclass
class TokenCache:
    """Verified tokens by keyed hash for ``CACHE_SECONDS``, and when each token's use was last recorded.

    A hit costs one HMAC and a dict look-up on the event loop: no store read, no lock (dict reads
    are atomic), no time formatting (the expiry is kept as epoch seconds)."""

    key: bytes
    entries: dict[bytes, _Verified] = field(default_factory=dict)
    touched: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    toucher: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="cmdb-token-touch"))

    def _digest(self, token: str) -> bytes:
        return hmac.digest(self.key, token.encode("utf-8"), "sha256")

    def cached_principal(self, store: GraphStore, token: str) -> Principal | None:
        """The caller of a token verified within ``CACHE_SECONDS`` and not expired since (memory only)."""
        hit = self.entries.get(self._digest(token))
        if hit is None:
            return None
        now = time.monotonic()
        if now - hit.checked >= CACHE_SECONDS or (hit.expires is not None and time.time() >= hit.expires):
            return None
        if now - self.touched.get(hit.record.name, -TOUCH_EVERY_SECONDS) >= TOUCH_EVERY_SECONDS:
            self._touch(store, hit.record, now)
        return hit.principal

    def cached(self, store: GraphStore, token: str) -> TokenRecord | None:
        """The record of a token verified within ``CACHE_SECONDS`` (memory only: no store read)."""
        principal = self.cached_principal(store, token)
        hit = self.entries.get(self._digest(token)) if principal is not None else None
        return hit.record if hit is not None else None

    def verify(self, store: GraphStore, token: str) -> TokenRecord:
        """``cached`` or else a store read (``verify_token``); raises TokenRejectedError."""
        rec = self.cached(store, token)
        if rec is not None:
            return rec
        rec = verify_token(store, self.key, token)
        now = time.monotonic()
        expires = parse_iso(rec.expires_at).timestamp() if rec.expires_at is not None else None
        with self.lock:
            if len(self.entries) > 10000:
                self.entries.clear()
            self.entries[self._digest(token)] = _Verified(now, rec, Principal.of(rec), expires)
        self._touch(store, rec, now)
        return rec

    def _touch(self, store: GraphStore, rec: TokenRecord, now: float) -> None:
        with self.lock:
            if now - self.touched.get(rec.name, -TOUCH_EVERY_SECONDS) < TOUCH_EVERY_SECONDS:
                return
            self.touched[rec.name] = now
        at = iso(datetime.now(UTC))

        def touch() -> None:
            try:
                token_store(store).touch_token(rec.name, at)
            except CmdbError as exc:  # the store is busy or away: last_used is best effort
                log.info("could not record the use of token %s: %s", rec.name, type(exc).__name__)

        self.toucher.submit(touch)

    def close(self) -> None:
        self.toucher.shutdown(wait=True)


def _cache(request: Request, store: GraphStore) -> TokenCache:
    state = request.app.state
    cache: TokenCache | None = getattr(state, "token_cache", None)
    if cache is None:
        key = getattr(state, "token_key", None) or load_token_key(store)
        cache = state.token_cache = TokenCache(key)
    return cache


def close_token_cache(state: Any) -> None:
    """At the app's shutdown (lifespan): finish pending ``last_used`` writes while the store is open,
    and forget verified tokens (a restarted lifespan starts afresh)."""
    cache: TokenCache | None = getattr(state, "token_cache", None)
    if cache is not None:
        state.token_cache = None
        cache.close()


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": challenge})


def _credentials(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (as ``HTTPBearer`` reads it), else None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


async def authorize(request: Request, role: str, token: str | None = None) -> Principal:
    """The caller's ``Principal`` if its token may use a ``role`` route; raises 401 or 403.

    ``require(role)`` calls this as a dependency; a lean route (``api.lean``) calls it directly."""
    if token is None:
        token = _credentials(request.headers.get("authorization"))
    if not token:
        raise _unauthorized("this route needs an API token: send Authorization: Bearer <token>"
                            " (create one with `cmdb tokens create`)")
    store: GraphStore = request.app.state.store
    cache = _cache(request, store)
    try:
        # On the event loop for a token seen within CACHE_SECONDS; a store read in a worker thread otherwise.
        principal = cache.cached_principal(store, token)
        if principal is None:
            await anyio.to_thread.run_sync(cache.verify, store, token)
            principal = cache.cached_principal(store, token)
            assert principal is not None
    except TokenRejectedError as exc:
        raise _unauthorized(str(exc), "invalid_token") from None
    if not role_allows(principal.role, role):
        need = "an operator or admin token, or a collector token" if role == "collector" else \
            f"a token with role {role} or higher" if role != "admin" else "an admin token"
        raise HTTPException(status_code=403, detail=f"token {principal.name!r} has role {principal.role}; this route"
                            f" needs {need}")
    request.state.principal = principal
    return principal


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that answers the caller's ``Principal`` if its token may use a ``role`` route."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {ROLES}")

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        token = credentials.credentials if credentials is not None and credentials.scheme.lower() == "bearer" else ""
        return await authorize(request, role, token)

    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency


def required_role(dependency: Any) -> str | None:
    """The role a ``require`` dependency stands for (for the route x role matrix)."""
    return getattr(dependency, "required_role", None)
