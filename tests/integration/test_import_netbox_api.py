"""``cmdb import --format netbox --url``: the real pynetbox client against a loopback server replaying
recorded NetBox 4.x API responses (``tests/data/netbox/api``), two records a page with ``next`` links."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.integration.replay_server import replay
from tests.integration.test_cli import cmdb

API = Path(__file__).resolve().parent.parent / "data" / "netbox" / "api"
TOKEN = "0123456789abcdef0123456789abcdef01234567"
MAX_PAGE = 2  # NetBox's MAX_PAGE_SIZE for this test: every endpoint with more records pages


def netbox_api(path: str, query: dict[str, list[str]], headers: Any) -> tuple[int, dict[str, str], Any]:
    if headers.get("Authorization") not in (f"Token {TOKEN}", f"Bearer {TOKEN}"):
        return 403, {"API-Version": "4.1"}, {"detail": "Invalid token"}
    parts = [p for p in path.split("/") if p]
    if parts == ["api"]:
        return 200, {"API-Version": "4.1"}, {"dcim": f"http://{headers['Host']}/api/dcim/"}
    if len(parts) != 3:
        return 404, {"API-Version": "4.1"}, {"detail": "Not found."}
    name = f"{parts[1]}.{parts[2].replace('-', '_')}"
    file = API / f"{name}.json"
    if not file.exists():
        return 404, {"API-Version": "4.1"}, {"detail": "Not found."}
    records = json.loads(file.read_text())
    offset = int(query.get("offset", ["0"])[0])
    limit = min(int(query.get("limit", [str(MAX_PAGE)])[0]) or MAX_PAGE, MAX_PAGE)
    nxt = (f"http://{headers['Host']}{path}?limit={limit}&offset={offset + limit}"
           if offset + limit < len(records) else None)
    prev = f"http://{headers['Host']}{path}?limit={limit}&offset={max(0, offset - limit)}" if offset else None
    return 200, {"API-Version": "4.1"}, {"count": len(records), "next": nxt, "previous": prev,
                                          "results": records[offset:offset + limit]}


def test_pynetbox_pull_pages_and_reimports_nothing(tmp_path: Path) -> None:
    os.environ["CMDB_TEST_NETBOX_TOKEN"] = TOKEN
    try:
        with replay({"/api": netbox_api}) as server:
            args = ["import", "--format", "netbox", "--url", server.url, "--secret", "env:CMDB_TEST_NETBOX_TOKEN",
                    "--json"]
            first = json.loads(cmdb(tmp_path, *args).stdout)
            pages = [q.get("offset", ["0"])[0] for p, q in server.requests if p == "/api/dcim/interfaces/"]
            assert pages == ["0", "2", "4"]  # five interfaces, two a page: the next links were followed
            again = json.loads(cmdb(tmp_path, *args).stdout)
    finally:
        del os.environ["CMDB_TEST_NETBOX_TOKEN"]
    assert (first["created"], first["rels_created"], first["conflicts"]) == (25, 31, 0)
    assert (again["created"], again["updated"], again["events"]) == (0, 0, 0)
    rels = json.loads(cmdb(tmp_path, "rel", "list", "--type", "CONNECTED_TO", "--json").stdout)["items"]
    assert len(rels) == 2


def test_wrong_token_is_a_clear_error(tmp_path: Path) -> None:
    os.environ["CMDB_TEST_NETBOX_TOKEN"] = "not-the-token"
    try:
        with replay({"/api": netbox_api}) as server:
            proc = cmdb(tmp_path, "import", "-f", "netbox", "--url", server.url, "--secret",
                        "env:CMDB_TEST_NETBOX_TOKEN", ok=False)
    finally:
        del os.environ["CMDB_TEST_NETBOX_TOKEN"]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "refused the token (HTTP 403); check --secret" in proc.stderr
    assert "not-the-token" not in proc.stderr
