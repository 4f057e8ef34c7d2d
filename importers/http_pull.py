"""Pulling records from a ServiceNow instance's Table API; secrets referenced, never shown.

``--secret env:VAR`` or ``--secret file:/path`` (a file only its owner may read) names where the
password (ServiceNow) or API token (NetBox) lives, as credential profiles do
(``discovery/credentials.py``); the value is read when the pull starts and goes into the request
header only, never into records, history or messages.

The Table API pages with ``sysparm_limit``/``sysparm_offset`` and a ``Link: <...>; rel="next"``
header; we follow the header when present and otherwise ask for the next offset until a short page.
A table query includes the table's subclasses (``cmdb_ci_server`` returns Linux servers too), so
records are kept once per ``sys_id``, preferring the one read from the record's own class table.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from cmdb.errors import BadInputError, CmdbError, ConfigError
from discovery.credentials import Secret, SecretRef

PAGE = 500
TIMEOUT = 30.0
MAX_PAGES = 100_000


def secret_from_option(spec: str, what: str) -> Secret:
    """``env:VAR`` or ``file:/path`` -> the secret (a 0600 file; an unset variable is an error)."""
    kind, sep, where = spec.partition(":")
    if not sep or kind not in ("env", "file") or not where:
        raise ConfigError(f"--secret {spec!r}: use env:VARIABLE or file:/path/to/0600-file (never the secret)")
    ref = SecretRef(what, "secret", env=where if kind == "env" else None, file=where if kind == "file" else None)
    return ref.resolve()


def _get(session: requests.Session, url: str, params: dict[str, Any] | None, what: str) -> requests.Response:
    try:
        resp = session.get(url, params=params, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise CmdbError(f"{what}: cannot reach {url.split('?')[0]}: {type(exc).__name__}; check --url") from None
    if resp.status_code in (401, 403):
        raise ConfigError(f"{what}: {url.split('?')[0]} refused the credentials (HTTP {resp.status_code}); "
                          "check --user and --secret")
    if resp.status_code != 200:
        raise CmdbError(f"{what}: {url.split('?')[0]} answered HTTP {resp.status_code}")
    return resp


def servicenow_tables(base_url: str, tables: list[str], user: str, password: Secret,
                      page: int = PAGE) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, record) for every record of ``tables``, deduplicated by sys_id."""
    session = requests.Session()
    session.auth = (user, password.reveal())
    session.headers["Accept"] = "application/json"
    base = base_url.rstrip("/")
    try:
        for table in tables:
            kept: dict[str, dict[str, Any]] = {}
            url: str | None = f"{base}/api/now/table/{table}"
            params: dict[str, Any] | None = {"sysparm_display_value": "all", "sysparm_exclude_reference_link": "true",
                                             "sysparm_limit": page, "sysparm_offset": 0}
            for _ in range(MAX_PAGES):
                if url is None:
                    break
                resp = _get(session, url, params, f"ServiceNow table {table}")
                try:
                    result = resp.json()["result"]
                except (ValueError, KeyError, TypeError):
                    raise BadInputError(f"ServiceNow table {table}: the answer is not a Table API result") from None
                for rec in result:
                    sys_id = rec.get("sys_id")
                    sys_id = sys_id.get("value") if isinstance(sys_id, dict) else sys_id
                    own = rec.get("sys_class_name")
                    own = own.get("value") if isinstance(own, dict) else own
                    if sys_id not in kept or own == table:
                        kept[str(sys_id)] = rec
                nxt = resp.links.get("next", {}).get("url")
                if nxt:
                    url, params = nxt, None
                elif len(result) >= page and params is not None:
                    params = {**params, "sysparm_offset": int(params["sysparm_offset"]) + page}
                else:
                    url = None
            for rec in kept.values():
                yield table, rec
    finally:
        session.close()
