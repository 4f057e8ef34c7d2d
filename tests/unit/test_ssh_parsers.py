"""SSH host discovery, pure part: recorded command outputs -> facts -> batch, checked by a real ingest.

``tests/data/ssh/app1`` and ``db1`` were recorded from this project's sshd lab (Debian, a container:
``python scripts/sshd_hosts.py --record tests/data/ssh``); ``rhel-web1`` is a hand-written rpm-based
VMware host with nginx, a Java service, Docker plumbing and certificates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cmdb.batch import Batch
from cmdb.ingest import ingest
from cmdb.store.sqlite import SqliteStore
from discovery.ssh import parsers
from discovery.ssh.commands import HOST_COMMANDS, certificate_command, commands_for, host_script
from discovery.ssh.facts import CommandOutput, HostFacts, build_facts, split_script_output
from discovery.ssh.transform import DEFAULT_PACKAGE_PATTERNS, transform_host

DATA = Path(__file__).resolve().parent.parent / "data" / "ssh"


def recorded(host: str) -> HostFacts:
    """The facts of a recorded host, built exactly as the collector builds them."""
    hdir = DATA / host
    meta = json.loads((hdir / "meta.json").read_text())
    outputs = {name: CommandOutput(name, status, (hdir / f"{name}.out").read_text(), meta["stderr"].get(name, ""))
               for name, status in meta["exit"].items()}
    return build_facts(meta["target"], meta["address"], outputs, host_key=meta["host_key"], profile=meta["profile"],
                       collected_at=meta["collected_at"], commands=commands_for(meta["cert_paths"]),
                       cert_roots=meta["cert_paths"])


def by_class(batch: Batch, cls: str) -> list[dict[str, Any]]:
    return [c.attrs for c in batch.cis if c.cls == cls]


def rels(batch: Batch, rtype: str) -> set[tuple[str, str]]:
    return {(str(r.src), str(r.dst)) for r in batch.rels if r.type == rtype}


# -- parsers ------------------------------------------------------------------------------------------

def test_ss_lines_with_wildcards_ipv6_mapped_and_several_processes() -> None:
    text = (DATA / "rhel-web1" / "sockets.out").read_text()
    socks = parsers.parse_sockets(text)
    assert len(socks) == 15
    nginx = socks[0]
    assert (nginx.state, nginx.local_addr, nginx.local_port) == ("LISTEN", "0.0.0.0", 443)
    assert nginx.processes == (("nginx", 1201), ("nginx", 1200))
    assert (socks[1].local_addr, socks[1].peer_addr) == ("::", "::")
    assert socks[4].local_addr == "127.0.0.53"  # the %lo scope is dropped
    assert socks[12].processes == ()  # TIME-WAIT has no owner
    assert (socks[13].local_addr, socks[13].peer_addr, socks[13].peer_port) == ("2001:db8:20::11", "2001:db8:20::99",
                                                                                  6379)
    mapped = parsers.parse_sockets('LISTEN 0 4096 [::ffff:127.0.0.1]:60773 *:* users:(("java",pid=9,fd=3))\n')
    assert (mapped[0].local_addr, mapped[0].peer_addr) == ("127.0.0.1", "::")


def test_ss_garbage_is_a_parse_error_naming_the_command() -> None:
    with pytest.raises(parsers.FactsParseError, match="command sockets"):
        parsers.parse_sockets("LISTEN 0 128\n")
    with pytest.raises(parsers.FactsParseError, match="bad address"):
        parsers.parse_sockets("LISTEN 0 128 nonsense:22 0.0.0.0:*\n")


def test_links_and_addresses() -> None:
    links = parsers.parse_links((DATA / "rhel-web1" / "links.out").read_text())
    assert [(k.name, k.kind, k.mac, k.admin_up, k.oper_state) for k in links] == [
        ("lo", "loopback", "00:00:00:00:00:00", True, "UNKNOWN"),
        ("ens192", "ether", "00:50:56:9a:3b:01", True, "UP"),
        ("ens224", "ether", "00:50:56:9a:3b:02", False, "DOWN"),
        ("docker0", "ether", "02:42:8c:1e:77:10", True, "DOWN"),
        ("veth3f2a1b0", "ether", "6e:1d:88:02:aa:31", True, "UP"),
        ("ens192.30", "ether", "00:50:56:9a:3b:01", True, "UP"),
    ]
    addrs = parsers.parse_addrs((DATA / "rhel-web1" / "addrs.out").read_text())
    assert ("ens192", parsers.Address("2001:db8:20::11", 64, "global")) in addrs
    assert ("ens192", parsers.Address("fe80::250:56ff:fe9a:3b01", 64, "link")) in addrs
    with pytest.raises(parsers.FactsParseError, match="command links"):
        parsers.parse_links("what is this\n")


def test_packages_dpkg_and_rpm() -> None:
    manager, pkgs = parsers.parse_packages((DATA / "app1" / "packages.out").read_text())
    assert manager == "dpkg" and len(pkgs) > 300
    names = {p.name: p for p in pkgs}
    assert names["openssh-server"].version.startswith("1:9.2p1") and names["openssh-server"].arch == "amd64"
    manager, pkgs = parsers.parse_packages((DATA / "rhel-web1" / "packages.out").read_text())
    assert manager == "rpm"
    names = {p.name: p for p in pkgs}
    assert "gpg-pubkey" not in names  # signing keys are not software
    assert names["kernel"].version == "5.14.0-362.8.1.el9_3"  # first of the installed kernels
    assert names["nginx"].vendor == "Red Hat, Inc." and names["custom-agent"].vendor == ""
    removed = "#dpkg\nrc \told-pkg\t1.0\tamd64\nii \tkept\t2.0\tamd64\n"
    assert [p.name for p in parsers.parse_packages(removed)[1]] == ["kept"]
    with pytest.raises(parsers.FactsParseError, match="#dpkg or #rpm"):
        parsers.parse_packages("nginx 1.0\n")


def test_small_parsers() -> None:
    assert parsers.parse_units("/proc/12/cgroup:nginx.service\n/proc/12/cgroup:nginx.service\n/proc/x/cgroup:a\n") \
        == {12: "nginx.service"}
    assert parsers.parse_partitions_gb((DATA / "rhel-web1" / "partitions.out").read_text()) == 300  # sda + sdb
    assert parsers.parse_partitions_gb("major minor  #blocks  name\n\n 259 0 1048576 nvme0n1\n 259 1 524288 "
                                       "nvme0n1p1\n") == 1
    assert parsers.parse_meminfo_mb("MemTotal:        7910364 kB\n") == 7724
    assert parsers.parse_fqdn("web1.corp.example.com\n", "web1") == "web1.corp.example.com"
    assert parsers.parse_fqdn("localhost.localdomain\n", "web1") is None
    assert parsers.parse_fqdn("web1\n", "web1") is None
    assert parsers.parse_dmi("To Be Filled By O.E.M.\nSystem Product Name\n") == (None, None)
    assert parsers.parse_os_release('NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n')["VERSION_ID"] == "3.19.1"
    with pytest.raises(parsers.FactsParseError):
        parsers.parse_hostname("\n")


def test_certificates_keep_only_certificate_blocks() -> None:
    certs, problems = parsers.parse_certificates((DATA / "rhel-web1" / "certificates.out").read_text())
    assert [c.path for c in certs] == ["/etc/pki/nginx/server.crt", "/etc/pki/nginx/chain/copy.pem"]
    attrs = certs[0].attrs
    assert attrs["fingerprint_sha256"] == "380c14e30ed7850ad1ba6a2ea794b2451618ee0bf9810a5c5219a17484de6840"
    assert attrs["subject"] == "CN=web1.corp.example.com" and attrs["issuer"] == "CN=Corp Issuing CA 1,O=Corp"
    assert attrs["sans"] == ["web1.corp.example.com", "shop.corp.example.com"] and attrs["serial"] == "0A1B2C3D4E5F"
    assert attrs["not_after"].startswith("2026-01-01T00:00:00")
    assert len(problems) == 1 and "broken.pem" in problems[0]
    recorded_text = (DATA / "app1" / "certificates.out").read_text()
    assert "PRIVATE KEY" not in recorded_text and "BEGIN CERTIFICATE" in recorded_text  # the file held a key


# -- the command script ---------------------------------------------------------------------------------

def test_script_output_is_split_per_command_and_a_cut_command_times_out() -> None:
    t = "a1b2"
    stdout = (f"\n@@{t} hostname\nweb1\n\n@@{t}-rc hostname 0\n\n@@{t} kernel\n5.14\n@@{t}-rc kernel 0\n"
              f"\n@@{t} fqdn\n\n@@{t}-rc fqdn 1\n\n@@{t} sockets\nLISTEN 0 1 1.2.3.4:22 0.0.0.0:*\n")
    stderr = f"\n@@{t} hostname\n\n@@{t} kernel\n\n@@{t} fqdn\nhostname: Name or service not known\n\n@@{t} sockets\n"
    out = split_script_output(stdout, stderr, t, ["hostname", "kernel", "fqdn", "sockets", "packages"], stopped=True)
    assert out["hostname"].stdout == "web1\n" and out["hostname"].ok
    assert out["kernel"].stdout == "5.14"
    assert out["fqdn"].exit_status == 1 and "Name or service" in out["fqdn"].stderr
    assert out["sockets"].timed_out and out["sockets"].stdout.startswith("LISTEN")
    assert out["packages"].timed_out and out["packages"].stdout == ""
    assert split_script_output(f"\n@@{t} x\n\n@@{t}-rc x 124\n", "", t, ["x"])["x"].timed_out


def test_script_runs_only_the_listed_commands_and_sudo_only_where_root_helps() -> None:
    script = host_script(HOST_COMMANDS, sudo=True, token="tok", timeout=20)
    assert script.count("$T ") == len(HOST_COMMANDS) and 'T="timeout -k 2 20"' in script
    assert "$T sudo -n ss -tanpH <" in script and "$T sudo -n cat /sys/class/dmi/id/product_serial <" in script
    assert "$T uname -n <" in script and "$T sh -c 'if command -v dpkg-query" in script
    assert script.count("sudo -n") == 2
    assert "sudo" not in host_script(HOST_COMMANDS, sudo=False, token="tok", timeout=20)
    quoted = certificate_command(["/etc/ssl/my certs", "/opt/x';rm -rf /'"]).text
    assert "'/etc/ssl/my certs'" in quoted and "'/opt/x'\"'\"';rm -rf /'\"'\"''" in quoted
    with pytest.raises(ValueError):
        host_script(HOST_COMMANDS, sudo=False, token="a b", timeout=1)


# -- facts and transform --------------------------------------------------------------------------------

def test_recorded_lab_host_facts() -> None:
    facts = recorded("app1")
    assert (facts.hostname, facts.fqdn, facts.label) == ("app1", "app1.lab.test", "app1.lab.test")
    assert facts.os_release["ID"] == "debian" and facts.virt == "docker"
    # optional, absent in a container: DMI, the serial number, systemd
    assert facts.complete and set(facts.notes) == {"dmi", "serial", "services", "units"}
    assert facts.services is None and facts.packages is not None
    assert [(k.name, k.mac) for k in facts.links] == [("lo", "00:00:00:00:00:00"), ("eth0", "02:7f:00:4f:00:01")]


def test_failed_required_command_makes_the_view_partial_and_no_hostname_is_an_error() -> None:
    outputs = {"hostname": CommandOutput("hostname", 0, "h1\n"),
               "sockets": CommandOutput("sockets", 1, "", "ss: permission denied\n"),
               "packages": CommandOutput("packages", 127, "")}
    facts = build_facts("10.0.0.1", "10.0.0.1", outputs)
    assert not facts.complete
    assert facts.failures["sockets"] == "exit 1: ss: permission denied"
    assert facts.failures["packages"] == "not installed"
    assert facts.failures["links"] == "not run" and facts.sockets is None
    batch = transform_host(facts)
    assert batch.complete is False and by_class(batch, "Host")[0]["hostname"] == "h1"
    with pytest.raises(parsers.FactsParseError, match="hostname"):
        build_facts("10.0.0.1", "10.0.0.1", {"hostname": CommandOutput("hostname", None, "", timed_out=True)})
    garbled = {**outputs, "sockets": CommandOutput("sockets", 0, "State Recv-Q\n")}
    with pytest.raises(parsers.FactsParseError, match="command sockets"):
        build_facts("10.0.0.1", "10.0.0.1", garbled)
    odd_optional = {**outputs, "fqdn": CommandOutput("fqdn", 0, "web 1\n"), "units": CommandOutput("units", 0, "?\n")}
    assert build_facts("10.0.0.1", "10.0.0.1", odd_optional).fqdn is None


def test_rhel_host_batch() -> None:
    batch = transform_host(recorded("rhel-web1"))
    assert (batch.source, batch.scope, batch.complete) == ("ssh", "10.20.0.11/32", True)
    host = batch.cis[0]
    assert host.cls == "VirtualMachine"
    assert host.attrs == {
        "hostname": "web1", "fqdn": "web1.corp.example.com", "mac_addresses": ["00:50:56:9a:3b:01",
                                                                             "00:50:56:9a:3b:02"],
        "ip_addresses": ["10.20.0.11", "10.20.0.50", "10.30.0.11", "2001:db8:20::11"],
        "management_ip": "10.20.0.11", "os": "Red Hat Enterprise Linux", "os_version": "9.3",
        "kernel": "5.14.0-362.8.1.el9_3.x86_64", "cpu_count": 4, "memory_mb": 7724, "disk_gb": 300,
        "vendor": "VMware, Inc.", "model": "VMware7,1",
        "serial_number": "VMware-42 1a 6b 9c 0d 2e 3f 40-51 62 73 84 95 a6 b7 c8",
        "ssh_host_key": "SHA256:hand+written+sample+for+an+rpm+based+host0000", "ssh_profile": "linux",
        "hypervisor": "vmware",
    }
    # docker0 and the veth are plumbing: no Interface, no MAC, no 172.17.0.1 (it exists on every Docker host)
    assert sorted(i["if_name"] for i in by_class(batch, "Interface")) == ["ens192", "ens192.30", "ens224"]
    assert sorted(a["address"] for a in by_class(batch, "IPAddress")) == ["10.20.0.11", "10.20.0.50", "10.30.0.11",
                                                                       "2001:db8:20::11"]
    assert ("if:ens192", "ip:2001:db8:20::11") in rels(batch, "HAS_ADDRESS")
    assert {(a["name"], a.get("process"), a["port"]) for a in by_class(batch, "Application")} == {
        ("nginx@web1.corp.example.com", "nginx", 443), ("sshd@web1.corp.example.com", "sshd", 22),
        ("java@web1.corp.example.com", "java", 8080), ("systemd-resolve@web1.corp.example.com", "systemd-resolve", 53),
        ("node_exporter@web1.corp.example.com", "node_exporter", 9100)}
    described = {a["name"]: a.get("description") for a in by_class(batch, "Application")}
    assert described["nginx@web1.corp.example.com"] == "systemd service nginx.service"
    assert described["java@web1.corp.example.com"] == "systemd service orders.service"  # the service behind java
    assert described["systemd-resolve@web1.corp.example.com"] is None  # its unit is not among the running ones
    endpoints = {(e["address"], e["port"], e.get("service")) for e in by_class(batch, "ServiceEndpoint")}
    # 0.0.0.0:443 and [::]:443 -> every routable address; 127.0.0.1:8080 and 127.0.0.53:53 -> none
    assert endpoints == {
        ("10.20.0.11", 443, "https"), ("10.20.0.50", 443, "https"), ("10.30.0.11", 443, "https"),
        ("2001:db8:20::11", 443, "https"), ("10.20.0.11", 22, "ssh"), ("10.20.0.50", 22, "ssh"),
        ("10.30.0.11", 22, "ssh"), ("10.20.0.50", 9100, None)}
    assert ("app:nginx@web1.corp.example.com", "ep:2001:db8:20::11:443") in rels(batch, "LISTENS_ON")
    assert ("app:java@web1.corp.example.com", "device") in rels(batch, "RUNS_ON")
    products = {s["product"] for s in by_class(batch, "SoftwareInstall")}
    assert products == {"nginx", "nginx-core", "openssl", "kernel", "java-17-openjdk-headless", "bash",
                        "openssh-server"}
    assert len(by_class(transform_host(recorded("rhel-web1"), packages=("*",)), "SoftwareInstall")) == 10
    cert = by_class(batch, "Certificate")
    assert len(cert) == 1 and cert[0]["subject"] == "CN=web1.corp.example.com"
    # the certificate under /etc/pki/nginx is nginx's; found twice, one relationship
    uses = [(r.src, r.attrs) for r in batch.rels if r.type == "USES_CERTIFICATE"]
    assert uses == [("app:nginx@web1.corp.example.com", {"path": "/etc/pki/nginx/server.crt"})]


def test_databases_and_container_hosts() -> None:
    batch = transform_host(recorded("db1"))
    assert batch.cis[0].cls == "Container" and batch.cis[0].attrs["runtime"] == "docker"
    assert by_class(batch, "Database") == [{"name": "postgres@db1.lab.test", "engine": "postgresql", "port": 5432}]
    assert {(e["address"], e["port"]) for e in by_class(batch, "ServiceEndpoint")} == {("127.0.79.2", 22),
                                                                                    ("127.0.79.2", 5432)}
    assert ("app:postgres@db1.lab.test", "ep:127.0.79.2:5432") in rels(batch, "LISTENS_ON")


@pytest.mark.parametrize("host", ["app1", "db1", "rhel-web1"])
def test_batches_are_schema_valid_and_idempotent(tmp_path: Path, host: str) -> None:
    store = SqliteStore(tmp_path / "cmdb.db")
    try:
        first = ingest(store, transform_host(recorded(host), packages=("*",)))
        assert first.created > 5 and not first.conflicts
        again = ingest(store, transform_host(recorded(host), packages=("*",)))
        assert (again.created, again.updated, again.events) == (0, 0, 0)
    finally:
        store.close()


def test_default_package_selection_is_a_small_subset() -> None:
    facts = recorded("app1")
    assert facts.packages is not None
    chosen = by_class(transform_host(facts), "SoftwareInstall")
    assert 5 < len(chosen) < len(facts.packages) / 5
    assert "openssh-server" in {c["product"] for c in chosen} and "*" not in DEFAULT_PACKAGE_PATTERNS
