"""EC2 and its network: instances (ENIs, addresses, MACs, EBS volumes, tags), VPCs, subnets, route
tables, security groups with their rules, internet and NAT gateways. One scope: ``...:<region>:ec2``."""

from __future__ import annotations

from typing import Any

from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed, apply_tags, tag_dict

CALLS = (
    ("instances", "describe_instances", "Reservations"),
    ("volumes", "describe_volumes", "Volumes"),
    ("vpcs", "describe_vpcs", "Vpcs"),
    ("subnets", "describe_subnets", "Subnets"),
    ("route_tables", "describe_route_tables", "RouteTables"),
    ("security_groups", "describe_security_groups", "SecurityGroups"),
    ("internet_gateways", "describe_internet_gateways", "InternetGateways"),
    ("nat_gateways", "describe_nat_gateways", "NatGateways"),
)
GONE_STATES = frozenset({"terminated", "shutting-down"})


def get_ec2(reader: ScopeReader) -> None:
    """Eight paginated describe calls for the whole region, whatever the number of resources."""
    for name, operation, key in CALLS:
        reader.keep(name, reader.pages("ec2", operation, key))


def transform_ec2(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap) -> Transformed:
    out = Transformed()
    where = {"account_id": ctx.account, "region": ctx.region}
    for vpc in raw.get("vpcs", []):
        vid = vpc["VpcId"]
        tags = apply_tags(out, ctx.arn("ec2", f"vpc/{vid}"), tag_dict(vpc.get("Tags")), tag_map)
        cidrs = sorted({a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", []) if a.get("CidrBlock")}
                       | ({vpc["CidrBlock"]} if vpc.get("CidrBlock") else set()))
        tags["name"] = f"{tags['name']} ({vid})" if "name" in tags else vid
        out.add("VPC", ("arn", ctx.arn("ec2", f"vpc/{vid}")), vpc_id=vid, cidr_blocks=cidrs,
                is_default=bool(vpc.get("IsDefault")), **where, **tags)
    for sn in raw.get("subnets", []):
        arn = ctx.arn("ec2", f"subnet/{sn['SubnetId']}")
        tags = apply_tags(out, arn, tag_dict(sn.get("Tags")), tag_map)
        tags.setdefault("name", f"{sn['SubnetId']} {sn['CidrBlock']}")
        ref = out.add("CloudSubnet", ("arn", arn), resource_id=sn["SubnetId"], cidr=sn["CidrBlock"],
                      availability_zone=sn.get("AvailabilityZone"), vpc_id=sn["VpcId"],
                      public=bool(sn.get("MapPublicIpOnLaunch")), **where, **tags)
        out.link("IN_NETWORK", ref, ctx.arn("ec2", f"vpc/{sn['VpcId']}"))
    for gw in raw.get("internet_gateways", []):
        gid = gw["InternetGatewayId"]
        arn = ctx.arn("ec2", f"internet-gateway/{gid}")
        tags = apply_tags(out, arn, tag_dict(gw.get("Tags")), tag_map)
        tags.setdefault("name", gid)
        out.add("CloudGateway", ("arn", arn), resource_id=gid, gateway_type="internet", **where, **tags)
        for att in gw.get("Attachments", []):
            out.link("IN_NETWORK", arn, ctx.arn("ec2", f"vpc/{att['VpcId']}"))
    for gw in raw.get("nat_gateways", []):
        if gw.get("State") in ("deleted", "deleting", "failed"):
            continue
        gid = gw["NatGatewayId"]
        arn = ctx.arn("ec2", f"natgateway/{gid}")
        tags = apply_tags(out, arn, tag_dict(gw.get("Tags")), tag_map)
        tags.setdefault("name", gid)
        public = next((a.get("PublicIp") for a in gw.get("NatGatewayAddresses", []) if a.get("PublicIp")), None)
        out.add("CloudGateway", ("arn", arn), resource_id=gid, gateway_type="nat", public_ip=public,
                vpc_id=gw.get("VpcId"), **where, **tags)
        out.link("IN_SUBNET", arn, ctx.arn("ec2", f"subnet/{gw['SubnetId']}"))
    _route_tables(raw, ctx, tag_map, out, where)
    _security_groups(raw, ctx, tag_map, out, where)
    volumes = {v["VolumeId"]: v for v in raw.get("volumes", [])}
    for res in raw.get("instances", []):
        for inst in res.get("Instances", []):
            _instance(inst, volumes, ctx, tag_map, out, where)
    for vol in volumes.values():
        arn = ctx.arn("ec2", f"volume/{vol['VolumeId']}")
        tags = apply_tags(out, arn, tag_dict(vol.get("Tags")), tag_map)
        tags.setdefault("name", vol["VolumeId"])
        out.add("BlockVolume", ("arn", arn), resource_id=vol["VolumeId"], size_gb=vol.get("Size"),
                volume_type=vol.get("VolumeType"), availability_zone=vol.get("AvailabilityZone"),
                encrypted=bool(vol.get("Encrypted")), **where, **tags)
    return out


def _route_tables(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap, out: Transformed,
                  where: dict[str, Any]) -> None:
    for rt in raw.get("route_tables", []):
        rid = rt["RouteTableId"]
        arn = ctx.arn("ec2", f"route-table/{rid}")
        routes, via = [], set()
        for r in rt.get("Routes", []):
            dest = (r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock")
                    or r.get("DestinationPrefixListId"))
            target = (r.get("GatewayId") or r.get("NatGatewayId") or r.get("TransitGatewayId")
                      or r.get("VpcPeeringConnectionId") or r.get("NetworkInterfaceId") or r.get("InstanceId") or "?")
            routes.append(f"{dest} -> {target}")
            if target.startswith("igw-"):
                via.add(ctx.arn("ec2", f"internet-gateway/{target}"))
            elif target.startswith("nat-"):
                via.add(ctx.arn("ec2", f"natgateway/{target}"))
        tags = apply_tags(out, arn, tag_dict(rt.get("Tags")), tag_map)
        tags.setdefault("name", rid)
        out.add("RouteTable", ("arn", arn), resource_id=rid, vpc_id=rt.get("VpcId"), routes=sorted(routes),
                **where, **tags)
        out.link("IN_NETWORK", arn, ctx.arn("ec2", f"vpc/{rt['VpcId']}"))
        for gw in sorted(via):  # a gateway failing cuts the route table's subnets off
            out.link("DEPENDS_ON", arn, gw)
        for assoc in rt.get("Associations", []):
            if assoc.get("SubnetId"):
                out.link("DEPENDS_ON", ctx.arn("ec2", f"subnet/{assoc['SubnetId']}"), arn)


def _security_groups(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap, out: Transformed,
                     where: dict[str, Any]) -> None:
    for sg in raw.get("security_groups", []):
        gid = sg["GroupId"]
        arn = ctx.arn("ec2", f"security-group/{gid}")
        rules = [*_rules("ingress", "from", sg.get("IpPermissions", [])),
                 *_rules("egress", "to", sg.get("IpPermissionsEgress", []))]
        tags = apply_tags(out, arn, tag_dict(sg.get("Tags")), tag_map)
        tags.setdefault("name", f"{sg.get('GroupName', gid)} ({gid})")
        out.add("SecurityGroup", ("arn", arn), resource_id=gid, vpc_id=sg.get("VpcId"), rules=sorted(set(rules)),
                description=sg.get("Description"), **where, **tags)
        if sg.get("VpcId"):
            out.link("IN_NETWORK", arn, ctx.arn("ec2", f"vpc/{sg['VpcId']}"))


def _rules(direction: str, word: str, perms: list[dict[str, Any]]) -> list[str]:
    """One readable line per permission and peer: ``ingress tcp 443 from 0.0.0.0/0``."""
    lines: list[str] = []
    for p in perms:
        proto = "all" if str(p.get("IpProtocol")) == "-1" else str(p.get("IpProtocol"))
        lo, hi = p.get("FromPort"), p.get("ToPort")
        ports = "" if proto == "all" or lo is None else f" {lo}" if lo == hi else f" {lo}-{hi}"
        peers = ([r["CidrIp"] for r in p.get("IpRanges", [])] + [r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])]
                 + [g["GroupId"] for g in p.get("UserIdGroupPairs", []) if g.get("GroupId")]
                 + [pl["PrefixListId"] for pl in p.get("PrefixListIds", [])])
        lines.extend(f"{direction} {proto}{ports} {word} {peer}" for peer in peers)
    return lines


