"""RDS: database instances (``CloudDatabase``) and clusters (``CloudCluster``, a replica set whose
writer and readers are members: the cluster is down only when none survives)."""

from __future__ import annotations

from typing import Any

from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed, apply_tags, tag_dict


def get_rds(reader: ScopeReader) -> None:
    reader.keep("instances", reader.pages("rds", "describe_db_instances", "DBInstances"))
    reader.keep("clusters", reader.pages("rds", "describe_db_clusters", "DBClusters"))


def transform_rds(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap) -> Transformed:
    out = Transformed()
    where = {"account_id": ctx.account, "region": ctx.region}
    roles: dict[str, tuple[str, str]] = {}  # instance identifier -> (cluster arn, role)
    for c in raw.get("clusters", []):
        arn = c["DBClusterArn"]
        tags = apply_tags(out, arn, tag_dict(c.get("TagList")), tag_map)
        tags["name"] = c["DBClusterIdentifier"]
        out.add("CloudCluster", ("arn", arn), cluster_type="replica_set", quorum=1, engine=c.get("Engine"),
                resource_id=c["DBClusterIdentifier"], **where, **tags)
        for m in c.get("DBClusterMembers", []):
            roles[m["DBInstanceIdentifier"]] = (arn, "primary" if m.get("IsClusterWriter") else "replica")
    for db in raw.get("instances", []):
        arn = db["DBInstanceArn"]
        ident = db["DBInstanceIdentifier"]
        tags = apply_tags(out, arn, tag_dict(db.get("TagList")), tag_map)
        tags["name"] = ident
        endpoint = db.get("Endpoint") or {}
        cluster, role = roles.get(ident, (None, "replica" if db.get("ReadReplicaSourceDBInstanceIdentifier")
                                          else "standalone"))
        group = db.get("DBSubnetGroup") or {}
        ref = out.add("CloudDatabase", ("arn", arn), resource_id=ident, engine=db.get("Engine"),
                      version=db.get("EngineVersion"), port=endpoint.get("Port"), endpoint=endpoint.get("Address"),
                      instance_class=db.get("DBInstanceClass"), availability_zone=db.get("AvailabilityZone"),
                      role=role, **where, **tags)
        out.alias(ref, f"dns:{endpoint.get('Address') or ''}")
        if cluster:
            out.link("MEMBER_OF", ref, cluster)
        if group.get("VpcId"):
            out.link("IN_NETWORK", ref, ctx.arn("ec2", f"vpc/{group['VpcId']}"))
        for sg in db.get("VpcSecurityGroups", []):
            out.link("SECURED_BY", ref, ctx.arn("ec2", f"security-group/{sg['VpcSecurityGroupId']}"))
    return out
