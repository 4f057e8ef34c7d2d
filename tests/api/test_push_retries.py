"""``BatchPusher`` retries through failures without writing a batch twice.

A small HTTP proxy on loopback stands between the collector and a real ``cmdb serve``: it answers
the first POST with 503 (Retry-After: 0), forwards the second and then drops the connection
before the answer arrives (the batch is written, the collector does not know), and forwards the
third. The batch lands once, and the collector gets the summary of the first write back.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cmdb.batch import Batch
from cmdb.errors import CmdbError
from discovery.push import BatchPusher, PushError
from tests.api.conftest import LOOPBACK, LiveServer


class FlakyProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.posts = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet: nothing of a request reaches a log
                pass

            def do_POST(self) -> None:
                proxy.posts += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy.posts == 1:
                    self.send_response(503)
                    self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in (
                    "authorization", "idempotency-key", "content-type")}
                resp = httpx.post(proxy.upstream + self.path, content=body, headers=headers, timeout=30)
                if proxy.posts == 2:
                    self.close_connection = True  # the answer is lost on the way back
                    self.connection.close()
                    return
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(live_sqlite: LiveServer) -> Iterator[FlakyProxy]:
    p = FlakyProxy(live_sqlite.url)
    try:
        yield p
    finally:
        p.close()


def test_a_retried_push_writes_once(proxy: FlakyProxy, live_sqlite: LiveServer) -> None:
    token = live_sqlite.token_for("collector", sources=["scan"])
    pusher = BatchPusher(proxy.url, token, attempts=4, backoff=0.05)
    batch = Batch.from_dict({"source": "scan", "scope": "127.0.0.77/32", "run_id": "push-retry-test/0001",
                             "cis": [{"class": "Host", "management_ip": "127.0.0.77"}]})
    try:
        summary = pusher.push(batch)
    finally:
        pusher.close()
    assert proxy.posts == 3
    assert summary["created"] == 1 and summary["replayed"] is True
    with live_sqlite.client() as c:
        found = c.get("/api/v1/cis", params={"attr": "management_ip=127.0.0.77"}).json()
        assert found["total"] == 1
        history = c.get(f"/api/v1/cis/{found['items'][0]['id']}/history").json()
        assert [e["kind"] for e in history].count("ci.created") == 1


def test_a_refused_push_is_not_retried_and_names_the_reason(live_sqlite: LiveServer, tmp_path: Path) -> None:
    token = live_sqlite.token_for("collector", sources=["scan"])
    pusher = BatchPusher(live_sqlite.url, token, attempts=3, backoff=0.05)
    batch = Batch.from_dict({"source": "snmp", "cis": [{"class": "Host", "management_ip": "127.0.0.78"}]})
    with pytest.raises(PushError, match=r"refused the batch \(403\).*source 'snmp'") as info:
        pusher.push(batch)
    assert token not in str(info.value)
    pusher.close()
    unreachable = BatchPusher(f"http://{LOOPBACK}:9", token, attempts=2, backoff=0.01)
    with pytest.raises(CmdbError, match="after 2 attempts") as info:
        unreachable.push(batch)
    assert token not in str(info.value)
