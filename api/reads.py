"""Every CI read and write check of the routes passes through here, so partition rules apply in one place.

Each function takes the caller's ``Principal``. ``visible`` is the one question partitions answer
(issue 16 item 4 hooks its rules here); a CI the caller may not see answers exactly like a missing one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from fastapi import HTTPException

from api import visibility
from api.auth import Principal
from cmdb.batch import Batch
from cmdb.errors import BadInputError
from cmdb.model import Schema
from cmdb.store.base import CIState, Event, GraphStore, Page, RelState, SearchQuery

if TYPE_CHECKING:
    from api.state import ApiState

T = TypeVar("T")


async def read(st: ApiState, fn: Callable[..., T], *args: Any) -> T:
    """Run a store call: inline for a local store (a thread hop costs more than the read), else in a thread."""
    if st.inline_reads:
        return fn(*args)
    return await anyio.to_thread.run_sync(fn, *args)


def visible(principal: Principal, ci: CIState) -> bool:
    """Whether ``principal`` may see ``ci`` (its partition)."""
    return visibility.can_see(principal, ci)


def check_batch_allowed(store: GraphStore, schema: Schema, principal: Principal, batch: Batch) -> None:
    """Raise (403) unless ``principal`` may write ``batch``: collector sources/scopes, partitions."""
    visibility.check_batch_allowed(store, schema, principal, batch)


def find_ci(store: GraphStore, schema: Schema, principal: Principal, ref: str, brief: bool = False) -> CIState:
    """A CI by id, name or any identity value, if the caller may see it; a hidden CI answers like a missing one.

    ``brief``: without provenance and sightings (``get_cis_brief``), for answers that show neither."""
    return visibility.find_visible_ci(store, schema, principal, ref, brief)


def search_page(store: GraphStore, principal: Principal, query: SearchQuery) -> Page:
    return visibility.search_visible(store, principal, query)


def ci_relationships(store: GraphStore, principal: Principal, ci_id: str, type: str | None, direction: str,
                     include_retired: bool, limit: int, offset: int) -> list[RelState]:
    rels = store.relationships(ci_id, type, direction, include_retired, limit, offset)  # type: ignore[arg-type]
    return visibility.visible_relationships(store, principal, rels)


def ci_events(store: GraphStore, principal: Principal, ci_ids: list[str], since: str | None,
              until: str | None) -> list[Event]:
    return visibility.visible_events(store, principal, store.events(ci_ids, since=since, until=until))


def redact_impact(store: GraphStore, principal: Principal, data: dict[str, Any],
                  services_path_ids: list[list[str]] | None = None) -> dict[str, Any]:
    """An impact answer as ``principal`` may see it (hidden CIs counted, not named)."""
    return visibility.redact_impact(store, principal, data, services_path_ids)


def require_all_partitions(principal: Principal, what: str) -> None:
    """For answers that cannot be redacted (they name CIs without saying which): unlimited tokens only.
    Impact answers no longer need it (``api.redaction``); kept for routes that do."""
    if principal.partitions is not None:
        raise HTTPException(403, f"token {principal.name!r} is limited to partitions; {what} needs a token that "
                                 "sees every partition")


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def encode_key_cursor(key: tuple[str, str, str]) -> str:
    """A keyset cursor: the sort key of the last CI of a page (``SearchQuery.after``)."""
    return base64.urlsafe_b64encode(json.dumps({"k": list(key)}).encode()).decode().rstrip("=")


def decode_key_cursor(cursor: str | None) -> tuple[str, str, str] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["k"]
        if isinstance(key, list) and len(key) == 3 and all(isinstance(k, str) for k in key):
            return key[0], key[1], key[2]
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise BadInputError(f"cursor {cursor!r} is not one this server gave out; start without a cursor")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        data: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset = int(data["o"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BadInputError(f"cursor {cursor!r} is not one this server gave out; start without a cursor") from None
    if offset < 0:
        raise BadInputError(f"cursor {cursor!r} is not one this server gave out; start without a cursor")
    return offset

