"""``cmdb import --format servicenow --url``: the Table API pull against a loopback server replaying
recorded responses (``tests/data/servicenow/api``), paged two records at a time with Link headers."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from tests.integration.replay_server import replay
from tests.integration.test_cli import cmdb

API = Path(__file__).resolve().parent.parent / "data" / "servicenow" / "api"
USER, PASSWORD = "cmdb.import", "s3cret-Pa55"
MAX_PAGE = 2  # the instance's page cap, so every table pages


def table_api(path: str, query: dict[str, list[str]], headers: Any) -> tuple[int, dict[str, str], Any]:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if headers.get("Authorization") != expected:
        return 401, {}, {"error": {"message": "User Not Authenticated"}, "status": "failure"}
    table = path.rsplit("/", 1)[1]
    file = API / f"{table}.json"
    records = json.loads(file.read_text())["result"] if file.exists() else []
    offset = int(query.get("sysparm_offset", ["0"])[0])
    limit = min(int(query.get("sysparm_limit", ["10000"])[0]), MAX_PAGE)
    page = records[offset:offset + limit]
    links = {}
    if offset + limit < len(records):
        nxt = f"http://{headers['Host']}{path}?sysparm_offset={offset + limit}&sysparm_limit={limit}" \
              "&sysparm_display_value=all&sysparm_exclude_reference_link=true"
        links["Link"] = f'<{nxt}>;rel="next"'
    return 200, {**links, "X-Total-Count": str(len(records))}, {"result": page}


def test_table_api_pull_pages_and_reimports_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "snow-password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    with replay({"/api/now/table/": table_api}) as server:
        args = ["import", "--format", "servicenow", "--url", server.url, "--user", USER,
                "--secret", f"file:{secret}", "--table", "cmdb_ci_server", "--table", "cmdb_ci_linux_server",
                "--table", "cmdb_ci_appl", "--table", "cmdb_ci_db_instance", "--table", "cmdb_ci_service",
                "--table", "cmdb_ci_cluster", "--json"]
        first = json.loads(cmdb(tmp_path, *args).stdout)
        offsets = [q.get("sysparm_offset", ["0"])[0] for p, q in server.requests if p.endswith("/cmdb_ci_server")]
        assert offsets == ["0", "2"]  # three records, two per page: the Link header was followed
        assert (first["created"], first["rels_created"], first["conflicts"]) == (11, 19, 0)
        again = json.loads(cmdb(tmp_path, *args).stdout)
        assert (again["created"], again["updated"], again["events"]) == (0, 0, 0)
    people = json.loads(cmdb(tmp_path, "ci", "list", "--class", "Person", "--json").stdout)["items"]
    assert sorted(p["name"] for p in people) == ["Ana Lopez", "Bob Smith"]  # display values from the API
    history = cmdb(tmp_path, "history", "web-01", "--json").stdout
    assert PASSWORD not in history


def test_wrong_or_missing_secret_is_a_clear_error(tmp_path: Path) -> None:
    with replay({"/api/now/table/": table_api}) as server:
        env_name = "CMDB_TEST_SNOW_PW"
        os.environ[env_name] = "wrong"
        try:
            proc = cmdb(tmp_path, "import", "-f", "servicenow", "--url", server.url, "--user", USER,
                        "--secret", f"env:{env_name}", "--table", "cmdb_ci_appl", ok=False)
        finally:
            del os.environ[env_name]
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "refused the credentials (HTTP 401); check --user and --secret" in proc.stderr
        assert "wrong" not in proc.stderr
        proc = cmdb(tmp_path, "import", "-f", "servicenow", "--url", server.url, "--user", USER,
                    "--secret", "env:CMDB_TEST_UNSET_VAR", ok=False)
        assert "CMDB_TEST_UNSET_VAR, which is not set" in proc.stderr
        loose = tmp_path / "loose"
        loose.write_text(PASSWORD)
        loose.chmod(0o644)
        proc = cmdb(tmp_path, "import", "-f", "servicenow", "--url", server.url, "--user", USER,
                    "--secret", f"file:{loose}", ok=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and PASSWORD not in proc.stderr