def _instance(inst: dict[str, Any], volumes: dict[str, dict[str, Any]], ctx: ScopeContext, tag_map: TagMap,
              out: Transformed, where: dict[str, Any]) -> None:
    iid = inst["InstanceId"]
    state = (inst.get("State") or {}).get("Name")
    if state in GONE_STATES:  # a terminated instance is not seen: a complete scope ages it
        return
    arn = ctx.arn("ec2", f"instance/{iid}")
    tags = apply_tags(out, iid, tag_dict(inst.get("Tags")), tag_map)
    tags.setdefault("name", iid)
    macs, ips = set(), set()
    enis = []
    for eni in inst.get("NetworkInterfaces", []):
        mac = eni.get("MacAddress")
        if mac:
            macs.add(mac.lower())
        addrs = [a["PrivateIpAddress"] for a in eni.get("PrivateIpAddresses", []) if a.get("PrivateIpAddress")]
        addrs += [a["Association"]["PublicIp"] for a in eni.get("PrivateIpAddresses", [])
                  if (a.get("Association") or {}).get("PublicIp")]
        if eni.get("PrivateIpAddress"):
            addrs.append(eni["PrivateIpAddress"])
        ips.update(addrs)
        enis.append((eni, mac))
    for ip in (inst.get("PrivateIpAddress"), inst.get("PublicIpAddress")):
        if ip:
            ips.add(ip)
    ref = out.add(
        "CloudInstance", ("cloud_instance_id", iid), arn=arn, instance_type=inst.get("InstanceType"),
        availability_zone=(inst.get("Placement") or {}).get("AvailabilityZone"), state=state,
        image_id=inst.get("ImageId"), vpc_id=inst.get("VpcId"), private_ip=inst.get("PrivateIpAddress"),
        public_ip=inst.get("PublicIpAddress"), mac_addresses=sorted(macs), ip_addresses=sorted(ips),
        **where, **tags,
    )
    out.alias(ref, *(f"ip:{ip}" for ip in sorted(ips)), f"dns:{inst.get('PublicDnsName') or ''}" if inst.get(
        "PublicDnsName") else None)
    for eni, mac in enis:
        eid = eni["NetworkInterfaceId"]
        iface = out.add("Interface", ("if_name", eid), device_name=iid, mac_address=mac,
                        description=eni.get("Description") or None,
                        oper_status="up" if eni.get("Status") == "in-use" else "unknown")
        out.link("HAS_INTERFACE", ref, iface)
    if inst.get("SubnetId"):
        out.link("IN_SUBNET", ref, ctx.arn("ec2", f"subnet/{inst['SubnetId']}"))
    if inst.get("VpcId"):
        out.link("IN_NETWORK", ref, ctx.arn("ec2", f"vpc/{inst['VpcId']}"))
    for sg in inst.get("SecurityGroups", []):
        out.link("SECURED_BY", ref, ctx.arn("ec2", f"security-group/{sg['GroupId']}"))
    for bdm in inst.get("BlockDeviceMappings", []):
        vid = (bdm.get("Ebs") or {}).get("VolumeId")
        if vid:
            out.link("DEPENDS_ON", ref, ctx.arn("ec2", f"volume/{vid}"), device=bdm.get("DeviceName"))
