"""Fixtures shared by the integration tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto_lab import FAKE_ENV, Estate, MotoServer, build_estate  # scripts/ (tests/conftest.py puts it on sys.path)

from cmdb.store.neo4j import Neo4jStore


@pytest.fixture
def neo(neo4j_server: Any) -> Iterator[Neo4jStore]:
    """An empty Neo4j store on the session's test server."""
    store = Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password)
    store.clear()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server (server mode, its own process on loopback) for the AWS and SSH tests of a session,
    with boto3 pointed at fake credentials and a profile ``estate`` (a config file of this session: the
    user's ~/.aws is never read)."""
    home = tmp_path_factory.mktemp("aws")
    (home / "config").write_text("[profile estate]\nregion = us-east-1\n", encoding="utf-8")
    (home / "credentials").write_text(
        f"[estate]\naws_access_key_id = {FAKE_ENV['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {FAKE_ENV['AWS_SECRET_ACCESS_KEY']}\n", encoding="utf-8")
    saved = {k: os.environ.get(k) for k in (*FAKE_ENV, "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")}
    os.environ.update(FAKE_ENV)
    os.environ["AWS_CONFIG_FILE"] = str(Path(home / "config"))
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(Path(home / "credentials"))
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def estate(moto_server: MotoServer) -> Estate:
    """A fresh estate in the session's moto server (reset first)."""
    moto_server.reset()
    return build_estate(moto_server.url)
