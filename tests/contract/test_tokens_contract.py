"""Tokens on every store: the record round-trips, names stay unique, revocation and last_used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cmdb.errors import BadInputError, NotFoundError
from cmdb.store.base import GraphStore
from cmdb.tokens import (
    TokenRejectedError,
    create_token,
    hash_token,
    list_tokens,
    revoke_token,
    token_store,
    verify_token,
)

KEY = b"k" * 32
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_token_round_trips_and_only_its_keyed_hash_is_stored(store: GraphStore) -> None:
    token, rec = create_token(store, KEY, "deploy-bot", "operator", partitions=["aws", "dc"], now=NOW,
                              expires=timedelta(days=90), created_by="alice")
    assert token.startswith("cmdb_") and len(token) > 40
    got = verify_token(store, KEY, token, now=NOW)
    assert got == rec
    assert got.partitions == ["aws", "dc"] and got.sources is None and got.role == "operator"
    assert got.expires_at == "2026-04-01T00:00:00.000000Z"
    assert got.token_hash == hash_token(KEY, token) != token
    # Nothing the store gives back holds the token itself.
    assert token not in repr(token_store(store).tokens()) and token not in repr(list(store.dump()))
    assert [t["name"] for t in list_tokens(store)] == ["deploy-bot"]
    assert "token_hash" not in list_tokens(store)[0]


def test_a_collector_token_keeps_its_sources_and_scopes(store: GraphStore) -> None:
    token, _ = create_token(store, KEY, "dmz", "collector", sources=["scan"], scopes=["10.9.0.0/24"], now=NOW)
    rec = verify_token(store, KEY, token, now=NOW)
    assert (rec.role, rec.sources, rec.scopes, rec.partitions) == ("collector", ["scan"], ["10.9.0.0/24"], None)
    with pytest.raises(BadInputError, match="collector token needs --sources"):
        create_token(store, KEY, "dmz2", "collector", now=NOW)


def test_empty_partitions_differ_from_all_partitions(store: GraphStore) -> None:
    t1, _ = create_token(store, KEY, "none", "viewer", partitions=[], now=NOW)
    t2, _ = create_token(store, KEY, "all", "viewer", now=NOW)
    assert verify_token(store, KEY, t1, now=NOW).partitions == []
    assert verify_token(store, KEY, t2, now=NOW).partitions is None


def test_names_are_unique_even_after_revocation(store: GraphStore) -> None:
    token, _ = create_token(store, KEY, "ci", "viewer", now=NOW)
    revoke_token(store, "ci", now=NOW)
    with pytest.raises(BadInputError, match="exists already"):
        create_token(store, KEY, "ci", "viewer", now=NOW)
    with pytest.raises(TokenRejectedError, match="revoked") as info:
        verify_token(store, KEY, token, now=NOW)
    assert token not in str(info.value)
    with pytest.raises(NotFoundError, match="no live token"):
        revoke_token(store, "ci", now=NOW)
    assert token_store(store).get_token("ci") is not None and token_store(store).get_token("nope") is None


def test_unknown_wrong_key_and_expired_tokens_are_rejected(store: GraphStore) -> None:
    token, _ = create_token(store, KEY, "short", "viewer", expires=timedelta(hours=1), now=NOW)
    with pytest.raises(TokenRejectedError, match="not known"):
        verify_token(store, b"x" * 32, token, now=NOW)
    with pytest.raises(TokenRejectedError, match="not known"):
        verify_token(store, KEY, token[:-2] + "zz", now=NOW)
    with pytest.raises(TokenRejectedError, match="not a CMDB token"):
        verify_token(store, KEY, "Basic abc", now=NOW)
    with pytest.raises(TokenRejectedError, match="expired"):
        verify_token(store, KEY, token, now=NOW + timedelta(hours=2))


def test_last_used_only_moves_forward(store: GraphStore) -> None:
    create_token(store, KEY, "u", "viewer", now=NOW)
    tokens = token_store(store)
    tokens.touch_token("u", "2026-01-02T00:00:00.000000Z")
    tokens.touch_token("u", "2026-01-01T12:00:00.000000Z")
    rec = tokens.get_token("u")
    assert rec is not None and rec.last_used == "2026-01-02T00:00:00.000000Z"


def test_a_store_without_tokens_lists_none(store: GraphStore) -> None:
    assert token_store(store).tokens() == [] and token_store(store).token_by_hash("0" * 64) is None
