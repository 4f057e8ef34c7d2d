"""``cmdb import`` and ``cmdb load`` as a user runs them: real processes on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_cli import cmdb

DATA = Path(__file__).resolve().parent.parent / "data" / "tabular"
MAP = str(DATA / "servers.map.yaml")


def test_import_dry_run_then_import_then_reimport(tmp_path: Path) -> None:
    (tmp_path / "ssh.yaml").write_text("source: ssh\ncis:\n  - {class: Server, serial_number: SRV-2001, "
                                       "environment: staging}\n")
    cmdb(tmp_path, "load", str(tmp_path / "ssh.yaml"))
    dry = cmdb(tmp_path, "import", str(DATA / "servers.csv"), "--mapping", MAP, "--dry-run").stdout
    assert "line 2: create Server web-01" in dry
    assert "line 4: update Server db-01 (ci-" in dry
    assert "matched by serial_number=srv-2001" in dry
    assert "environment: stays staging (ssh wins over import:assets, which says production)" in dry
    assert "ip_addresses: (none) -> ['10.20.1.21'] (import:assets wins)" in dry
    assert "nothing was written" in dry
    assert json.loads(cmdb(tmp_path, "stats", "--json").stdout)["cis"] == 1
    first = json.loads(cmdb(tmp_path, "import", str(DATA / "servers.csv"), "-m", MAP, "--json").stdout)
    assert (first["created"], first["updated"], first["rels_created"]) == (5, 1, 3)
    again = json.loads(cmdb(tmp_path, "import", str(DATA / "servers.csv"), "-m", MAP, "--json").stdout)
    assert (again["created"], again["updated"], again["events"]) == (0, 0, 0)


def test_bad_rows_are_listed_and_nothing_is_written(tmp_path: Path) -> None:
    proc = cmdb(tmp_path, "import", str(DATA / "bad_rows.csv"), "-m", MAP, ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{DATA / 'bad_rows.csv'}:4: env: 'prod' is not one of production" in proc.stderr
    assert f"{DATA / 'bad_rows.csv'}:6: installed: '2024-01-01' does not match the date format" in proc.stderr
    rejects = tmp_path / "rejects.csv"
    cmdb(tmp_path, "import", str(DATA / "bad_rows.csv"), "-m", MAP, "--skip-invalid", str(rejects))
    assert len(rejects.read_text().splitlines()) == 5


def test_non_utf8_files_are_named_not_a_traceback(tmp_path: Path) -> None:
    proc = cmdb(tmp_path, "import", str(DATA / "latin1.csv"), "-m", MAP, ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "latin1.csv:2: not valid utf-8 (byte 0xe9 at offset 59)" in proc.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"source: manual\ncis:\n  - {class: Server, hostname: caf\xe9}\n")
    proc = cmdb(tmp_path, "load", str(bad), ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}:3: not valid UTF-8 (byte 0xe9 at offset 53); save the file as UTF-8" in proc.stderr
