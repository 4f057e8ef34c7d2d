"""Fixtures of the API tests: a sample-estate store, tokens per role, a TestClient, a real uvicorn server.

``live_server`` starts ``cmdb serve`` as its own process on a free loopback port (once per session
and store kind) and is driven with httpx, as a remote client would.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import load_token_key
from api.state import ApiSettings
from cmdb.batch import Batch
from cmdb.cli import SAMPLE_ESTATE
from cmdb.ingest import ingest
from cmdb.store.base import GraphStore
from cmdb.store.sqlite import SqliteStore
from cmdb.tokens import create_token

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
TokenFor = Callable[..., str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def make_token_factory(store: GraphStore) -> TokenFor:
    key = load_token_key(store)
    made: dict[tuple[Any, ...], str] = {}

    def token_for(role: str = "admin", **kw: Any) -> str:
        ident = (role, *sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in kw.items()))
        if ident not in made:
            name = f"t{len(made)}-{role}"
            made[ident] = create_token(store, key, name, role, **kw)[0]
        return made[ident]

    return token_for


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path_factory.mktemp("api") / "api.db")
    ingest(store, Batch.from_file(SAMPLE_ESTATE))
    try:
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def token_for(sample_store: SqliteStore) -> TokenFor:
    return make_token_factory(sample_store)


@pytest.fixture(scope="module")
def client(sample_store: SqliteStore, token_for: TokenFor) -> Iterator[TestClient]:
    settings = ApiSettings(impact_poll_seconds=0.2, allowed_networks=None, max_body_bytes=2 * 1024 * 1024)
    import ipaddress

    settings.allowed_networks = [ipaddress.ip_network("127.0.0.0/8")]
    app = create_app(sample_store, settings)
    with TestClient(app, headers={"Authorization": f"Bearer {token_for('admin')}"},
                    raise_server_exceptions=False) as c:
        yield c


@dataclass
class LiveServer:
    url: str
    store_url: str
    token: str
    process: subprocess.Popen[bytes]
    token_for: TokenFor

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token or self.token}"},
                            timeout=30.0)


def start_server(store: GraphStore, env: dict[str, str], workers: int = 1, log: Path | None = None,
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """``cmdb serve`` over ``store``'s URL in its own process; returns it once /readyz answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "product.cli", "--store", store.url, "serve", "--host", LOOPBACK, "--port", str(port),
           "--workers", str(workers), "--log-level", "warning", "--scan-networks", "127.0.0.0/8"]
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the file lives as long as the server
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{LOOPBACK}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cmdb serve exited with {proc.returncode}" + (f"; see {log}" if log else ""))
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("cmdb serve did not become ready within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def live_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("live-sqlite")
    store = SqliteStore(tmp / "live.db")
    ingest(store, Batch.from_file(SAMPLE_ESTATE))
    token_for = make_token_factory(store)
    token = token_for("admin")
    proc, url = start_server(store, {}, log=tmp / "server.log")
    try:
        yield LiveServer(url, store.url, token, proc, token_for)
    finally:
        stop_server(proc)
        store.close()


@pytest.fixture(scope="session")
def live_neo4j(neo4j_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from cmdb.store.neo4j import Neo4jStore

    tmp = tmp_path_factory.mktemp("live-neo4j")
    key_file = tmp / "token-key"
    old = os.environ.get("CMDB_TOKEN_KEY_FILE")
    os.environ["CMDB_TOKEN_KEY_FILE"] = str(key_file)
    store = Neo4jStore(neo4j_server.uri, neo4j_server.user, neo4j_server.password)
    store.clear()
    ingest(store, Batch.from_file(SAMPLE_ESTATE))
    token_for = make_token_factory(store)
    token = token_for("admin")
    env = {"CMDB_TOKEN_KEY_FILE": str(key_file), "CMDB_NEO4J_PASSWORD": neo4j_server.password}
    proc, url = start_server(store, env, log=tmp / "server.log")
    try:
        yield LiveServer(url, store.url, token, proc, token_for)
    finally:
        stop_server(proc)
        store.close()
        if old is None:
            os.environ.pop("CMDB_TOKEN_KEY_FILE", None)
        else:
            os.environ["CMDB_TOKEN_KEY_FILE"] = old
