#!/usr/bin/env python3
"""A moto server on loopback, a refusing AWS endpoint, and the realistic estate the AWS tests discover.

Used by tests/integration/aws, bench/aws.py and scripts/record_aws_responses.py::

    python scripts/moto_lab.py run     # start moto, build the estate, print AWS_ENDPOINT_URL=..., wait

``MotoServer`` runs ``moto.server`` as its own process on 127.0.0.1 and a free port (server mode: boto3
talks HTTP to it, nothing is patched). ``DenyingEndpoint`` answers every AWS call with AccessDenied in the
wire format of the call's protocol (query/EC2 XML, JSON, REST): a region routed there is a region whose
calls are all denied. Credentials are the fixed fake ones moto accepts; nothing here is a secret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAKE_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}  # never ask 169.254.169.254
ACCOUNT = "123456789012"  # moto's default account


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """``python -m moto.server`` on 127.0.0.1:<free port>, one process for a whole test session."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, **FAKE_ENV})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                return
            time.sleep(0.1)
        raise RuntimeError(f"moto server did not answer on {self.url} within {timeout:g} s")

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# (status, JSON code, EC2 code, XML code) of each refusal
REFUSALS = {"denied": (403, "AccessDeniedException", "UnauthorizedOperation", "AccessDenied"),
            "throttled": (400, "ThrottlingException", "RequestLimitExceeded", "Throttling")}


class _Refuse(BaseHTTPRequestHandler):
    server: _RefusingServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        ctype = self.headers.get("Content-Type", "")
        status, json_code, ec2_code, xml_code = REFUSALS[self.server.kind]
        self.server.requests += 1
        if self.headers.get("X-Amz-Target") or "json" in ctype or self.path.startswith(("/2015-03-31", "/clusters")):
            payload = json.dumps({"__type": json_code, "message": "refused by the test endpoint"})
            headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": json_code}
        elif "Version=2016-11-15" in body:  # EC2's own query error format
            payload = (f"<Response><Errors><Error><Code>{ec2_code}</Code><Message>refused by the test "
                       "endpoint</Message></Error></Errors><RequestID>refused</RequestID></Response>")
            headers = {"Content-Type": "text/xml"}
        else:
            payload = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{xml_code}</Code><Message>refused by the "
                       "test endpoint</Message></Error><RequestId>refused</RequestId></ErrorResponse>")
            headers = {"Content-Type": "text/xml"}
        data = payload.encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _RefusingServer(ThreadingHTTPServer):
    kind = "denied"
    requests = 0


class DenyingEndpoint:
    """An HTTP endpoint on loopback that refuses every AWS call: ``denied`` (a region whose IAM policy
    refuses us) or ``throttled`` (rate exceeded, whatever the retries); ``requests`` counts what arrived."""

    def __init__(self, kind: str = "denied") -> None:
        self.server = _RefusingServer(("127.0.0.1", 0), _Refuse)
        self.server.kind = kind
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def requests(self) -> int:
        return self.server.requests

    def __enter__(self) -> DenyingEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the estate ---------------------------------------------------------------------------------------

@dataclass
class Estate:
    """Ids of what ``build_estate`` made, for the tests' expectations."""

    instances: dict[str, str] = field(default_factory=dict)  # Name tag -> instance id
    vpcs: dict[str, str] = field(default_factory=dict)
    subnets: dict[str, str] = field(default_factory=dict)
    alb_arn: str = ""
    alb_dns: str = ""
    tg_arn: str = ""
    listener_arn: str = ""
    cert_arn: str = ""
    asg_instances: list[str] = field(default_factory=list)
    eu_instance: str = ""


def self_signed_pem(domain: str) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x1234ABCD).not_valid_before(now).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()))


def _tags(**kv: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in kv.items()]


