"""SPOF, expiry and change answers for a partition-limited token, in JSON, Markdown and HTML.

The estate of ``test_partitions`` plus two expired certificates and two change approvers, one of
each in ``aws`` and in ``dc``: ``shop`` (aws) depends on ``app-dc`` (dc), which runs on ``h-aws``
(aws) and uses ``cert-dc``; ``h-aws`` uses ``cert-aws``. An ``aws`` token must see every answer
with the ``dc`` CIs counted, not named, and ``(hidden)`` where a path runs through them, in every
format alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.ingest import ingest
from tests.api.test_partitions import auth
from tests.api.test_partitions import env as partition_env  # noqa: F401 - the estate and client, a fixture

DC_NAMES = ("app-dc", "cert-dc", "Dana Dc", "dana@dc.example")
EXTRA = {"source": "import:dc", "cis": [
    {"ref": "cdc", "class": "Certificate", "subject": "cert-dc", "fingerprint_sha256": "dc01",
     "not_after": "2026-01-01T00:00:00Z", "partition": "dc"},
    {"ref": "caws", "class": "Certificate", "subject": "cert-aws", "fingerprint_sha256": "aw01",
     "not_after": "2026-01-02T00:00:00Z", "partition": "aws"},
    {"ref": "pdc", "class": "Person", "name": "Dana Dc", "email": "dana@dc.example", "partition": "dc"},
    {"ref": "paws", "class": "Person", "name": "Al Aws", "email": "al@aws.example", "partition": "aws"},
], "relationships": [
    {"type": "USES_CERTIFICATE", "from": {"class": "Application", "name": "app-dc"}, "to": "cdc"},
    {"type": "USES_CERTIFICATE", "from": {"class": "Server", "fqdn": "h-aws.example"}, "to": "caws"},
    {"type": "CHANGE_APPROVER", "from": {"class": "Application", "name": "app-dc"}, "to": "pdc"},
    {"type": "CHANGE_APPROVER", "from": {"class": "Server", "fqdn": "h-aws.example"}, "to": "paws"},
]}
FORMATS = ("json", "markdown", "html")


@pytest.fixture(scope="module")
def env(partition_env: dict[str, Any]) -> Iterator[dict[str, Any]]:  # noqa: F811 - wraps the imported fixture
    ingest(partition_env["store"], Batch.from_dict(EXTRA))
    partition_env["store"].write_counter()  # the warm index refreshes on its own; answers below name its writes
    yield partition_env


def ask(env: dict[str, Any], what: str, fmt: str, headers: dict[str, str]) -> Any:
    c = env["client"]
    if what == "change":
        body = {"cis": ["h-aws"], "start": "2026-12-10T22:00", "end": "2026-12-10T23:00"}
        r = c.post("/api/v1/impact/change", params={"format": fmt}, json=body,
                   headers={**headers, "Cache-Control": "no-cache"})
    else:
        r = c.get(f"/api/v1/impact/{what}", params={"format": fmt}, headers={**headers, "Cache-Control": "no-cache"})
    assert r.status_code == 200, r.text
    return r


def _wait_for_index(env: dict[str, Any]) -> None:
    """Until the app's warm index has the extra CIs (its poll is 0.2 s)."""
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = env["client"].get("/api/v1/impact/expiry", headers={**auth(env), "Cache-Control": "no-cache"})
        if len(r.json()["expiring"]) == 2 and r.json()["services"]:
            return
        time.sleep(0.2)
    raise AssertionError("the warm impact index did not pick up the certificates")


@pytest.mark.parametrize("what", ["spof", "expiry", "change"])
def test_a_limited_token_gets_every_format_redacted(env: dict[str, Any], what: str) -> None:
    _wait_for_index(env)
    limited = auth(env, partitions=["aws"])
    for fmt in FORMATS:
        full = ask(env, what, fmt, auth(env)).text
        assert "app-dc" in full and "(hidden)" not in full, (what, fmt)
        text = ask(env, what, fmt, limited).text
        leaked = [n for n in DC_NAMES if n in text] + [i for n, i in env["ids"].items() if n == "app-dc" and i in text]
        assert not leaked, (what, fmt, leaked)
        assert "(hidden)" in text, (what, fmt)  # a path through app-dc shows the placeholder
        if fmt != "json":
            assert "Not shown (outside the partitions of this token" in text, (what, fmt)
            assert ("h-aws" in text or "cert-aws" in text) and "shop" in text, (what, fmt)


def test_the_json_answers_count_what_they_hide(env: dict[str, Any]) -> None:
    _wait_for_index(env)
    limited = auth(env, partitions=["aws"])
    spof = ask(env, "spof", "json", limited).json()
    assert {i["name"] for i in spof["items"]} == {"h-aws", "cert-aws"}
    assert spof["hidden"] == {"items": 2}  # app-dc and cert-dc
    assert all(s["path"][-1] == "shop" and "(hidden)" in s["path"] for i in spof["items"] for s in i["services"])
    full = ask(env, "spof", "json", auth(env)).json()
    assert {i["name"] for i in full["items"]} == {"h-aws", "cert-aws", "app-dc", "cert-dc"} and "hidden" not in full
    expiry = ask(env, "expiry", "json", limited).json()
    assert [i["name"] for i in expiry["expiring"]] == ["cert-aws"] and expiry["hidden"] == {"expiring": 1}
    change = ask(env, "change", "json", limited).json()
    assert [a["name"] for a in change["approvers"]] == ["Al Aws"]
    assert change["hidden"]["approvers"] == 1 and change["hidden"]["affected"] >= 1
    assert [s["path"] for s in change["services"]] == [["h-aws", "(hidden)", "shop"]]
    # A token that sees none of it gets empty answers that still count everything.
    nothing = auth(env, partitions=["elsewhere"])
    assert ask(env, "spof", "json", nothing).json() == {"tier": 1, "items": [], "hidden": {"items": 4}}
    md = ask(env, "expiry", "markdown", nothing).text
    assert "cert-aws" not in md and "shop" not in md and "2 expiring" in md and "1 services" in md
