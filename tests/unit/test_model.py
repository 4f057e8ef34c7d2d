"""The data-driven model: validation, inheritance, identity domains and schema extensions."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmdb.errors import BadInputError, SchemaError, UnknownClassError
from cmdb.model import Schema


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema.load()


def test_required_classes_and_relationship_types_exist(schema: Schema) -> None:
    for cls in ["Service", "Application", "Database", "Host", "Server", "VirtualMachine", "CloudInstance",
                "Container", "NetworkDevice", "Router", "Switch", "Firewall", "LoadBalancer", "Interface",
                "IPAddress", "Subnet", "Network", "VPC", "Cluster", "Certificate", "License", "SoftwareInstall",
                "Location", "Person", "Team"]:
        assert cls in schema.classes
    for rel in ["DEPENDS_ON", "RUNS_ON", "HOSTED_ON", "MEMBER_OF", "CONNECTED_TO", "HAS_INTERFACE", "HAS_ADDRESS",
                "IN_SUBNET", "LOCATED_IN", "USES_CERTIFICATE", "LICENSED_BY", "OWNED_BY", "SUPPORTED_BY",
                "SERVICE_OWNER", "CHANGE_APPROVER", "SUBSCRIBED_TO"]:
        assert rel in schema.relationships
    assert schema.rel_type("DEPENDS_ON").impact == "to_source"
    assert schema.rel_type("MEMBER_OF").group
    assert schema.rel_type("OWNED_BY").impact == "none" and schema.rel_type("OWNED_BY").stakeholder == "owner"


def test_inheritance_and_identity_domain(schema: Schema) -> None:
    server = schema.ci_class("Server")
    assert server.ancestors == ("Server", "Host", "Device", "CI")
    assert "serial_number" in server.attributes and "kernel" in server.attributes
    assert schema.ci_class("Switch").identity_domain == schema.ci_class("Server").identity_domain == "device"
    assert schema.ci_class("VPC").identity_domain == "Network"
    assert schema.is_a("Server", "Host") and not schema.is_a("Host", "Server")
    assert "Server" in schema.descendants("Device") and "Switch" in schema.descendants("Device")


def test_values_are_canonicalised(schema: Schema) -> None:
    out = schema.validate("Server", {
        "mac_addresses": ["AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff", "00:11:22:33:44:55"],
        "ip_addresses": ["10.0.0.1"], "cpu_count": "8", "hostname": "web-01",
    })
    assert out["mac_addresses"] == ["00:11:22:33:44:55", "aa:bb:cc:dd:ee:ff"]
    assert out["cpu_count"] == 8
    cert = schema.validate("Certificate", {"subject": "CN=x", "not_after": "2027-01-31T12:00:00+01:00"})
    assert cert["not_after"] == "2027-01-31T11:00:00Z"
    assert schema.validate("License", {"product": "p", "expires": "2027-02-01"})["expires"] == "2027-02-01"


@pytest.mark.parametrize(("cls", "attrs", "needle"), [
    ("Server", {"cpu_count": "many"}, "cpu_count"),
    ("Server", {"ip_addresses": ["999.1.1.1"]}, "IP address"),
    ("Server", {"mac_addresses": "not-a-list"}, "list"),
    ("Service", {"tier": 7}, "maximum"),
    ("Service", {"service_type": "cosmic"}, "business, technical"),
    ("Server", {"colour": "red"}, "not defined"),
])
def test_bad_values_name_the_attribute(schema: Schema, cls: str, attrs: dict[str, object], needle: str) -> None:
    with pytest.raises(BadInputError) as info:
        schema.validate(cls, attrs)
    assert needle in str(info.value)


def test_unknown_and_abstract_classes(schema: Schema) -> None:
    with pytest.raises(UnknownClassError, match="Sever"):
        schema.validate("Sever", {})
    with pytest.raises(UnknownClassError, match="abstract"):
        schema.validate("Device", {"hostname": "x"})


def test_extension_file_adds_a_class_an_attribute_and_a_relationship(tmp_path: Path) -> None:
    ext = tmp_path / "site.yaml"
    ext.write_text(
        "classes:\n"
        "  StorageArray:\n"
        "    parent: Device\n"
        "    attributes:\n"
        "      raw_tb: {type: float, min: 0}\n"
        "  Server:\n"
        "    attributes:\n"
        "      rack_unit: {type: int}\n"
        "relationships:\n"
        "  REPLICATES_TO: {impact: none}\n"
    )
    schema = Schema.load([ext])
    assert schema.validate("StorageArray", {"serial_number": "SA1", "raw_tb": "12.5"})["raw_tb"] == 12.5
    assert schema.ci_class("StorageArray").identity_domain == "device"
    assert schema.validate("Server", {"rack_unit": 4}) == {"rack_unit": 4}
    assert schema.rel_type("REPLICATES_TO").impact == "none"


@pytest.mark.parametrize(("text", "needle"), [
    ("classes:\n  Foo:\n    parent: Nope\n", "unknown parent"),
    ("classes:\n  Foo:\n    attributes:\n      x: {type: widget}\n", "unknown type"),
    ("classes:\n  Server:\n    attributes:\n      hostname: {type: string}\n", "already has attribute"),
    ("relationships:\n  FEEDS: {impact: sideways}\n", "impact must be"),
    ("classes: [\n", "not valid YAML"),
])
def test_bad_extension_files_are_rejected(tmp_path: Path, text: str, needle: str) -> None:
    ext = tmp_path / "bad.yaml"
    ext.write_text(text)
    with pytest.raises(SchemaError, match=needle):
        Schema.load([ext])
