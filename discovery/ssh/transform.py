"""Pure: one host's ``HostFacts`` -> a ``Batch`` of source ``ssh``.

What a host becomes:

* the Host (``Server`` on bare metal, ``VirtualMachine`` under a hypervisor, ``Container`` in a
  container, plain ``Host`` in a cloud VM so that the cloud collector's ``CloudInstance`` refines it),
  identified by its MAC addresses, FQDN, host name + IPs and ``management_ip`` (the address discovery
  connected to); ``ssh_host_key`` and ``ssh_profile`` record the verified key and the profile that worked;
* an ``Interface`` per real NIC (``HAS_INTERFACE``) and an ``IPAddress`` per routable address on it
  (``HAS_ADDRESS``). Container plumbing (veth, docker0, cni ...) is left out: those MACs change on every
  restart and the same bridge address exists on every Docker host, so they would merge strangers;
* an ``Application`` per listening process, or a ``Database`` when the process is a known database
  server, named ``<process>@<host>`` (Application identity is the name, so the host is part of it),
  ``RUNS_ON`` the Host and ``LISTENS_ON`` a ``ServiceEndpoint`` per address it serves, which ``RUNS_ON``
  the Host; its description names the systemd service it runs in (from its pids' cgroups), when there is
  one. A wildcard listener (0.0.0.0, ::) serves on each of the host's routable addresses; a listener
  on loopback only gets no endpoint (127.0.0.1:5432 exists on every host and would merge them all);
* a ``SoftwareInstall`` (``RUNS_ON`` the Host) per selected package. Which packages: a curated set by
  default (servers, runtimes, TLS and SSH stacks, kernels: what licence, vulnerability and impact questions
  ask about), ``all`` on request. A Debian host has 500-1500 packages; every one as a CI multiplies the
  graph twenty-fold with items no relationship but "installed on" ever points at, and slows every run;
  ``--packages all`` is there for vulnerability work;
* a ``Certificate`` per certificate file found under the configured directories, used
  (``USES_CERTIFICATE``) by the Application whose process name starts a directory or file name below
  the searched directory (``--cert-path /etc`` finds ``/etc/nginx/ssl/site.crt``: nginx's), else by the Host.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from cmdb.batch import Batch
from discovery.observations import (
    Address,
    Application,
    Certificate,
    Device,
    Endpoint,
    Fact,
    Interface,
    Software,
    to_batch,
)
from discovery.services import guess_service
from discovery.ssh.facts import HostFacts
from discovery.ssh.parsers import Link, Socket
from discovery.targets import scope_of

SOURCE = "ssh"

DEFAULT_PACKAGE_PATTERNS: tuple[str, ...] = (
    # access, TLS, core runtime
    "openssh-server", "openssh", "openssl", "libssl*", "sudo", "bash", "glibc", "libc6", "systemd", "kernel",
    "linux-image-*", "ca-certificates",
    # web, proxies, load balancers
    "nginx*", "apache2", "httpd", "haproxy", "varnish*", "squid", "envoy", "traefik", "tomcat*", "jetty*",
    # databases, caches, queues, search
    "postgresql*", "mysql-server*", "mariadb-server*", "mongodb*", "redis*", "memcached", "rabbitmq-server",
    "kafka*", "zookeeper*", "elasticsearch*", "opensearch*", "etcd*", "influxdb*", "clickhouse-server",
    # containers and orchestration
    "docker*", "containerd*", "podman", "cri-o*", "kubelet", "kubeadm", "kubectl",
    # language runtimes
    "openjdk-*", "java-*", "python3", "python3.[0-9]*", "nodejs", "php*-fpm", "php[0-9]*", "ruby", "golang-go",
    "dotnet-runtime*",
    # infrastructure daemons
    "bind9", "bind", "unbound", "dnsmasq", "postfix", "exim4*", "dovecot-core", "keepalived", "pacemaker",
    "corosync", "nfs-kernel-server", "nfs-utils", "samba", "openvpn", "wireguard*", "strongswan*", "chrony", "ntp",
    "rsyslog", "auditd", "audit", "cron", "cronie",
)

# Process names (as ss shows them, at most 15 characters) of database servers -> engine.
DATABASE_PROCESSES: dict[str, str] = {
    "postgres": "postgresql", "postmaster": "postgresql", "mysqld": "mysql", "mariadbd": "mariadb",
    "mongod": "mongodb", "mongos": "mongodb", "redis-server": "redis", "keydb-server": "redis",
    "valkey-server": "redis", "memcached": "memcached", "influxd": "influxdb", "clickhouse-serv": "clickhouse",
    "etcd": "etcd", "sqlservr": "mssql", "tnslsnr": "oracle", "db2sysc": "db2", "couchdb": "couchdb",
}

# Interfaces that are container or VM plumbing, not the host's own NICs.
PLUMBING = re.compile(r"^(veth|docker\d|br-|virbr|vnet|cni|flannel|cali|vxlan|tun|tap|kube|weave|lxcbr|lxc|"
                      r"genev|cilium|nodelocaldns|dummy|ifb|sit|gre|ip6tnl|ip_vti|ip6_vti|erspan|tunl)")
_VM_KINDS = {"kvm", "qemu", "vmware", "microsoft", "oracle", "xen", "bochs", "uml", "parallels", "bhyve", "qnx",
             "acrn", "powervm", "zvm", "apple", "sre"}
_CLOUD_KINDS = {"amazon", "google"}  # the cloud collector knows better: CloudInstance
_CONTAINER_KINDS = {"docker", "podman", "lxc", "lxc-libvirt", "systemd-nspawn", "openvz", "rkt", "wsl", "proot",
                    "pouch"}
_WORDS = re.compile(r"[^a-z0-9]+")


def app_class(process: str) -> str:
    return "Database" if process in DATABASE_PROCESSES else "Application"


def app_name(process: str, label: str) -> str:
    """``<process>@<host>``: Applications are identified by name, so the host belongs in it."""
    return f"{process}@{label}"


def host_class(facts: HostFacts) -> tuple[str, dict[str, Any]]:
    """The Host subclass the facts support, with its class-specific attributes."""
    virt = (facts.virt or "").lower()
    if virt in _CONTAINER_KINDS:
        return "Container", {"runtime": virt}
    if virt in _CLOUD_KINDS:
        return "Host", {}
    if virt in _VM_KINDS:
        return "VirtualMachine", {"hypervisor": virt}
    if virt == "none":
        return "Server", {}
    return "Host", {}


def is_plumbing(link: Link) -> bool:
    return bool(PLUMBING.match(link.name))


def package_selected(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def listening_processes(sock: Socket) -> list[str]:
    """Process names owning a listening socket; the service manager (systemd socket activation) only
    when nothing else holds it."""
    names = list(dict.fromkeys(name for name, _ in sock.processes))
    real = [n for n in names if n not in ("systemd", "init")]
    return real or names


def real_links(facts: HostFacts) -> list[Link]:
    """The host's own NICs: not loopback, not container plumbing."""
    return [link for link in facts.links if link.kind != "loopback" and not is_plumbing(link)]


