"""The one configuration file (``cmdb.config``): where it is found, environment overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.config import check_config, config_path, load_document
from cmdb.errors import ConfigError
from cmdb.partitions import PartitionRules
from cmdb.reconcile import ReconcileConfig
from impact.automation_config import load_config
from impact.priority import PriorityMatrix
from product.config_sections import register

register()  # the wings' sections, as the composition root does


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No configuration from the machine running the tests: an empty XDG directory, no overrides."""
    import os

    for name in list(os.environ):
        if name.startswith("CMDB__") or name in ("CMDB_CONFIG", "CMDB_PRIORITY_MATRIX"):
            monkeypatch.delenv(name)
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    return xdg


def write_user_config(xdg: Path, text: str) -> Path:
    path = xdg / "cmdb" / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_the_user_file_is_found_and_an_explicit_one_wins(clean_env: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if Path("/etc/cmdb/config.yaml").exists():
        pytest.skip("this machine has a system configuration file")
    assert config_path() is None
    assert ReconcileConfig.load().stale_after_runs == 3  # defaults
    user = write_user_config(clean_env, "reconciliation: {stale_after_runs: 2, retire_after_runs: 5}\n")
    assert config_path() == user
    assert ReconcileConfig.load().stale_after_runs == 2
    explicit = tmp_path / "ops.yaml"
    explicit.write_text("reconciliation: {stale_after_runs: 4}\n")
    monkeypatch.setenv("CMDB_CONFIG", str(explicit))
    assert ReconcileConfig.load().stale_after_runs == 4
    monkeypatch.setenv("CMDB_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"missing\.yaml \(named by CMDB_CONFIG\) does not exist"):
        ReconcileConfig.load()


def test_environment_overrides_and_origins(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = write_user_config(clean_env, "reconciliation:\n  stale_after_runs: 2\n  retire_after_runs: 5\n"
                                        "partitions:\n  - {source: aws, partition: aws}\n")
    monkeypatch.setenv("CMDB__RECONCILIATION__RETIRE_AFTER_RUNS", "9")
    monkeypatch.setenv("CMDB__RECONCILIATION__PRECEDENCE", "[manual, ssh, scan]")
    monkeypatch.setenv("CMDB__TASKS__THRESHOLDS_DAYS", "[60, 7, 0]")
    cfg = ReconcileConfig.load()
    assert (cfg.stale_after_runs, cfg.retire_after_runs, cfg.precedence) == (2, 9, ("manual", "ssh", "scan"))
    assert load_config(check_secrets=False).tasks.thresholds_days == [60, 7, 0]
    doc = load_document()
    assert doc.origin(("reconciliation", "stale_after_runs")) == f"file {user}"
    assert doc.origin(("reconciliation", "retire_after_runs")) == "env CMDB__RECONCILIATION__RETIRE_AFTER_RUNS"
    assert doc.origin(("reconciliation", "fresh_for_hours")) == "default"
    assert doc.origin(("partitions", 0, "source")) == f"file {user}"
    assert PartitionRules.load().partition_for("aws", None) == "aws"


def test_every_problem_is_reported_at_once_with_its_path(clean_env: Path) -> None:
    user = write_user_config(clean_env, """
reconciliation: {fresh_for_hours: -1, colour: red}
tasks: {thresholds_days: [30, -1]}
channels: {hook: {type: webhook, url: "ftp://example.com"}}
priority: {impact_levels: {"1": {down: catastrophic}}}
partitions: [{source: aws}]
delivery: {max_attempts: 0}
bogus: 1
""")
    doc, problems = check_config()
    assert doc.path == user
    paths = {p.path for p in problems}
    assert {"reconciliation.fresh_for_hours", "reconciliation.colour", "tasks.thresholds_days",
            "channels.hook.webhook.url", "priority", "partitions.0.partition", "delivery.max_attempts",
            "bogus"} <= paths
    assert all(p.origin == f"file {user}" for p in problems)
    with pytest.raises(ConfigError) as err:  # a command reading its section names every problem of it
        ReconcileConfig.load()
    assert "reconciliation.fresh_for_hours" in str(err.value) and "reconciliation.colour" in str(err.value)


def test_priority_matrix_from_the_configuration_file(clean_env: Path) -> None:
    assert PriorityMatrix.load().matrix["high"]["medium"] == "P2"  # the default 3x3
    write_user_config(clean_env, "priority:\n  matrix: {high: {high: P1, medium: P1, low: P2},"
                                 " medium: {high: P2, medium: P3, low: P4}, low: {high: P3, medium: P4, low: P5}}\n")
    assert PriorityMatrix.load().matrix["high"]["medium"] == "P1"


def test_the_old_flat_reconciliation_format_still_loads(clean_env: Path) -> None:
    write_user_config(clean_env, "precedence: [manual, scan]\nstale_after_runs: 1\n")
    cfg = ReconcileConfig.load()
    assert cfg.precedence == ("manual", "scan") and cfg.stale_after_runs == 1
