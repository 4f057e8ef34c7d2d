"""An EC2 instance found by AWS discovery and the same machine found by SSH become one CloudInstance CI.

The moto estate is discovered with ``cmdb discover aws``; the lab host ``cloud1`` is then given one of its
instances' id the way an EC2 machine exposes it (cloud-init's ``/run/cloud-init/instance-data.json``), and
``cmdb discover ssh`` of that host lands on the instance's CI. The lab host's MAC and addresses are its own
(127.0.77.4, not the instance's): the instance id alone is the key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
from moto_lab import ACCOUNT, Estate, MotoServer

from cmdb.store.base import SearchQuery
from cmdb.store.sqlite import SqliteStore
from tests.integration.ssh.conftest import Lab


def cmdb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "product.cli", *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "200"}, check=False)


def instances(store: SqliteStore) -> dict[str, str]:
    """Instance id -> CI id of every CloudInstance."""
    page = store.search(SearchQuery(classes=["CloudInstance"], limit=500)).items
    return {str(c.attrs.get("cloud_instance_id")): c.id for c in page}


def test_ssh_host_exposing_an_instance_id_merges_with_its_ec2_ci(ssh_lab: Lab, estate: Estate,
                                                                 moto_server: MotoServer, tmp_path: Path) -> None:
    db = tmp_path / "cmdb.db"
    store_url = f"sqlite:///{db}"
    aws = cmdb("--store", store_url, "discover", "aws", "--profile", "estate", "--regions", "us-east-1",
               "--services", "ec2", "--endpoint-url", moto_server.url, "--json")
    assert aws.returncode == 0, aws.stderr
    store = SqliteStore(db)
    try:
        before = instances(store)
    finally:
        store.close()
    assert estate.instances["web-1"] in before
    instance_id = estate.instances["web-1"]
    described = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_server.url).describe_instances(
        InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    host = ssh_lab.cloud
    ssh_lab.lab.set_instance_data(host, instance_id, local_ipv4=described["PrivateIpAddress"])
    creds = ssh_lab.lab.credentials_file(tmp_path / "credentials.yaml")
    ssh = cmdb("--store", store_url, "discover", "ssh", host.address, "--credentials", str(creds), "--profile", "lab",
               "--known-hosts", str(tmp_path / "known_hosts"), "--trust-on-first-use", "--packages", "none", "--json")
    assert ssh.returncode == 0, ssh.stderr
    [outcome] = json.loads(ssh.stdout)["outcomes"]
    assert outcome["outcome"] == "ok", outcome

    store = SqliteStore(db)
    try:
        ci_id = store.find_by_key(f"device:cloud_instance_id={instance_id.lower()}")
        assert ci_id is not None
        ci = store.get_ci(ci_id)
        assert ci is not None and ci.cls == "CloudInstance" and ci.status == "active"
        # AWS's attributes ...
        assert ci.attrs["cloud_instance_id"] == instance_id
        assert (ci.attrs["account_id"], ci.attrs["region"]) == (ACCOUNT, "us-east-1")
        assert ci.attrs["environment"] == "production"
        # ... and SSH's, on the same CI
        assert ci.attrs["ssh_profile"] == "lab" and ci.attrs["management_ip"] == host.address
        assert ci.attrs["kernel"] and ci.attrs["cpu_count"] >= 1
        assert {"aws", "ssh"} <= {source for attr in ci.provenance.values() for source in attr}
        # one machine, one CI: no second host CI under the lab host's name, nor a second CloudInstance
        assert set(store.find_by_name(host.name)) <= {ci_id}
        assert instances(store) == before
        assert [c.id for c in store.search(SearchQuery(attrs={"management_ip": host.address})).items] == [ci_id]
    finally:
        store.close()
