"""Mapped tabular files, pure: readers, the mapping format and row errors (no store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.errors import BadInputError
from cmdb.model import default_schema
from importers.mapping import RowError, load_mapping, mapping_from_dict
from importers.tabular import read_rows

DATA = Path(__file__).resolve().parent.parent / "data" / "tabular"


def mapping():  # type: ignore[no-untyped-def]
    return load_mapping(DATA / "servers.map.yaml", default_schema())


@pytest.mark.parametrize("name", ["servers.csv", "servers.json", "servers.yaml"])
def test_every_format_maps_to_the_same_rows(name: str) -> None:
    m = mapping()
    rows = [(line, m.map_row(row)) for line, row in read_rows(DATA / name, header=m.check_header)]
    assert len(rows) == 4
    first = rows[0][1]
    assert first.cls == "Server"
    assert first.attrs == {"hostname": "web-01", "serial_number": "SRV-1001", "environment": "production",
                           "ip_addresses": ["10.20.0.11", "10.20.0.12"], "description": "installed 2024-02-03"}
    assert [(r.type, v) for r, v in first.rels] == [("OWNED_BY", "ana.lopez@example.com")]
    assert rows[3][1].attrs["hostname"] == "batch, reports" and rows[3][1].rels == []


def test_lines_are_file_lines() -> None:
    assert [line for line, _ in read_rows(DATA / "servers.csv")] == [2, 3, 4, 5]
    assert [line for line, _ in read_rows(DATA / "servers.json")] == [2, 4, 6, 8]
    assert [line for line, _ in read_rows(DATA / "servers.yaml")] == [1, 3, 5, 11]


def test_json_is_streamed_across_chunks(tmp_path: Path) -> None:
    import json

    path = tmp_path / "big.json"
    rows = [{"hostname": f"h{i}", "serial": f"S{i}", "note": "x" * 50} for i in range(5000)]
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
    got = list(read_rows(path))
    assert [r for _, r in got] == rows
    assert got[4999][0] == 5001


def test_bad_cells_name_column_and_reason() -> None:
    m = mapping()
    problems = []
    for line, row in read_rows(DATA / "bad_rows.csv", header=m.check_header):
        try:
            m.map_row(row)
        except RowError as exc:
            problems.append(f"{line}: {exc}")
    assert problems == [
        "3: ips: expected an IP address, got '10.9.0.999'",
        "4: env: 'prod' is not one of production, staging, test, development, dr",
        "5: serial: no identity value: fill one of serial, hostname",
        "6: installed: '2024-01-01' does not match the date format '%d/%m/%Y'",
    ]


@pytest.mark.parametrize(("name", "expected"), [
    ("latin1.csv", "latin1.csv:2: not valid utf-8 (byte 0xe9 at offset 59); save the file as UTF-8, or name its "
                   "encoding in the mapping"),
    ("semicolon.csv", "semicolon.csv:1: the header is one column 'hostname;serial;ips;env;tier_note;owner_email;"
                      "installed'; the file looks ';'-delimited: set csv: {delimiter: \";\"} in the mapping"),
    ("malformed.json", "malformed.json:3: not valid JSON: Expecting property name enclosed in double quotes"),
    ("malformed.yaml", "malformed.yaml:3: not valid YAML"),
])
def test_malformed_files_name_file_and_line(name: str, expected: str) -> None:
    m = mapping()
    with pytest.raises(BadInputError) as exc:
        list(read_rows(DATA / name, header=m.check_header))
    assert expected in str(exc.value)
    assert str(exc.value).startswith(str(DATA / name))


def test_latin1_file_reads_with_its_encoding_named() -> None:
    rows = list(read_rows(DATA / "latin1.csv", encoding="latin-1"))
    assert rows[0][1]["hostname"] == "café-01"


def test_header_problems(tmp_path: Path) -> None:
    m = mapping()
    (tmp_path / "a.csv").write_text("hostname,serial,extra\nx,y,z\n")
    with pytest.raises(BadInputError, match=r"a.csv:1: the mapping names column\(s\) env, installed, ips, "
                                            r"owner_email .*; column\(s\) extra are not in the mapping"):
        list(read_rows(tmp_path / "a.csv", header=m.check_header))
    (tmp_path / "b.csv").write_text("hostname,hostname\n")
    with pytest.raises(BadInputError, match=r"b\.csv:1: duplicate column"):
        list(read_rows(tmp_path / "b.csv", header=m.check_header))
    (tmp_path / "c.csv").write_text("")
    with pytest.raises(BadInputError, match=r"c\.csv: the file is empty"):
        list(read_rows(tmp_path / "c.csv"))


@pytest.mark.parametrize(("doc", "expected"), [
    ({"name": "x", "identity": ["h"], "columns": {"h": "hostname"}}, "give exactly one of 'class' or 'class_column'"),
    ({"name": "x", "class": "Server", "identity": ["h"], "columns": {"h": "hostnme"}},
     "columns.h: attribute 'hostnme' is not defined for class Server"),
    ({"name": "x", "class": "Host2", "identity": ["h"], "columns": {"h": "hostname"}}, "unknown CI class 'Host2'"),
    ({"name": "x", "class": "Service", "identity": ["n"], "columns": {"n": "name"}},
     "class Service requires service_type, tier; map a column to it"),
    ({"name": "x", "class": "Server", "identity": ["h"], "columns": {"h": {"attribute": "hostname",
                                                                             "transforms": ["title"]}}},
     "unknown transform 'title'"),
    ({"name": "x", "class": "Server", "identity": ["h"], "columns": {"h": "hostname"},
      "relationships": [{"column": "o", "type": "OWNED_BY", "target": {"class": "Person", "attribute": "phone"}}]},
     "target attribute 'phone' is not an identity attribute of Person; use one of email, external_ids, username"),
    ({"name": "x", "class": "Server", "identity": ["h"], "columns": {"h": "hostname"},
      "relationships": [{"column": "o", "type": "OWNED_BY", "target": {"class": "Server", "attribute": "hostname"}}]},
     "OWNED_BY cannot point at a Server"),
    ({"name": "two words", "class": "Server", "identity": ["h"], "columns": {"h": "hostname"}}, "name: Value error"),
])
def test_mapping_errors(doc: dict[str, object], expected: str) -> None:
    with pytest.raises(BadInputError) as exc:
        mapping_from_dict(doc, default_schema(), "m.yaml")
    assert expected in str(exc.value)
    assert str(exc.value).startswith("m.yaml")


def test_class_from_a_column() -> None:
    m = mapping_from_dict({"name": "mixed", "class_column": "kind", "class_map": {"vm": "VirtualMachine",
                                                                                    "server": "Server"},
                           "identity": ["h"], "columns": {"h": "fqdn"}}, default_schema())
    assert m.map_row({"kind": "vm", "h": "a"}).cls == "VirtualMachine"
    with pytest.raises(RowError, match="kind: no class for 'toaster'"):
        m.map_row({"kind": "toaster", "h": "a"})
