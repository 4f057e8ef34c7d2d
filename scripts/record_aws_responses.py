#!/usr/bin/env python3
"""Record the raw responses of every AWS service's ``get`` against the moto estate into tests/data/aws/.

    .venv/bin/python scripts/record_aws_responses.py [--out tests/data/aws]

The files are exactly what the collectors hand their pure transforms (``ScopeReader.raw``: JSON-clean,
datetimes as ISO text), so tests/unit/test_aws_transform.py exercises the transforms without a server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from moto_lab import ACCOUNT, FAKE_ENV, MotoServer, build_estate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests" / "data" / "aws"))
    args = parser.parse_args()
    os.environ.update(FAKE_ENV)
    from discovery.aws.calls import AccountSpec, AwsConnection, ScopeReader
    from discovery.aws.services import SERVICES

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server = MotoServer()
    server.start()
    try:
        estate = build_estate(server.url)
        conn = AwsConnection(endpoint_url=server.url)
        account = AccountSpec()
        for name, service in SERVICES.items():
            region = "global" if service.is_global else "us-east-1"
            reader = ScopeReader(lambda svc, region=region: conn.client(account, svc, region))
            service.get(reader)
            if reader.failures:
                raise SystemExit(f"{name}: {reader.failures}")
            doc = {"account": ACCOUNT, "region": region, "service": name, "raw": reader.raw}
            (out / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        (out / "estate.json").write_text(json.dumps(estate.__dict__, indent=1, sort_keys=True) + "\n",
                                         encoding="utf-8")
        print(f"recorded {len(SERVICES)} services into {out}")
    finally:
        server.close()


if __name__ == "__main__":
    main()
