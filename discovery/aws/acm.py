"""ACM certificates with their validity (``not_after`` feeds the expiry tasks). The listeners that
present them link to them from the ELBv2 scope (USES_CERTIFICATE)."""

from __future__ import annotations

from typing import Any

from discovery.aws.calls import ScopeReader
from discovery.aws.records import ScopeContext, TagMap, Transformed


def get_acm(reader: ScopeReader) -> None:
    """ListCertificates, then one DescribeCertificate per certificate (ACM has no batch describe)."""
    summaries = reader.pages("acm", "list_certificates", "CertificateSummaryList")
    details = []
    for s in summaries or []:
        answer = reader.call("acm", "describe_certificate", CertificateArn=s["CertificateArn"])
        if answer is not None:
            details.append(answer.get("Certificate", {}))
    if summaries is not None:
        reader.keep("certificates", details)


def transform_acm(raw: dict[str, Any], ctx: ScopeContext, tag_map: TagMap) -> Transformed:
    out = Transformed()
    for c in raw.get("certificates", []):
        domain = c.get("DomainName") or c.get("Subject") or c["CertificateArn"]
        out.add("Certificate", ("arn", c["CertificateArn"]), subject=domain, name=domain,
                sans=sorted(set(c.get("SubjectAlternativeNames") or [])), issuer=c.get("Issuer"),
                serial=c.get("Serial"), not_before=c.get("NotBefore"), not_after=c.get("NotAfter"),
                status=c.get("Status"), account_id=ctx.account, region=ctx.region)
    return out
