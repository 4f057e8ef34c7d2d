"""scripts/neo4j_server.py starts a real Neo4j 5.26 on loopback that survives a kill and a restart."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO / "scripts"))

import neo4j_server  # noqa: E402  (scripts/ is not a package)
from neo4j_server import Neo4jServer  # noqa: E402

neo4j = pytest.importorskip("neo4j")

pytestmark = pytest.mark.neo4j


def _count_probes(server: Neo4jServer, token: str) -> int:
    with neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password)) as driver:
        records, _, _ = driver.execute_query(
            "MATCH (p:RecoveryProbe {token: $token}) RETURN count(p) AS n", token=token
        )
        return int(records[0]["n"])


def test_ensure_is_cached() -> None:
    cache = neo4j_server.ensure_neo4j()
    started = time.monotonic()
    assert neo4j_server.ensure_neo4j() == cache
    assert time.monotonic() - started < 1.0
    install = neo4j_server.load_install(cache)
    assert install is not None and install.version.startswith("5.26.")


def test_start_query_kill_restart_keeps_committed_data() -> None:
    server = Neo4jServer(startup_timeout=180.0)
    try:
        server.start()
        assert server.port is not None
        port = server.port
        assert server.uri == f"neo4j://127.0.0.1:{port}"
        assert server.user == "neo4j" and len(server.password) >= 16
        assert server.password not in repr(server)

        token = uuid.uuid4().hex
        with neo4j.GraphDatabase.driver(server.uri, auth=(server.user, server.password)) as driver:
            records, _, _ = driver.execute_query("RETURN 1 AS one")
            assert records[0]["one"] == 1
            # Committed (execute_query commits) before the crash: must be recovered from the tx log.
            driver.execute_query("CREATE (:RecoveryProbe {token: $token})", token=token)

        with (
            neo4j.GraphDatabase.driver(server.uri, auth=(server.user, "not-the-password")) as wrong,
            pytest.raises(neo4j.exceptions.AuthError),
        ):
            wrong.verify_connectivity()

        pid = server.pid
        server.kill()
        assert not server.is_running()

        server.restart()
        assert server.is_running()
        assert server.port == port and server.pid != pid
        assert _count_probes(server, token) == 1

        server.stop()
        assert not server.is_running()

        for log in server.logs_dir.iterdir():
            assert server.password not in log.read_text(errors="replace"), log
    finally:
        server.close()
    assert not server.home.exists()
