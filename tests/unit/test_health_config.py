"""What ``cmdb health`` checks: defaults, overrides by file, inheritance down classes, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.errors import ConfigError
from cmdb.health.config import HealthConfig, checked_attributes, concrete
from cmdb.model import default_schema

SCHEMA = default_schema()


def test_defaults_inherit_recommended_attributes_down_the_classes() -> None:
    cfg = HealthConfig.load(SCHEMA, None)
    assert checked_attributes(SCHEMA, cfg, "Server") == ([], ["hostname", "vendor", "model", "os"])
    assert checked_attributes(SCHEMA, cfg, "Switch") == ([], ["hostname", "vendor", "model", "serial_number",
                                                              "os_version"])
    required, recommended = checked_attributes(SCHEMA, cfg, "Service")
    assert required == ["service_type", "tier"] and "criticality" in recommended
    assert {r.id for r in cfg.rules} == {"orphan", "service-without-owner", "service-without-support",
                                         "idle-unowned-host"}
    assert "VirtualMachine" in concrete(SCHEMA, ["Host"]) and "Host" in concrete(SCHEMA, ["Host"])


def test_a_file_overrides_by_class_and_rule_id(tmp_path: Path) -> None:
    f = tmp_path / "health.yaml"
    f.write_text("stale_after_days: 7\nrecommended:\n  Host: [kernel]\nrelationship_rules:\n"
                 "  - {id: orphan, title: are alone, classes: [Database], lacks: [{types: any}]}\n"
                 "  - {id: no-location, title: are nowhere, classes: [Device],"
                 " lacks: [{types: [LOCATED_IN], direction: out}]}\n")
    cfg = HealthConfig.load(SCHEMA, f)
    assert cfg.stale_after_days == 7
    assert checked_attributes(SCHEMA, cfg, "Server")[1] == ["hostname", "vendor", "model", "kernel"]
    rules = {r.id: r for r in cfg.rules}
    assert rules["orphan"].classes == ("Database",) and "no-location" in rules and "idle-unowned-host" in rules


@pytest.mark.parametrize(("text", "message"), [
    ("recommended:\n  Sever: [os]\n", "unknown class(es) Sever"),
    ("recommended:\n  Server: [serail]\n", "serail"),
    ("stale_after_days: soon\n", "stale_after_days must be a whole number"),
    ("relationship_rules:\n  - {id: x, classes: [Service], lacks: [{types: [OWNS]}]}\n", "OWNS"),
    ("relationship_rules:\n  - {id: x, classes: [Service], lacks: [{direction: up}]}\n", "direction must be"),
    ("relationship_rules:\n  - {id: x, classes: [Service], lacks: []}\n", "non-empty lacks"),
    ("colour: blue\n", "unknown key(s) colour"),
    ("- just a list\n", "must be a mapping"),
])
def test_bad_configuration_names_the_file_and_the_item(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.yaml") as info:
        HealthConfig.load(SCHEMA, f)
    assert message in str(info.value)


def test_the_environment_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMDB_HEALTH_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"cannot read the health configuration .*missing\.yaml"):
        HealthConfig.load(SCHEMA)
