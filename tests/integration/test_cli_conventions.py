"""The conventions every ``cmdb`` command follows (issue 20 items 2 and 3): global options anywhere, one
JSON envelope, errors as JSON in --json mode, meaningful exit codes, logs with timestamps, completion."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer

from cmdb.cli_conventions import EXIT_CODES, command_tree, package_version, run

ROOT = Path(__file__).resolve().parents[2]
GLOBAL_FLAGS = ("--store", "--json", "-v", "--verbose", "-q", "--quiet", "--log-format")
ESTATE = """\
source: manual
cis:
  - {ref: web, class: Server, hostname: web-01, serial_number: W-1, cpu_count: 8}
  - {ref: db, class: Server, hostname: db-01, serial_number: D-1, cpu_count: 16}
  - {ref: app, class: Application, name: shop}
relationships:
  - {type: RUNS_ON, from: app, to: web}
"""


def cmdb(store: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "CMDB_STORE": f"sqlite:///{store}", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True,
                          env=environ, input=stdin, timeout=120, check=False)


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("conventions")
    (tmp / "estate.yaml").write_text(ESTATE)
    store = tmp / "cmdb.db"
    proc = cmdb(store, "load", str(tmp / "estate.yaml"))
    assert proc.returncode == 0, proc.stderr
    return store


def _walk(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, cmd
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        yield from _walk(sub, (*path, name))


def test_every_command_of_the_product_takes_the_global_options() -> None:
    """A command added by any wing (or tomorrow) gets the global options; one that declares its own -v or
    --json as something else is caught here."""
    from product.cli import app

    commands = list(_walk(command_tree(app)))
    assert len(commands) > 40  # the whole product: core, discovery, impact, importers, serve, tokens
    missing = []
    for path, cmd in commands:
        params = {o: p for p in cmd.params for o in (getattr(p, "opts", None) or ())}
        missing += [f"cmdb {' '.join(path)}: {flag}" for flag in GLOBAL_FLAGS if flag not in params]
        for flag in ("-v", "-q", "--log-format"):  # only ever the global meaning
            if flag in params:
                assert str(params[flag].name).startswith("cmdb_"), f"cmdb {' '.join(path)} redefines {flag}"
    assert missing == []


def test_version_and_completion(tmp_path: Path) -> None:
    proc = cmdb(tmp_path / "none.db", "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"cmdb {package_version()}"
    proc = cmdb(tmp_path / "none.db", "--version", "--json")
    assert json.loads(proc.stdout) == {"schema_version": 1, "version": package_version()}
    # shell completion: what bash asks for `cmdb ci <TAB>`
    proc = cmdb(tmp_path / "none.db", env={"_CMDB_COMPLETE": "complete_bash", "COMP_WORDS": "cmdb ci ",
                                           "COMP_CWORD": "2"})
    assert proc.returncode == 0 and set(proc.stdout.split()) >= {"list", "search", "show"}
    assert "complete" in cmdb(tmp_path / "none.db", "--show-completion", "bash").stdout


def test_global_options_before_or_after_the_subcommand(estate: Path, tmp_path: Path) -> None:
    before = cmdb(tmp_path / "elsewhere.db", "--json", "--store", f"sqlite:///{estate}", "ci", "list")
    after = cmdb(tmp_path / "elsewhere.db", "ci", "list", "--store", f"sqlite:///{estate}", "--json")
    middle = cmdb(tmp_path / "elsewhere.db", "ci", "--json", "list", "--store", f"sqlite:///{estate}")
    assert before.returncode == after.returncode == middle.returncode == 0, before.stderr + after.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout) == json.loads(middle.stdout)
    assert json.loads(before.stdout)["total"] == 3
    # a wing's command too: impact and runs read the same global --store and --json
    spof = cmdb(tmp_path / "elsewhere.db", "impact", "spof", "--json", "--store", f"sqlite:///{estate}")
    assert spof.returncode == 0 and "items" in json.loads(spof.stdout)
    runs = cmdb(tmp_path / "elsewhere.db", "--json", "runs", "list", "--store", f"sqlite:///{estate}")
    assert runs.returncode == 0 and json.loads(runs.stdout)["items"] == []


def test_one_json_envelope(estate: Path) -> None:
    listing = json.loads(cmdb(estate, "ci", "list", "--json").stdout)
    assert set(listing) >= {"schema_version", "items", "total", "next"} and listing["next"] is None
    for args in (("history", "web-01"), ("rel", "list"), ("conflicts",), ("runs",), ("tasks", "list")):
        doc = json.loads(cmdb(estate, *args, "--json").stdout)
        assert (doc["schema_version"], type(doc["items"]), type(doc["total"])) == (1, list, int), args
    shown = json.loads(cmdb(estate, "ci", "show", "web-01", "--as-of", "2100-01-01", "--json").stdout)
    assert shown["class"] == "Server" and "cls" not in shown  # one key for the class everywhere
    assert json.loads(cmdb(estate, "stats", "--json").stdout)["schema_version"] == 1


def test_exit_codes_and_errors_as_json(estate: Path, tmp_path: Path) -> None:
    ok = cmdb(estate, "stats")
    assert ok.returncode == 0
    usage = cmdb(estate, "ci", "list", "--no-such-option", "--json")
    assert usage.returncode == 2 and json.loads(usage.stderr)["error"]["exit_code"] == 2
    (tmp_path / "bad.yaml").write_text("source: manual\ncis:\n  - {class: Server, serial_number: X, cpu_count: x}\n")
    bad = cmdb(estate, "load", str(tmp_path / "bad.yaml"), "--json")
    error = json.loads(bad.stderr)["error"]
    assert bad.returncode == 2 and error["type"] == "BadInputError" and "cpu_count" in error["message"]
    missing = cmdb(estate, "--json", "ci", "show", "no-such-ci")
    assert missing.returncode == 3 and json.loads(missing.stderr)["error"]["type"] == "NotFoundError"
    nowhere = cmdb(tmp_path / "typo.db", "ci", "list")
    assert nowhere.returncode == 4 and str(tmp_path / "typo.db") in nowhere.stderr
    assert "Traceback" not in usage.stderr + bad.stderr + missing.stderr + nowhere.stderr
    assert not (tmp_path / "typo.db").exists()


def test_the_readme_documents_the_exit_codes() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Exit codes"):]
    for code, meaning in EXIT_CODES.items():
        assert re.search(rf"^\|\s*{code}\s*\|", section, re.M), f"exit code {code} ({meaning}) not in the README"


def test_log_lines_have_timestamps_text_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    probe = typer.Typer()

    @probe.command()
    def work(count: Annotated[int, typer.Option()] = 1) -> None:
        logging.getLogger("cmdb.probe").info("worked %d times", count)

    @probe.command()
    def other() -> None:
        logging.getLogger("cmdb.probe").warning("other")

    codes: list[int] = []
    run(probe, ["work", "--count", "2", "-v", "--log-format", "json"], exit_with=codes.append)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"]) == ("info", "cmdb.probe", "worked 2 times")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    run(probe, ["work"], exit_with=codes.append)  # info is below the default level (warning)
    assert "worked" not in capsys.readouterr().err
    run(probe, ["-q", "other"], exit_with=codes.append)
    assert "other" not in capsys.readouterr().err
    run(probe, ["other"], exit_with=codes.append)
    assert re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z WARNING cmdb.probe: other", capsys.readouterr().err)
    assert codes == [0, 0, 0, 0]