def build_estate(endpoint_url: str, region: str = "us-east-1", other_region: str = "eu-west-1") -> Estate:
    """Two VPCs, subnets, gateways, six instances, an ALB (HTTPS listener with an ACM certificate) whose
    target group holds three instances, an auto-scaling group, an Aurora cluster, a Lambda, Route 53
    records, a bucket, an EKS cluster; and one VPC with one instance in ``other_region``."""
    import boto3

    def c(service: str, reg: str = region) -> Any:
        make: Any = boto3.client  # a service name chosen at run time: past the stubs' per-service overloads
        return make(service, region_name=reg, endpoint_url=endpoint_url,
                    aws_access_key_id=FAKE_ENV["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=FAKE_ENV["AWS_SECRET_ACCESS_KEY"])

    est = Estate()
    ec2 = c("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    for vname, cidr, env in (("shop-vpc", "10.10.0.0/16", "prod"), ("batch-vpc", "10.20.0.0/16", "staging")):
        vid = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=[
            {"ResourceType": "vpc", "Tags": _tags(Name=vname, environment=env, team="platform")}])["Vpc"]["VpcId"]
        est.vpcs[vname] = vid
    shop, batch = est.vpcs["shop-vpc"], est.vpcs["batch-vpc"]
    for sname, vid, cidr, az in (("shop-a", shop, "10.10.1.0/24", "a"), ("shop-b", shop, "10.10.2.0/24", "b"),
                                 ("batch-a", batch, "10.20.1.0/24", "a")):
        est.subnets[sname] = ec2.create_subnet(VpcId=vid, CidrBlock=cidr, AvailabilityZone=f"{region}{az}",
                                               TagSpecifications=[{"ResourceType": "subnet",
                                                                   "Tags": _tags(Name=sname)}])["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=shop)
    rt = ec2.create_route_table(VpcId=shop)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for s in ("shop-a", "shop-b"):
        ec2.associate_route_table(RouteTableId=rt, SubnetId=est.subnets[s])
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=est.subnets["shop-a"], AllocationId=eip)["NatGateway"]["NatGatewayId"]
    rt_b = ec2.create_route_table(VpcId=batch)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt_b, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=rt_b, SubnetId=est.subnets["batch-a"])
    sg = ec2.create_security_group(GroupName="web", Description="web tier", VpcId=shop)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    for i in (1, 2, 3):
        name = f"web-{i}"
        inst = ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small", SecurityGroupIds=[sg],
            SubnetId=est.subnets["shop-a" if i % 2 else "shop-b"],
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20}}],
            TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(
                Name=name, owner="alice@example.com", team="web", environment="prod")}])["Instances"][0]
        est.instances[name] = inst["InstanceId"]
    worker = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="c5.large",
                               SubnetId=est.subnets["batch-a"], TagSpecifications=[{
                                   "ResourceType": "instance", "Tags": _tags(Name="worker-1", team="batch")}])
    est.instances["worker-1"] = worker["Instances"][0]["InstanceId"]

    acm = c("acm")
    cert, key = self_signed_pem("www.example.com")
    est.cert_arn = acm.import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]
    elb = c("elbv2")
    lb = elb.create_load_balancer(Name="shop-alb", Subnets=[est.subnets["shop-a"], est.subnets["shop-b"]],
                                  SecurityGroups=[sg], Scheme="internet-facing", Type="application",
                                  Tags=_tags(team="web"))["LoadBalancers"][0]
    est.alb_arn, est.alb_dns = lb["LoadBalancerArn"], lb["DNSName"]
    est.tg_arn = elb.create_target_group(Name="shop-web", Protocol="HTTP", Port=80, VpcId=shop,
                                         TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=est.tg_arn,
                         Targets=[{"Id": est.instances[f"web-{i}"], "Port": 80} for i in (1, 2, 3)])
    est.listener_arn = elb.create_listener(
        LoadBalancerArn=est.alb_arn, Protocol="HTTPS", Port=443, Certificates=[{"CertificateArn": est.cert_arn}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": est.tg_arn}])["Listeners"][0]["ListenerArn"]

    ec2.create_launch_template(LaunchTemplateName="batch", LaunchTemplateData={"ImageId": image,
                                                                               "InstanceType": "t3.micro"})
    asg = c("autoscaling")
    asg.create_auto_scaling_group(AutoScalingGroupName="batch-asg", MinSize=2, MaxSize=4, DesiredCapacity=2,
                                  LaunchTemplate={"LaunchTemplateName": "batch", "Version": "$Latest"},
                                  VPCZoneIdentifier=est.subnets["batch-a"],
                                  Tags=[{"Key": "team", "Value": "batch", "PropagateAtLaunch": True,
                                         "ResourceId": "batch-asg", "ResourceType": "auto-scaling-group"}])
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["batch-asg"])["AutoScalingGroups"][0]
    est.asg_instances = sorted(i["InstanceId"] for i in group["Instances"])

    rds = c("rds")
    rds.create_db_cluster(DBClusterIdentifier="orders", Engine="aurora-postgresql", MasterUsername="app",
                          MasterUserPassword="not-a-secret-1", Tags=_tags(team="data", environment="prod"))
    for ident in ("orders-1", "orders-2"):
        rds.create_db_instance(DBInstanceIdentifier=ident, DBClusterIdentifier="orders", Engine="aurora-postgresql",
                               DBInstanceClass="db.r6g.large")

    iam = c("iam")
    role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def handle(event, context):\n    return 'ok'\n")
    c("lambda").create_function(FunctionName="resize-images", Runtime="python3.12", Role=role,
                                Handler="handler.handle", Code={"ZipFile": buf.getvalue()}, MemorySize=256,
                                VpcConfig={"SubnetIds": [est.subnets["shop-a"]], "SecurityGroupIds": [sg]})
    c("eks").create_cluster(name="shop-k8s", roleArn=role, version="1.29",
                            resourcesVpcConfig={"subnetIds": [est.subnets["shop-a"], est.subnets["shop-b"]]})
    c("s3").create_bucket(Bucket="shop-assets")

    r53 = c("route53")
    zone = r53.create_hosted_zone(Name="example.com", CallerReference="estate")["HostedZone"]["Id"]
    worker_ip = worker["Instances"][0]["PrivateIpAddress"]
    lb_zone = lb.get("CanonicalHostedZoneId") or "Z35SXDOTRQ7X7K"
    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "www.example.com", "Type": "A", "AliasTarget": {
            "HostedZoneId": lb_zone, "DNSName": est.alb_dns, "EvaluateTargetHealth": False}}},
        {"Action": "CREATE", "ResourceRecordSet": {"Name": "worker.example.com", "Type": "A", "TTL": 60,
                                                   "ResourceRecords": [{"Value": worker_ip}]}},
    ]})

    eu = c("ec2", other_region)
    eu_vpc = eu.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    eu_subnet = eu.create_subnet(VpcId=eu_vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    eu_image = eu.describe_images()["Images"][0]["ImageId"]
    est.eu_instance = eu.run_instances(ImageId=eu_image, MinCount=1, MaxCount=1, SubnetId=eu_subnet,
                                       TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(
                                           Name="eu-web-1")}])["Instances"][0]["InstanceId"]
    return est


def main() -> None:
    server = MotoServer()
    server.start()
    try:
        build_estate(server.url)
        print(f"AWS_ENDPOINT_URL={server.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    finally:
        server.close()


if __name__ == "__main__" and sys.argv[1:] == ["run"]:
    main()
