"""Deployment (issue 20.10): the compose file, the Dockerfile and the lock file say what they promise.

``docker compose config`` (or Debian's ``docker-compose``) validates the compose file when a client is
installed; the structure is checked here either way, since no Docker engine runs in the tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from discovery.credentials import load_credentials
from impact.automation_config import load_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
MB = {"k": 1 / 1024, "m": 1, "g": 1024}


def _mb(size: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg])b?", str(size).strip().lower())
    assert m, f"a size like 512m: {size!r}"
    return float(m[1]) * MB[m[2]]


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates(tmp_path: Path) -> None:
    client = _compose_client()
    if client is None:
        pytest.skip("no compose client (docker compose plugin or Debian's docker-compose); structure checked below")
    shutil.copy(REPO / "docker-compose.yml", tmp_path / "docker-compose.yml")
    done = subprocess.run([*client, "--project-directory", str(tmp_path), "-f", str(tmp_path / "docker-compose.yml"),
                           "config", "-q"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_compose_runs_neo4j_serve_and_scheduler() -> None:
    services: dict[str, Any] = COMPOSE["services"]
    assert {"neo4j", "serve", "scheduler"} <= set(services)
    assert services["serve"]["command"][0] == "serve" and services["scheduler"]["command"] == ["scheduler"]
    assert re.fullmatch(r"neo4j:5\.26\.\d+-community", services["neo4j"]["image"]), "a precise Neo4j LTS tag"
    for name in ("serve", "scheduler"):
        svc = services[name]
        assert svc["depends_on"]["neo4j"]["condition"] == "service_healthy"
        mounts = {v.split(":")[1] for v in svc["volumes"]}
        assert "/etc/cmdb" in mounts, "configuration where the product looks (/etc/cmdb/config.yaml)"
        assert "/run/cmdb/secrets" in mounts, "credentials"
        assert "/home/cmdb/.config/cmdb" in mounts, "known_hosts and the token key, kept"
        assert "/data" in mounts
        assert svc["environment"]["CMDB_NEO4J_PASSWORD_FILE"] == services["neo4j"]["environment"]["NEO4J_AUTH_FILE"]
    assert any(v.endswith(":/data") and v.startswith("neo4j-data") for v in services["neo4j"]["volumes"])


def test_one_password_file_for_neo4j_and_cmdb() -> None:
    assert list(COMPOSE["secrets"]) == ["neo4j_auth"]
    assert COMPOSE["services"]["neo4j"]["secrets"] == ["neo4j_auth"]
    assert COMPOSE["services"]["serve"]["secrets"] == ["neo4j_auth"]
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert "chmod 600" in text and "neo4j/<password>" in text, "ownership and mode are documented"


def test_memory_fits_a_4gb_host() -> None:
    services = COMPOSE["services"]
    env = services["neo4j"]["environment"]
    jvm = _mb(env["NEO4J_server_memory_heap_max__size"]) + _mb(env["NEO4J_server_memory_pagecache_size"])
    assert jvm + 256 <= _mb(services["neo4j"]["mem_limit"]), "heap + page cache + JVM overhead within the limit"
    running = sum(_mb(services[s]["mem_limit"]) for s in ("neo4j", "serve", "scheduler"))
    assert running <= 3 * 1024, f"{running} MB leaves under 1 GB of 4 GB to the host"


def test_dockerfile_pins_runs_unprivileged_installs_from_lock_and_checks_health() -> None:
    base = re.search(r"^FROM\s+(\S+)", DOCKERFILE, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base[1])
    assert re.search(r"^USER\s+cmdb\s*$", DOCKERFILE, re.M)
    assert "--require-hashes -r /tmp/requirements.lock" in DOCKERFILE and "pip install --no-deps ." in DOCKERFILE
    assert re.search(r"^HEALTHCHECK .*\n.*/readyz", DOCKERFILE, re.M)
    for package in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"][
            "include"]:
        top = package.rstrip("*")
        assert f"COPY {top} {top}" in DOCKERFILE, f"the image lacks the {top} package"


def test_lock_covers_the_dependencies() -> None:
    """Every runtime dependency of pyproject.toml is pinned, with hashes, in requirements.lock (make lock)."""
    lock = (REPO / "requirements.lock").read_text(encoding="utf-8")
    pinned = {canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.M)}
    assert "--hash=sha256:" in lock
    for dep in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in requirements.lock; run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"requirements.lock pins {req.name}=={pinned[name]}, outside {req.specifier}; run `make lock`"


def test_example_configuration_loads() -> None:
    config = load_config(REPO / "examples" / "deploy" / "config.yaml", check_secrets=False)
    assert set(config.scheduler.jobs) == {"expiry", "seats", "deliver"}
    creds = load_credentials(REPO / "examples" / "deploy" / "credentials.yaml")
    assert creds is not None


@pytest.mark.parametrize(("content", "password"), [("neo4j/s3cret-pw\n", "s3cret-pw"), ("s3cret-pw\n", "s3cret-pw"),
                                                   ("admin/s3cret-pw", "admin/s3cret-pw")])
def test_the_neo4j_image_auth_file_is_the_products_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 content: str, password: str) -> None:
    from cmdb.errors import ConfigError
    from cmdb.store.neo4j import read_password

    path = tmp_path / "neo4j_auth"
    path.write_text(content)
    path.chmod(0o600)
    monkeypatch.delenv("CMDB_NEO4J_PASSWORD", raising=False)
    monkeypatch.setenv("CMDB_NEO4J_PASSWORD_FILE", str(path))
    assert read_password("neo4j") == password
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_password("neo4j")
