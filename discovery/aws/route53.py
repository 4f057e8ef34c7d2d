"""Route 53 records (a global scope per account). A record that points at a load balancer (alias) or at
an instance's address DEPENDS_ON it; the target is found at the end of the run by DNS name or address."""

from __future__ import annotations

from typing import Any

from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed

LINKED_TYPES = frozenset({"A", "AAAA", "CNAME"})


def get_route53(reader: ScopeReader) -> None:
    zones = reader.pages("route53", "list_hosted_zones", "HostedZones")
    reader.keep("zones", zones)
    records: dict[str, Any] = {}
    for z in zones or []:
        found = reader.pages("route53", "list_resource_record_sets", "ResourceRecordSets", HostedZoneId=z["Id"])
        if found is not None:
            records[z["Id"]] = found
    reader.keep("records", records)


def transform_route53(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap) -> Transformed:
    out = Transformed()
    zones = {z["Id"]: z["Name"].rstrip(".") for z in raw.get("zones", [])}
    for zone_id, records in raw.get("records", {}).items():
        zid = zone_id.rsplit("/", 1)[-1]
        for r in records:
            rtype = r["Type"]
            if rtype in ("SOA", "NS"):
                continue
            fqdn = r["Name"].rstrip(".").replace("\\052", "*")
            alias = (r.get("AliasTarget") or {}).get("DNSName")
            values = [alias.rstrip(".").lower()] if alias else [v["Value"] for v in r.get("ResourceRecords", [])]
            rid = "/".join(filter(None, (zid, fqdn, rtype, r.get("SetIdentifier"))))
            ref = out.add("DnsRecord", ("resource_id", rid), name=f"{fqdn} {rtype}", fqdn=fqdn, record_type=rtype,
                          values=sorted(values), zone=zones.get(zone_id), account_id=ctx.account, region=ctx.region)
            if rtype not in LINKED_TYPES:
                continue
            for v in values:
                target = f"dns:{v.rstrip('.').lower()}" if alias or rtype == "CNAME" else f"ip:{v}"
                out.link("DEPENDS_ON", ref, target)
    return out