def routable_addresses(facts: HostFacts) -> list[str]:
    """Addresses on the host's own NICs that others reach it on (no link-local), IPv4 first."""
    public = facts.public_addresses()
    found = {a.address for link in real_links(facts) for a in link.addresses if a.address in public}
    return sorted(found, key=lambda a: (ipaddress.ip_address(a).version, a))


def endpoint_addresses(facts: HostFacts, listen_addr: str) -> list[str]:
    """Addresses a listener serves others on: a wildcard means every routable address of the host; a
    loopback or plumbing address (docker0's 172.17.0.1 is on every Docker host) means none."""
    ip = ipaddress.ip_address(listen_addr)
    routable = routable_addresses(facts)
    if ip.is_unspecified:
        return [a for a in routable if ip.version == 6 or ipaddress.ip_address(a).version == 4]
    if listen_addr in routable or not (facts.is_host_local(listen_addr) or listen_addr in facts.public_addresses()):
        return [listen_addr]
    return []


_OPER = {"UP": "up", "DOWN": "down", "LOWERLAYERDOWN": "lowerLayerDown", "DORMANT": "dormant",
         "NOTPRESENT": "notPresent", "TESTING": "testing"}


def host_facts(facts: HostFacts, *, packages: Sequence[str] = DEFAULT_PACKAGE_PATTERNS) -> list[Fact]:
    """What one host's commands amount to, as observations (pure)."""
    label = facts.label
    links = real_links(facts)
    host_ips = routable_addresses(facts)
    cls, extra = host_class(facts)
    os = facts.os_release
    out: list[Fact] = [Device(
        cls, hostname=facts.hostname, fqdn=facts.fqdn, management_ip=_ip_or_none(facts.address),
        ip_addresses=host_ips, macs=[link.mac for link in links if link.mac],
        serial_number=facts.serial, vendor=facts.vendor, model=facts.model,
        os=os.get("NAME") or os.get("ID"), os_version=os.get("VERSION_ID") or os.get("VERSION"),
        extra={"kernel": facts.kernel, "cpu_count": facts.cpu_count, "memory_mb": facts.memory_mb,
               "disk_gb": facts.disk_gb, "ssh_host_key": facts.host_key, "ssh_profile": facts.profile,
               "cloud_instance_id": facts.instance_id, **extra},
        # Interfaces carry the short host name (discovery.names), unless the host calls itself localhost.
        interface_owner=None if label in (facts.fqdn, facts.hostname) else label,
    )]
    for link in links:
        out.append(Interface(link.name, mac_address=link.mac, admin_status="up" if link.admin_up else "down",
                             oper_status=_OPER.get(link.oper_state, "unknown")))
        out += [Address(a.address, interface=link.name, prefix_length=a.prefix)
                for a in link.addresses if a.address in host_ips]

    out += [Software(pkg.name, label, pkg.version or None, pkg.vendor or None)
            for pkg in facts.packages or () if package_selected(pkg.name, packages)]

    apps: set[str] = set()
    endpoints: dict[tuple[str, int], Endpoint] = {}
    listeners = sorted((s for s in facts.sockets or () if s.state == "LISTEN"),
                       key=lambda s: (s.local_port, s.local_addr))
    for sock in listeners:
        procs = listening_processes(sock)
        for proc in procs:
            if proc not in apps:
                apps.add(proc)
                ports = sorted({s.local_port for s in listeners if proc in listening_processes(s)})
                about = _service_note(facts, proc, listeners)
                if app_class(proc) == "Database":
                    out.append(Application(app_name(proc, label), "Database", engine=DATABASE_PROCESSES[proc],
                                           port=ports[0], description=about))
                else:
                    out.append(Application(app_name(proc, label), process=proc, port=ports[0], description=about))
        for address in endpoint_addresses(facts, sock.local_addr):
            ep = endpoints.get((address, sock.local_port))
            if ep is None:
                ep = endpoints[(address, sock.local_port)] = Endpoint(
                    address, sock.local_port, "tcp", service=guess_service(sock.local_port, None, None),
                    process=procs[0] if procs else None, host_name=label)
                out.append(ep)
            ep.served_by = tuple(dict.fromkeys([*ep.served_by, *(app_name(p, label) for p in procs)]))

    for cert in facts.certificates:
        below = _below_root(cert.path, facts.cert_roots)
        user = next((p for p in sorted(apps, key=len, reverse=True) if _path_mentions(below, p)), None)
        out.append(Certificate(**cert.attrs, used_by=app_name(user, label) if user else None, path=cert.path))
    return out


