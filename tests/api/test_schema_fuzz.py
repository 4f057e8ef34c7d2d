"""schemathesis against a running ``cmdb serve``: generated requests from the app's own OpenAPI
document never get a 5xx, and every answer (status, content type, headers, body) matches the schema.

Bounded: a few examples per operation, against its own server process on loopback. ``POST /runs``
is left out: it starts real scans (tested in test_routes.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cmdb.batch import Batch
from cmdb.cli import SAMPLE_ESTATE
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore
from tests.api.conftest import make_token_factory, start_server, stop_server

MAX_EXAMPLES = 12
SKIP = {("POST", "/api/v1/runs")}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    store = SqliteStore(tmp / "fuzz.db")
    ingest(store, Batch.from_file(SAMPLE_ESTATE))
    token = make_token_factory(store)("admin")
    proc, url = start_server(store, {}, log=tmp / "server.log")
    try:
        yield url, token
    finally:
        stop_server(proc)
        store.close()


def test_no_server_errors_and_answers_match_the_schema(fuzz_server: tuple[str, str]) -> None:
    url, token = fuzz_server
    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
              response_schema_conformance]
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP:
            continue
        tried += 1

        @given(case=op.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  phases=[Phase.explicit, Phase.generate])
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=url, headers=headers, timeout=30, checks=checks)

        try:
            run()
        except Exception as exc:  # collected, so one run reports every failing operation
            failures.append(f"{op.method.upper()} {op.path}: {exc}")
    assert tried >= 15
    answered = sum(float(line.split()[-1]) for line in httpx.get(f"{url}/metrics").text.splitlines()
                   if line.startswith("cmdb_http_requests_total{"))
    assert answered >= tried * 3  # the examples really reached the server
    print(f"schemathesis: {tried} operations, {answered:.0f} requests answered")
    assert not failures, "\n\n".join(failures)
