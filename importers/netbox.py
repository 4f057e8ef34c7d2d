"""NetBox (4.x REST API through pynetbox, or a JSON export) into one batch (source ``import:netbox``).

What becomes what (every CI carries ``external_ids: [netbox:<app>.<model>:<id>]``, so a re-import
updates; serials, MACs and hostname+IP still merge it with what discovery found):

- sites, locations, racks -> ``Location`` (kind site / room / rack; named ``<site>``, ``<site> <location>``,
  ``<site> rack <rack>`` since a Location is identified by name), each LOCATED_IN its parent;
- devices -> a Device class by role (``ROLE_CLASSES``: router, switch, firewall, load balancer, server),
  with serial, vendor (manufacturer), model (device type), os (platform), management_ip (primary IP),
  LOCATED_IN its rack, location or site;
- interfaces -> ``Interface`` (names as discovery writes them, ``discovery/names.py``) with HAS_INTERFACE;
  cables between two interfaces -> CONNECTED_TO (A end to B end);
- IP addresses -> ``IPAddress`` (HAS_ADDRESS from the device or VM), IN_SUBNET the longest imported
  prefix of the same VRF; prefixes -> ``Subnet``;
- clusters -> ``Cluster``; virtual machines -> ``VirtualMachine`` HOSTED_ON their cluster;
- tenants -> ``Team`` that OWNS what names it; contacts -> ``Person`` (email, phone), assigned to an
  object as OWNED_BY when the assignment's role says owner, SUPPORTED_BY otherwise.

A JSON export is one object of endpoint name -> list of records, each as the API returns it
(``{"dcim.sites": [...], "dcim.devices": [...], ...}``: what ``dict(record)`` of pynetbox gives).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmdb.batch import Batch, CIRecord, RelRecord
from cmdb.errors import BadInputError, CmdbError, ConfigError
from discovery.names import long_interface_name, short_hostname

SOURCE = "import:netbox"
ENDPOINTS = ("tenancy.tenants", "tenancy.contacts", "tenancy.contact_assignments", "dcim.sites", "dcim.locations",
             "dcim.racks", "dcim.devices", "dcim.interfaces", "dcim.cables", "ipam.prefixes", "ipam.ip_addresses",
             "virtualization.clusters", "virtualization.virtual_machines")
ROLE_CLASSES = {"router": "Router", "switch": "Switch", "firewall": "Firewall", "load-balancer": "LoadBalancer",
                "loadbalancer": "LoadBalancer", "server": "Server", "printer": "Printer"}
NETWORK_ROLES = {"core": "core", "distribution": "distribution", "access": "access", "edge": "edge", "wan": "wan"}


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _addr(cidr: Any) -> str | None:
    return str(cidr).split("/")[0] if cidr else None


def device_class(role_slug: str | None) -> str:
    slug = (role_slug or "").lower()
    if slug in ROLE_CLASSES:
        return ROLE_CLASSES[slug]
    for key, cls in ROLE_CLASSES.items():
        if key in slug:
            return cls
    return "Server"


@dataclass
class NetboxReading:
    batch: Batch
    notes: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, origin: str) -> None:
        self.batch = Batch(source=SOURCE, scope=origin, complete=False, origin=origin)
        self.labels: list[str] = []
        self.refs: set[str] = set()
        self.notes: list[str] = []
        self.names: dict[str, str] = {}  # ref -> what the Location is called (children are named after it)

    def ci(self, kind: str, oid: Any, cls: str, attrs: dict[str, Any], label: str) -> str:
        ref = f"netbox:{kind}:{oid}"
        if ref not in self.refs:
            self.refs.add(ref)
            attrs["external_ids"] = [ref]
            self.batch.cis.append(CIRecord(cls, {k: v for k, v in attrs.items() if v not in (None, "", [])}, ref,
                                           len(self.batch.cis)))
            self.labels.append(label)
        return ref

    def rel(self, rtype: str, src: str | None, dst: str | None) -> None:
        if src in self.refs and dst in self.refs:
            assert src is not None and dst is not None
            self.batch.rels.append(RelRecord(rtype, src, dst, {}, len(self.batch.rels)))


def transform_netbox(data: Mapping[str, Iterable[Mapping[str, Any]]], origin: str = "netbox") -> NetboxReading:
    """One batch of the whole NetBox view (pure)."""
    b = _Builder(origin)
    recs = {k: list(data.get(k) or []) for k in ENDPOINTS}
    for t in recs["tenancy.tenants"]:
        b.ci("tenancy.tenant", t["id"], "Team", {"name": t.get("name")}, f"tenant {t.get('name')}")
    for c in recs["tenancy.contacts"]:
        b.ci("tenancy.contact", c["id"], "Person", {"name": c.get("name"), "email": (c.get("email") or "").lower(),
                                                    "phone": c.get("phone")}, f"contact {c.get('name')}")
    for s in recs["dcim.sites"]:
        ref = b.ci("dcim.site", s["id"], "Location", {"name": s.get("name"), "site_code": s.get("slug"), "kind": "site",
                                                      "address": s.get("physical_address"),
                                                      "description": s.get("description")}, f"site {s.get('name')}")
        b.names[ref] = str(s.get("name"))
        _tenant(b, ref, s)
    for loc in sorted(recs["dcim.locations"], key=lambda x: int(x.get("_depth") or 0)):
        site_ref = f"netbox:dcim.site:{_get(loc, 'site', 'id')}"
        parent = _get(loc, "parent", "id")
        parent_ref = f"netbox:dcim.location:{parent}" if parent else site_ref
        name = f"{b.names.get(site_ref, _get(loc, 'site', 'name'))} {loc.get('name')}"
        ref = b.ci("dcim.location", loc["id"], "Location", {"name": name, "kind": "room"}, f"location {name}")
        b.names[ref] = name
        b.rel("LOCATED_IN", ref, parent_ref)
    for r in recs["dcim.racks"]:
        site_ref = f"netbox:dcim.site:{_get(r, 'site', 'id')}"
        loc = _get(r, "location", "id")
        parent_ref = f"netbox:dcim.location:{loc}" if loc else site_ref
        name = f"{b.names.get(site_ref, _get(r, 'site', 'name'))} rack {r.get('name')}"
        ref = b.ci("dcim.rack", r["id"], "Location", {"name": name, "kind": "rack"}, f"rack {name}")
        b.rel("LOCATED_IN", ref, parent_ref)
        _tenant(b, ref, r)
    hostnames: dict[int, str] = {}
    for d in recs["dcim.devices"]:
        role = _get(d, "role", "slug") or _get(d, "device_role", "slug")  # NetBox 4 "role", 3.x "device_role"
        cls = device_class(role)
        dname = d.get("name")
        if not dname:
            b.notes.append(f"device {d['id']}: no name; skipped (discovery could not match it either)")
            continue
        name = str(dname)
        hostnames[int(d["id"])] = short_hostname(name)
        primary = _addr(_get(d, "primary_ip4", "address") or _get(d, "primary_ip", "address"))
        attrs: dict[str, Any] = {"name": str(name), "hostname": short_hostname(str(name)),
                                 "serial_number": d.get("serial"), "vendor": _get(d, "device_type", "manufacturer",
                                                                                  "name"),
                                 "model": _get(d, "device_type", "model"), "os": _get(d, "platform", "name"),
                                 "management_ip": primary, "ip_addresses": [primary] if primary else None,
                                 "description": d.get("description")}
        if cls in ("Router", "Switch", "Firewall", "LoadBalancer"):
            attrs["role"] = next((v for k, v in NETWORK_ROLES.items() if k in (role or "")), None)
        ref = b.ci("dcim.device", d["id"], cls, attrs, f"device {name}")
        place = (f"netbox:dcim.rack:{_get(d, 'rack', 'id')}" if _get(d, "rack", "id") else
                 f"netbox:dcim.location:{_get(d, 'location', 'id')}" if _get(d, "location", "id") else
                 f"netbox:dcim.site:{_get(d, 'site', 'id')}")
        b.rel("LOCATED_IN", ref, place)
        _tenant(b, ref, d)
    for i in recs["dcim.interfaces"]:
        dev = _get(i, "device", "id")
        if dev is None or int(dev) not in hostnames:
            continue
        mac = i.get("mac_address") or _get(i, "primary_mac_address", "mac_address")  # 4.2 moved MACs out
        speed = i.get("speed")
        attrs = {"device_name": hostnames[int(dev)], "if_name": long_interface_name(str(i.get("name"))),
                 "mac_address": mac, "speed_mbps": int(speed) // 1000 if speed else None,
                 "admin_status": "up" if i.get("enabled", True) else "down", "alias": i.get("description")}
        ref = b.ci("dcim.interface", i["id"], "Interface", attrs, f"interface {hostnames[int(dev)]} {i.get('name')}")
        b.rel("HAS_INTERFACE", f"netbox:dcim.device:{dev}", ref)
    for c in recs["dcim.cables"]:
        ends = []
        for side in ("a_terminations", "b_terminations"):
            terms = [t for t in c.get(side) or [] if t.get("object_type") == "dcim.interface"]
            ends.append(f"netbox:dcim.interface:{terms[0]['object_id']}" if terms else None)
        if None in ends:
            b.notes.append(f"cable {c['id']}: not between two interfaces; skipped")
            continue
        b.rel("CONNECTED_TO", ends[0], ends[1])
    prefixes: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str, str]] = []
    for p in recs["ipam.prefixes"]:
        vrf = _get(p, "vrf", "name") or "global"
        attrs = {"cidr": p.get("prefix"), "vrf": vrf, "vlan": _get(p, "vlan", "vid"),
                 "description": p.get("description")}
        ref = b.ci("ipam.prefix", p["id"], "Subnet", attrs, f"prefix {p.get('prefix')}")
        with contextlib.suppress(ValueError):  # a bad prefix: ingest names it
            prefixes.append((ipaddress.ip_network(str(p.get("prefix")), strict=False), vrf, ref))
        _tenant(b, ref, p)
    clusters: set[str] = set()
    for cl in recs["virtualization.clusters"]:
        clusters.add(b.ci("virtualization.cluster", cl["id"], "Cluster",
                          {"name": cl.get("name"), "description": _get(cl, "type", "name")},
                          f"cluster {cl.get('name')}"))
    vm_names: dict[int, str] = {}
    for vm in recs["virtualization.virtual_machines"]:
        name = str(vm.get("name"))
        primary = _addr(_get(vm, "primary_ip4", "address") or _get(vm, "primary_ip", "address"))
        attrs = {"name": name, "hostname": short_hostname(name), "os": _get(vm, "platform", "name"),
                 "management_ip": primary, "ip_addresses": [primary] if primary else None,
                 "cpu_count": int(vm["vcpus"]) if vm.get("vcpus") else None, "memory_mb": vm.get("memory"),
                 "disk_gb": vm.get("disk")}
        ref = b.ci("virtualization.virtual_machine", vm["id"], "VirtualMachine", attrs, f"vm {name}")
        vm_names[int(vm["id"])] = name
        b.rel("HOSTED_ON", ref, f"netbox:virtualization.cluster:{_get(vm, 'cluster', 'id')}")
        _tenant(b, ref, vm)
    for a in recs["ipam.ip_addresses"]:
        address = _addr(a.get("address"))
        vrf = _get(a, "vrf", "name") or "global"
        ref = b.ci("ipam.ip_address", a["id"], "IPAddress", {"address": address, "vrf": vrf,
                                                            "dns_name": a.get("dns_name")}, f"ip {address}")
        kind = a.get("assigned_object_type")
        owner = None
        if kind == "dcim.interface":
            owner = f"netbox:dcim.device:{_get(a, 'assigned_object', 'device', 'id')}"
        elif kind == "virtualization.vminterface":
            owner = f"netbox:virtualization.virtual_machine:{_get(a, 'assigned_object', 'virtual_machine', 'id')}"
        b.rel("HAS_ADDRESS", owner, ref)
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            continue
        best = max((p for p in prefixes if p[1] == vrf and ip.version == p[0].version and ip in p[0]),
                   key=lambda p: p[0].prefixlen, default=None)
        if best is not None:
            b.rel("IN_SUBNET", ref, best[2])
    for ca in recs["tenancy.contact_assignments"]:
        app_model = str(ca.get("object_type") or "")
        target = f"netbox:{app_model}:{ca.get('object_id')}"
        person = f"netbox:tenancy.contact:{_get(ca, 'contact', 'id')}"
        role = str(_get(ca, "role", "name") or _get(ca, "role", "slug") or "").lower()
        b.rel("OWNED_BY" if "owner" in role else "SUPPORTED_BY", target, person)
    return NetboxReading(b.batch, b.notes, b.labels)


def _tenant(b: _Builder, ref: str, rec: Mapping[str, Any]) -> None:
    tid = _get(rec, "tenant", "id")
    if tid is not None:
        b.rel("OWNED_BY", ref, f"netbox:tenancy.tenant:{tid}")


def read_netbox_export(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: not valid UTF-8 at byte {exc.start}; save the export as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or not any(k in doc for k in ENDPOINTS):
        raise BadInputError(f"{path}: expected a NetBox export: an object of endpoint -> records, with keys among "
                            f"{', '.join(ENDPOINTS)}")
    for key, value in doc.items():
        if not isinstance(value, list) or not all(isinstance(r, dict) and "id" in r for r in value):
            raise BadInputError(f"{path}: {key} must be a list of records, each with its id")
    return doc


def pull_netbox(url: str, token: str) -> dict[str, list[dict[str, Any]]]:
    """Every record of ``ENDPOINTS`` through pynetbox (which follows the API's ``next`` links)."""
    import pynetbox
    import requests

    api = pynetbox.api(url.rstrip("/"), token=token)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        for name in ENDPOINTS:
            app, endpoint = name.split(".")
            out[name] = [dict(r) for r in getattr(getattr(api, app), endpoint).all()]
    except pynetbox.RequestError as exc:
        status = getattr(exc.req, "status_code", "?")
        if status in (401, 403):
            raise ConfigError(f"NetBox at {url} refused the token (HTTP {status}); check --secret") from None
        raise CmdbError(f"NetBox at {url} answered HTTP {status} for {name}") from None
    except requests.RequestException as exc:
        raise CmdbError(f"cannot reach NetBox at {url}: {type(exc).__name__}; check --url") from None
    return out