def transform_host(facts: HostFacts, *, packages: Sequence[str] = DEFAULT_PACKAGE_PATTERNS) -> Batch:
    """The host's batch: scope is the target (``a.b.c.d/32``), complete when every required command worked."""
    return to_batch(SOURCE, scope_of(facts.target), facts.complete, host_facts(facts, packages=packages))


def _service_note(facts: HostFacts, process: str, listeners: Sequence[Socket]) -> str | None:
    """``systemd service nginx.service`` for a process whose pids run in a running service unit."""
    running = set(facts.services) if facts.services is not None else None
    units = sorted({facts.units[pid] for s in listeners for name, pid in s.processes
                    if name == process and pid in facts.units
                    and (running is None or facts.units[pid] in running)})
    return f"systemd service {', '.join(units)}" if units else None


def _below_root(path: str, roots: Sequence[str]) -> str:
    """The part of ``path`` under the scanned directory it was found in: only that part names its user."""
    for root in sorted(roots, key=len, reverse=True):
        prefix = root.rstrip("/") + "/"
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def _path_mentions(path: str, process: str) -> bool:
    """Whether a directory or file name in ``path`` starts with the process name (``sshd`` matches ``ssh``)."""
    name = process.lower()
    stem = name[:-1] if name.endswith("d") and len(name) >= 4 else name
    return any(word.startswith(stem) for word in _WORDS.split(path.lower()) if word)


def _ip_or_none(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None

