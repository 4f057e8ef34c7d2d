"""A discovery run started over the API by a partition-limited operator writes only its partitions."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import TokenFor


@pytest.fixture
def listener() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        t.join()
        sock.close()


def run_scan(client: TestClient, token: str, port: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/v1/runs", json={"targets": ["127.0.0.1"], "ports": str(port), "dns": False},
                    headers=headers)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    run: dict[str, Any] = client.get(r.headers["location"], headers=headers).json()
    while run["job"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        run = client.get(r.headers["location"], headers=headers).json()
    assert run["job"] == "finished", run
    return run


def test_a_limited_operator_scans_into_its_partition_only(client: TestClient, token_for: TokenFor,
                                                          sample_store: Any, listener: int) -> None:
    run = run_scan(client, token_for("operator", partitions=["lab"]), listener)
    assert [o["outcome"] for o in run["outcomes"]] == ["ok"], run["outcomes"]
    host = sample_store.get_ci(sample_store.find_by_key("device:management_ip=127.0.0.1"))
    assert host is not None and host.attrs["partition"] == "lab"
    # Another partition's operator may not write that host: its target is rejected, nothing changes.
    before = len(sample_store.events([host.id]))
    run = run_scan(client, token_for("operator", partitions=["other"]), listener)
    assert [o["outcome"] for o in run["outcomes"]] == ["rejected"], run["outcomes"]
    assert "outside the partitions" in run["outcomes"][0]["detail"]
    assert len(sample_store.events([host.id])) == before
