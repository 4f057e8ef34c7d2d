"""``cmdb load``, ``init`` and listings as a user meets them (issue 20 items 4, 7, 8; issue 17 item 7):
no silent empty stores, standard input, dry runs, every problem of a batch at once, typed attribute
filters, listings that say they are truncated and tables that never cut an id."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SERVERS = "".join(
    f"  - {{class: Server, hostname: srv-{i:02d}, serial_number: SN-{i:02d}, cpu_count: {4 + i % 2 * 4}}}\n"
    for i in range(12))
ESTATE = "source: manual\ncis:\n" + SERVERS


def cmdb(store: Path, *args: str, stdin: str | None = None, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CMDB_STORE": f"sqlite:///{store}", "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=120, check=False)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("batches") / "cmdb.db"
    ok(cmdb(store, "load", "-", stdin=ESTATE))  # standard input
    return store


def test_a_read_never_creates_a_store_and_init_says_where(tmp_path: Path) -> None:
    typo = tmp_path / "typo" / "cmdb.db"
    for args in (("ci", "list"), ("stats",), ("runs",), ("impact", "spof"), ("tasks", "list"), ("history", "x")):
        proc = cmdb(typo, *args)
        assert proc.returncode == 4 and f"no store at {typo}" in proc.stderr and "cmdb" in proc.stderr, args
    assert not typo.exists() and not typo.parent.exists()
    made = ok(cmdb(typo, "init"))
    assert f"created a new store at {typo}" in made.stdout and typo.exists()
    again = ok(cmdb(typo, "init", "--json"))
    assert json.loads(again.stdout)["created"] is False
    fresh = tmp_path / "fresh.db"
    loaded = ok(cmdb(fresh, "load", "-", stdin=ESTATE))
    assert f"created a new store at {fresh}" in loaded.stderr and "12 created" in loaded.stdout


def test_each_file_is_reported_as_it_is_written_then_the_error(tmp_path: Path) -> None:
    store = tmp_path / "two.db"
    (tmp_path / "a.yaml").write_text(ESTATE)
    (tmp_path / "b.yaml").write_text("source: manual\ncis:\n  - {class: Server, serial_number: SN-99, cpu_count: x}\n")
    proc = cmdb(store, "load", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert proc.returncode == 2
    assert f"{tmp_path / 'a.yaml'}: 12 created" in proc.stdout  # a was written, and says so
    assert "b.yaml" in proc.stderr and "cpu_count" in proc.stderr and "1 of 2 files were written" in proc.stderr
    as_json = cmdb(store, "load", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "--json")
    written = json.loads(as_json.stdout)
    assert [r["file"] for r in written["items"]] == [str(tmp_path / "a.yaml")]
    assert written["failed"] == str(tmp_path / "b.yaml") and json.loads(as_json.stderr)["error"]["exit_code"] == 2
    assert json.loads(ok(cmdb(store, "stats", "--json")).stdout)["cis"] == 12


def test_dry_run_shows_what_would_change_and_writes_nothing(estate: Path) -> None:
    before = json.loads(ok(cmdb(estate, "stats", "--json")).stdout)
    batch = ("source: manual\ncis:\n  - {class: Server, serial_number: SN-00, cpu_count: 64}\n"
             "  - {class: Server, serial_number: SN-01}\n  - {class: Server, hostname: new-1, serial_number: SN-NEW}\n")
    proc = ok(cmdb(estate, "load", "-", "--dry-run", stdin=batch))
    assert "would create 1, update 1, leave 1 unchanged" in proc.stdout and "nothing written" in proc.stdout
    assert re.search(r"update .*srv-00.*serial_number.*cpu_count: 4 -> 64", proc.stdout)
    plan = json.loads(ok(cmdb(estate, "load", "-", "--dry-run", "--json", stdin=batch)).stdout)["items"][0]
    assert (plan["would_create"], plan["would_update"], plan["unchanged"]) == (1, 1, 1)
    assert json.loads(ok(cmdb(estate, "stats", "--json")).stdout) == before
    nowhere = estate.parent / "not-yet.db"
    planned = ok(cmdb(nowhere, "load", "-", "--dry-run", stdin=batch))
    assert "would create 3" in planned.stdout and not nowhere.exists()  # a dry run never creates a store


def test_every_problem_of_a_batch_is_reported(estate: Path) -> None:
    items = "".join(f"  - {{class: Server, serial_number: BAD-{i}, cpu_count: lots}}\n" for i in range(30))
    batch = ("source: manual\ncis:\n  - {class: Nope, name: x}\n" + items
             + "relationships:\n  - {type: RUNS_ON, from: ghost, to: also-ghost}\n")
    proc = cmdb(estate, "load", "-", stdin=batch)
    assert proc.returncode == 2
    assert "33 problems (the first 20 shown)" in proc.stderr and "nothing of this batch was written" in proc.stderr
    assert "cis[0] (Nope x): unknown CI class 'Nope'" in proc.stderr and "cis[19]" in proc.stderr
    assert proc.stderr.count("expected an integer") == 19


def test_attribute_filters_compare_typed_values(estate: Path) -> None:
    eight = json.loads(ok(cmdb(estate, "ci", "search", "--attr", "cpu_count=8", "--json")).stdout)
    assert eight["total"] == 6 and {c["attrs"]["cpu_count"] for c in eight["items"]} == {8}
    both = json.loads(ok(cmdb(estate, "ci", "search", "--class", "Server", "--attr", "cpu_count=4",
                              "--attr", "hostname=srv-00", "--json")).stdout)
    assert [c["name"] for c in both["items"]] == ["srv-00"]
    wrong = cmdb(estate, "ci", "search", "--attr", "cpu_count=eight")
    assert wrong.returncode == 2 and "expected an integer" in wrong.stderr
    unknown = cmdb(estate, "ci", "search", "--attr", "cpus=8")
    assert unknown.returncode == 2 and "'cpus' is not an attribute" in unknown.stderr


def test_a_truncated_listing_says_so_and_the_cursor_pages_on(estate: Path) -> None:
    first = ok(cmdb(estate, "ci", "list", "--limit", "5"))
    hint = re.search(r"5 of 12; the next page: --cursor (\S+)", first.stdout)
    assert hint is not None
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = json.loads(ok(cmdb(estate, "ci", "list", "--limit", "5", "--json",
                                  *(("--cursor", cursor) if cursor else ()))).stdout)
        assert page["total"] == 12
        seen += [c["id"] for c in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
        if len(seen) == 5:
            assert cursor == hint.group(1)
    assert len(seen) == len(set(seen)) == 12
    assert "12 of 12" in ok(cmdb(estate, "ci", "list")).stdout  # not truncated: no cursor offered
    bad = cmdb(estate, "ci", "list", "--cursor", "garbage!")
    assert bad.returncode == 2 and "not a cursor" in bad.stderr


def test_tables_never_cut_an_id(estate: Path) -> None:
    ids = [c["id"] for c in json.loads(ok(cmdb(estate, "ci", "list", "--json")).stdout)["items"]]
    narrow = ok(cmdb(estate, "ci", "list", columns=50)).stdout
    assert "…" not in narrow
    folded = re.sub(r"[│┃\s]", "", narrow)  # a folded id reads whole once the borders are gone
    assert all(i in folded or i[:10] in narrow for i in ids)
    wide = ok(cmdb(estate, "ci", "list", "--wide", columns=50)).stdout
    assert all(any(i in line for line in wide.splitlines()) for i in ids)  # each id whole on one line


def test_ci_show_of_an_address_lists_every_ci_it_matches(tmp_path: Path) -> None:
    store = tmp_path / "ip.db"
    ok(cmdb(store, "load", "-", stdin=(
        "source: manual\ncis:\n"
        "  - {ref: h, class: Server, hostname: web-1, serial_number: W-1, ip_addresses: [10.9.0.5]}\n"
        "  - {ref: ip, class: IPAddress, address: 10.9.0.5}\n"
        "relationships:\n  - {type: HAS_ADDRESS, from: h, to: ip}\n")))
    shown = json.loads(ok(cmdb(store, "ci", "show", "10.9.0.5", "--json")).stdout)
    assert shown["class"] == "IPAddress"
    assert [(a["class"], a["name"], a["via"]) for a in shown["also_matches"]] == [("Server", "web-1", "ip_addresses")]
    text = ok(cmdb(store, "ci", "show", "10.9.0.5")).stdout
    assert "also matches '10.9.0.5' (by ip_addresses): web-1 (Server)" in text
