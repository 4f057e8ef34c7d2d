"""S3 buckets (a global scope per account: ListBuckets answers for every region)."""

from __future__ import annotations

from typing import Any

from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed


def get_s3(reader: ScopeReader) -> None:
    answer = reader.call("s3", "list_buckets")
    if answer is not None:
        reader.keep("buckets", answer.get("Buckets", []))


def transform_s3(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap) -> Transformed:
    out = Transformed()
    for b in raw.get("buckets", []):
        out.add("Bucket", ("arn", f"arn:{ctx.partition}:s3:::{b['Name']}"), name=b["Name"], resource_id=b["Name"],
                account_id=ctx.account, region=b.get("BucketRegion"))
    return out
