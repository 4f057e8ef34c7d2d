"""Input that cannot hurt the store (issue 17 item 8): typed header fields, limits on aliases, strings,
attribute size and nesting, non-UTF-8 bytes named by file and offset, libyaml's C loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cmdb.batch import Batch
from cmdb.batch_input import MAX_ATTRIBUTE, MAX_DEPTH, MAX_STRING, yaml_loader
from cmdb.errors import BadInputError

ITEM = {"class": "Server", "serial_number": "S-1"}


def doc(**header: object) -> dict[str, object]:
    return {"source": "manual", "cis": [dict(ITEM)], **header}


@pytest.mark.parametrize(("header", "message"), [
    ({"complete": "false"}, "'complete' must be true or false (a boolean), not str 'false'"),
    ({"complete": 1}, "'complete' must be true or false"),
    ({"source": 42}, "'source' must be a string, not int 42; quote it"),
    ({"scope": 2024}, "'scope' must be a string, not int 2024"),
    ({"actor": ["a", "b"]}, "'actor' must be a string, not list"),
    ({"run_id": {"x": 1}}, "'run_id' must be a string, not dict"),
    ({"source": "  "}, "'source' is required"),
])
def test_header_fields_are_type_checked(header: dict[str, object], message: str) -> None:
    with pytest.raises(BadInputError) as err:
        Batch.from_dict(doc(**header), origin="f.yaml")
    assert message in str(err.value) and str(err.value).startswith("f.yaml: ")


def test_a_well_typed_header_passes() -> None:
    batch = Batch.from_dict(doc(complete=True, scope="10.0.0.0/24", actor="ann", run_id="r-1"))
    assert (batch.complete, batch.scope, batch.actor, batch.run_id) == (True, "10.0.0.0/24", "ann", "r-1")
    assert Batch.from_dict(doc(complete=None)).complete is False


def test_nested_aliases_are_refused_not_expanded(tmp_path: Path) -> None:
    """The 9-level billion-laughs file: 464 bytes that expand to gigabytes once written out."""
    lines = ["a0: &a0 [" + ", ".join(["'xxxxxxxxxx'"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = "\n".join(lines) + "\nsource: manual\ncis:\n  - {class: Server, serial_number: S-1, tags: *a8}\n"
    (tmp_path / "bomb.yaml").write_text(text)
    with pytest.raises(BadInputError, match=r"bomb\.yaml: YAML aliases expand this document"):
        Batch.from_file(tmp_path / "bomb.yaml")


def test_a_large_attribute_made_of_aliases_is_refused(tmp_path: Path) -> None:
    """Three levels of aliases: a few hundred bytes, a 3.7 MB relationship attribute before."""
    text = ("x: &x ['" + "y" * 1000 + "']\nsource: manual\n"
            "cis:\n  - {ref: a, class: Server, serial_number: S-1}\n  - {ref: b, class: Server, serial_number: S-2}\n"
            "relationships:\n  - {type: CONNECTED_TO, from: a, to: b, attributes: {blob: "
            + "[" + ", ".join(["[" + ", ".join(["*x"] * 20) + "]"] * 20) + "]}}\n")
    (tmp_path / "big.yaml").write_text(text)
    with pytest.raises(BadInputError) as err:
        Batch.from_file(tmp_path / "big.yaml")
    assert "relationships[0].attributes.blob" in str(err.value) and f"{MAX_ATTRIBUTE:,}" in str(err.value)


def from_json(doc: object) -> Batch:
    return Batch.from_bytes(json.dumps(doc).encode(), "<stdin>")


def test_a_long_string_is_refused_by_name() -> None:
    with pytest.raises(BadInputError, match=r"cis\[0\].description is a string of 70,000 characters"):
        from_json({"source": "manual", "cis": [{**ITEM, "description": "d" * 70_000}]})
    from_json({"source": "manual", "cis": [{**ITEM, "description": "d" * MAX_STRING}]})


def test_deep_nesting_is_a_clear_error_at_any_depth(tmp_path: Path) -> None:
    deep: object = "leaf"
    for _ in range(MAX_DEPTH):
        deep = {"k": deep}
    with pytest.raises(BadInputError, match=r"cis\[0\].nested.k.k.*is nested more than"):
        from_json({"source": "manual", "cis": [{**ITEM, "nested": deep}]})
    (tmp_path / "deep.json").write_text('{"source": "manual", "cis": [{"class": "Server", "x": '
                                        + "[" * 100_000 + "]" * 100_000 + "}]}")
    with pytest.raises(BadInputError, match=r"deep\.json: nested too deeply"):
        Batch.from_file(tmp_path / "deep.json")
    (tmp_path / "deep.yaml").write_text("source: manual\nx: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(BadInputError, match=r"deep\.yaml:2: not valid YAML: exceeded maximum nesting depth"):
        Batch.from_file(tmp_path / "deep.yaml")


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    (tmp_path / "loop.yaml").write_text("source: manual\ncis:\n  - &me {class: Server, serial_number: S, me: [*me]}\n")
    with pytest.raises(BadInputError, match="refers to itself"):
        Batch.from_file(tmp_path / "loop.yaml")


def test_bytes_that_are_not_utf8_name_the_file_and_offset(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes("source: manual\ncis:\n  - {class: Server, serial_number: Zürich}\n"
                                           .encode("latin-1"))
    with pytest.raises(BadInputError, match=r"latin1.yaml:3: not valid UTF-8 \(byte 0xfc at offset 56\)"):
        Batch.from_file(tmp_path / "latin1.yaml")
    with pytest.raises(BadInputError, match=r"<stdin>:1: not valid UTF-8 \(byte 0xff at offset 0\)"):
        Batch.from_bytes(b"\xff{}", "<stdin>")


def test_a_lone_surrogate_is_refused_before_any_store_sees_it(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"source": "manual", "cis": [{**ITEM, "note": "\ud800"}]}))
    with pytest.raises(BadInputError, match="lone UTF-16 surrogate"):
        Batch.from_file(tmp_path / "s.json")


def test_yaml_is_read_with_libyaml_when_pyyaml_has_it() -> None:
    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML was built without libyaml")
    assert yaml_loader() is yaml.CSafeLoader
    assert Batch.from_bytes(b"source: manual\ncis: [{class: Server, serial_number: S}]\n", "x").cis[0].cls == "Server"


def test_standard_input_is_json_or_yaml_by_its_first_character() -> None:
    assert Batch.from_bytes(b'  {"source": "manual", "cis": []}', "<stdin>").source == "manual"
    assert Batch.from_bytes(b"source: scan\n", "<stdin>").source == "scan"
