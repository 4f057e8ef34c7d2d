"""Deterministic synthetic estates for benchmarks: native batches of any size, streamed.

``synthetic_batches(n)`` yields batch dicts in the native format (see ``cmdb.batch``): first CI
batches (``cis`` only, unique ``ref``\\ s), then relationship batches whose ends are identity
references (``{class: Server, fqdn: h-0000123.syn.example}``, ``{class: Application, name:
app-0000042}``) so they resolve against the CIs loaded by the earlier batches. Nothing is held in
memory beyond one batch: every name, and every relationship end, is computed from an index.

The shape follows a real estate, layered so that the impact graph (DEPENDS_ON, RUNS_ON,
HOSTED_ON, CONNECTED_TO, MEMBER_OF, LOCATED_IN) is a DAG from services down to the network::

    Service -DEPENDS_ON-> Application (tier 0) -DEPENDS_ON-> tier 1 -> tier 2 -> tier 3 (shared platform)
    Application -DEPENDS_ON-> Cluster(pool) <-MEMBER_OF- VirtualMachine     (pooled front ends)
    Application -RUNS_ON-> VirtualMachine -HOSTED_ON-> Server(hypervisor)
    Application (tier 2, 3) -DEPENDS_ON-> Cluster(replica_set) <-MEMBER_OF- Database -RUNS_ON-> Server
    Server -CONNECTED_TO-> Switch(access) -CONNECTED_TO-> both Switch(core) of the site -CONNECTED_TO-> Router
    Switch(core) -MEMBER_OF-> Cluster(redundant_links); Router, Switch, Server -LOCATED_IN-> Location(site)
    OWNED_BY / SUPPORTED_BY / SERVICE_OWNER / CHANGE_APPROVER -> Team, Person
    Person -SUBSCRIBED_TO-> Service

A core switch therefore has a large blast radius (its site's access switches, their servers, the
VMs on them, what runs there and the services above), a VM that runs nothing a tiny one.
Access switches connect to *both* cores directly (not through the redundant_links cluster) so that
reachability-based blast radius benchmarks see the core's whole site.

Relationship count: a structural skeleton (about 1.5 per CI) always comes first in each source's
edges; optional edges (extra application dependencies, ownership and support of hosts, extra
subscriptions, services sharing applications) fill up to ``round(rels_per_ci * n_cis)`` exactly,
spread evenly over the estate. Below the skeleton, skeleton edges are thinned evenly; above about
3.9 per CI the optional capacity runs out and the total stops there.

Same arguments, same output: all randomness comes from ``random.Random`` seeded with ``seed``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DOMAIN = "syn.example"
HOSTS_PER_ACCESS_SWITCH = 20
POOL_SIZE = 4
REPLICA_SET_SIZE = 3
MAX_EXTRA_APP_DEPS = 6
MAX_EXTRA_SUBSCRIPTIONS = 4
MAX_EXTRA_SERVICE_DEPS = 2
MIN_CIS = 100

Ref = dict[str, Any]
Rel = dict[str, Any]


@dataclass(frozen=True)
class _Plan:
    """How many CIs of each kind an estate of ``n`` CIs has, and the derived layout."""

    n: int
    sites: int
    routers: int
    cores: int
    access: int
    servers: int
    hypervisors: int
    vms: int
    pools: int
    replica_sets: int
    dbs: int
    apps: int
    tiers: tuple[int, int, int, int]  # application tiers 0 (front) .. 3 (shared platform)
    services: int
    teams: int
    persons: int

    @classmethod
    def for_size(cls, n: int) -> _Plan:
        if n < MIN_CIS:
            raise ValueError(f"a synthetic estate needs at least {MIN_CIS} CIs, got {n}")
        sites = max(1, n // 10_000)
        teams = max(2, n // 500)
        persons = max(4, n * 3 // 100)
        services = max(2, n // 100)
        apps = max(8, n * 8 // 100)
        dbs = max(4, n * 4 // 100)
        replica_sets = dbs // 4
        pools = max(1, n // 100)
        servers = max(10, n * 20 // 100)
        access = -(-servers // HOSTS_PER_ACCESS_SWITCH)
        clusters = sites + pools + replica_sets
        fixed = sites + 2 * sites + 2 * sites + access + teams + persons + services + apps + dbs + clusters
        vms = n - fixed - servers
        if vms < POOL_SIZE * pools:
            raise ValueError(f"n_cis={n} is too small for the estate's proportions")
        t0, t1, t2 = apps * 4 // 10, apps * 3 // 10, apps * 2 // 10
        return cls(
            n=n, sites=sites, routers=2 * sites, cores=2 * sites, access=access, servers=servers,
            hypervisors=max(1, servers * 6 // 10), vms=vms, pools=pools, replica_sets=replica_sets, dbs=dbs,
            apps=apps, tiers=(t0, t1, t2, apps - t0 - t1 - t2), services=services, teams=teams,
            persons=persons,
        )

    # -- layout -------------------------------------------------------------------------------------
    @property
    def clusters(self) -> int:
        return self.sites + self.pools + self.replica_sets

    @property
    def db_targets(self) -> int:
        """What an application can depend on for data: a replica set or a standalone database."""
        return self.replica_sets + self.dbs - REPLICA_SET_SIZE * self.replica_sets

    def counts(self) -> dict[str, int]:
        return {
            "Location": self.sites, "Router": self.routers, "Switch": self.cores + self.access,
            "Server": self.servers, "VirtualMachine": self.vms, "Cluster": self.clusters,
            "Database": self.dbs, "Application": self.apps, "Service": self.services, "Team": self.teams,
            "Person": self.persons,
        }

    def tier_of(self, app: int) -> int:
        start = 0
        for tier, size in enumerate(self.tiers):
            start += size
            if app < start:
                return tier
        raise IndexError(app)

    def tier_start(self, tier: int) -> int:
        return sum(self.tiers[:tier])

    def server_site(self, server: int) -> int:
        return server * self.sites // self.servers

    def access_site(self, access: int) -> int:
        return self.server_site(access * HOSTS_PER_ACCESS_SWITCH)

    def service_block(self, service: int) -> tuple[int, int]:
        """The tier-0 applications (a contiguous range) a service is built from."""
        t0 = self.tiers[0]
        return service * t0 // self.services, (service + 1) * t0 // self.services

    def app_extra_capacity(self, tier: int) -> int:
        next_size = self.tiers[tier + 1] if tier < 3 else 0
        return min(MAX_EXTRA_APP_DEPS, max(0, next_size - 1))

    def app_db_capacity(self, tier: int) -> int:
        return 1 if tier < 2 else min(1, self.db_targets - 1)

    def service_extra_capacity(self, service: int) -> int:
        lo, hi = self.service_block(service)
        return min(MAX_EXTRA_SERVICE_DEPS, self.tiers[0] - (hi - lo))

    @property
    def person_extra_capacity(self) -> int:
        return min(MAX_EXTRA_SUBSCRIPTIONS, self.services - 1)

    def skeleton_size(self) -> int:
        """Number of structural relationships (see the module docstring)."""
        t0, t1, t2, t3 = self.tiers
        return (
            self.routers  # LOCATED_IN
            + 3 * self.cores  # LOCATED_IN, CONNECTED_TO router, MEMBER_OF core pair
            + 3 * self.access  # CONNECTED_TO both cores, LOCATED_IN
            + 2 * self.servers  # CONNECTED_TO access, LOCATED_IN
            + self.vms + POOL_SIZE * self.pools  # HOSTED_ON, MEMBER_OF pool
            + self.dbs + REPLICA_SET_SIZE * self.replica_sets  # RUNS_ON, MEMBER_OF replica set
            + 2 * self.apps + (t0 + t1 + t2) + (t2 + t3)  # placement, OWNED_BY, next tier, data
            + t0 + 4 * self.services  # service -> its applications, stakeholders
            + self.persons  # SUBSCRIBED_TO
        )

    def optional_capacity(self) -> int:
        apps = sum(size * (self.app_extra_capacity(t) + self.app_db_capacity(t) + 1) for t, size in
                   enumerate(self.tiers))
        services = sum(self.service_extra_capacity(s) for s in range(self.services))
        persons = self.persons * self.person_extra_capacity
        return 2 * self.servers + 2 * self.vms + self.dbs + apps + services + persons


def synthetic_counts(n_cis: int) -> dict[str, int]:
    """CIs per class in ``synthetic_batches(n_cis)``; the values sum to ``n_cis``."""
    return _Plan.for_size(n_cis).counts()


def synthetic_relationship_count(n_cis: int, rels_per_ci: float = 3.0) -> int:
    """Relationships in ``synthetic_batches(n_cis, rels_per_ci=...)``."""
    plan = _Plan.for_size(n_cis)
    target = round(rels_per_ci * n_cis)
    skeleton = plan.skeleton_size()
    return target if target <= skeleton else skeleton + min(target - skeleton, plan.optional_capacity())


# -- names and identity references ------------------------------------------------------------------

def _site(i: int) -> str:
    return f"site-{i:04d}"


def _router(i: int) -> str:
    return f"rt-{i:07d}"


def _switch(i: int) -> str:
    return f"sw-{i:07d}"


def _server(i: int) -> str:
    return f"h-{i:07d}"


def _vm(i: int) -> str:
    return f"vm-{i:07d}"


def _cluster(i: int) -> str:
    return f"cl-{i:07d}"


def _db(i: int) -> str:
    return f"db-{i:07d}"


def _app(i: int) -> str:
    return f"app-{i:07d}"


def _service(i: int) -> str:
    return f"svc-{i:07d}"


def _team(i: int) -> str:
    return f"team-{i:05d}"


def _person(i: int) -> str:
    return f"p-{i:07d}"


def _device_ref(cls: str, hostname: str) -> Ref:
    return {"class": cls, "fqdn": f"{hostname}.{DOMAIN}"}


def _named_ref(cls: str, name: str) -> Ref:
    return {"class": cls, "name": name}


def _person_ref(i: int) -> Ref:
    return {"class": "Person", "email": f"{_person(i)}@example.com"}


def _ip(device: int) -> str:
    device += 1
    return f"10.{(device >> 16) & 255}.{(device >> 8) & 255}.{device & 255}"


# -- CIs --------------------------------------------------------------------------------------------

OSES = (("Ubuntu", "22.04"), ("Red Hat Enterprise Linux", "9.3"), ("Debian GNU/Linux", "12"),
        ("Windows Server", "2022"))
ENGINES = (("PostgreSQL", 5432), ("MySQL", 3306), ("Oracle Database", 1521), ("Microsoft SQL Server", 1433))
ENVIRONMENTS = ("production", "production", "production", "staging", "test")


def _cis(plan: _Plan, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Every CI, in a fixed order: sites, network, servers, VMs, clusters, data, software, people."""
    device = 0  # global device index, for unique IP addresses

    def device_attrs(host: str) -> dict[str, Any]:
        nonlocal device
        attrs = {"ref": host, "hostname": host, "fqdn": f"{host}.{DOMAIN}", "ip_addresses": [_ip(device)]}
        device += 1
        return attrs

    for i in range(plan.sites):
        yield {"ref": _site(i), "class": "Location", "name": _site(i), "site_code": f"S{i:04d}",
               "kind": "site"}
    for i in range(plan.routers):
        yield {**device_attrs(_router(i)), "class": "Router", "vendor": "Juniper Networks", "model": "MX204",
               "role": "wan"}
    for i in range(plan.cores + plan.access):
        core = i < plan.cores
        yield {**device_attrs(_switch(i)), "class": "Switch", "vendor": "Cisco",
               "model": "C9500-48Y4C" if core else "C9300-48P", "role": "core" if core else "access"}
    for i in range(plan.servers):
        os_name, os_version = ("VMware ESXi", "8.0.2") if i < plan.hypervisors else rng.choice(OSES)
        yield {**device_attrs(_server(i)), "class": "Server", "os": os_name, "os_version": os_version,
               "cpu_count": rng.choice((16, 32, 64)), "memory_mb": rng.choice((131072, 262144, 524288)),
               "environment": "production"}
    for i in range(plan.vms):
        os_name, os_version = rng.choice(OSES)
        yield {**device_attrs(_vm(i)), "class": "VirtualMachine", "os": os_name, "os_version": os_version,
               "cpu_count": rng.choice((2, 4, 8)), "memory_mb": rng.choice((4096, 8192, 16384, 32768)),
               "environment": rng.choice(ENVIRONMENTS)}
    for i in range(plan.clusters):
        if i < plan.sites:
            ctype, quorum = "redundant_links", 1
        elif i < plan.sites + plan.pools:
            ctype, quorum = "pool", rng.randint(1, POOL_SIZE - 1)
        else:
            ctype, quorum = "replica_set", 1
        yield {"ref": _cluster(i), "class": "Cluster", "name": _cluster(i), "cluster_type": ctype,
               "quorum": quorum}
    for i in range(plan.dbs):
        engine, port = rng.choice(ENGINES)
        if i < REPLICA_SET_SIZE * plan.replica_sets:
            role = "primary" if i % REPLICA_SET_SIZE == 0 else "replica"
        else:
            role = "standalone"
        yield {"ref": _db(i), "class": "Database", "name": _db(i), "engine": engine, "port": port,
               "role": role}
    for i in range(plan.apps):
        yield {"ref": _app(i), "class": "Application", "name": _app(i),
               "version": f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
               "port": rng.choice((80, 443, 8080, 8443, 9000)), "environment": rng.choice(ENVIRONMENTS)}
    for i in range(plan.services):
        yield {"ref": _service(i), "class": "Service", "name": _service(i),
               "service_type": "business" if rng.random() < 0.6 else "technical", "tier": rng.randint(1, 4)}
    for i in range(plan.teams):
        yield {"ref": _team(i), "class": "Team", "name": _team(i), "email": f"{_team(i)}@example.com"}
    for i in range(plan.persons):
        yield {"ref": _person(i), "class": "Person", "name": f"Person {i}",
               "email": f"{_person(i)}@example.com", "username": _person(i)}


# -- relationships ----------------------------------------------------------------------------------

class _Budget:
    """Spreads ``keep`` of ``total`` skeleton edges and ``take`` of ``capacity`` optional edges evenly."""

    def __init__(self, total: int, keep: int, capacity: int, take: int) -> None:
        self.total, self.keep, self.capacity, self.take = total, keep, capacity, take
        self.seen = 0
        self.offered = 0

    def skeleton(self) -> bool:
        i = self.seen
        self.seen += 1
        return self.keep == self.total or (i + 1) * self.keep // self.total > i * self.keep // self.total

    def optional(self, slots: int) -> int:
        before = self.offered
        self.offered += slots
        if not self.take:
            return 0
        return self.offered * self.take // self.capacity - before * self.take // self.capacity


def _sample_excluding(rng: random.Random, lo: int, hi: int, k: int, exclude: set[int]) -> list[int]:
    """``k`` distinct integers from ``[lo, hi)`` not in ``exclude`` (which must lie in that range)."""
    if k <= 0:
        return []
    picked = rng.sample(range(lo, hi), k + len(exclude))
    return [x for x in picked if x not in exclude][:k]


def _relationships(plan: _Plan, rng: random.Random, rels_per_ci: float) -> Iterator[Rel]:
    skeleton = plan.skeleton_size()
    capacity = plan.optional_capacity()
    target = round(rels_per_ci * plan.n)
    if target <= skeleton:
        budget = _Budget(skeleton, max(0, target), capacity, 0)
    else:
        budget = _Budget(skeleton, skeleton, capacity, min(target - skeleton, capacity))
    keep = budget.skeleton

    def rel(rtype: str, src: Ref, dst: Ref) -> Rel:
        return {"type": rtype, "from": src, "to": dst}

    def site(i: int) -> Ref:
        return _named_ref("Location", _site(i))

    def team(i: int) -> Ref:
        return _named_ref("Team", _team(i))

    def app(i: int) -> Ref:
        return _named_ref("Application", _app(i))

    def db_target(t: int) -> Ref:
        """Data dependency ``t``: a replica-set cluster, or past those a standalone database."""
        if t < plan.replica_sets:
            return _named_ref("Cluster", _cluster(plan.sites + plan.pools + t))
        return _named_ref("Database", _db(REPLICA_SET_SIZE * plan.replica_sets + t - plan.replica_sets))

    # Network: routers, core switches, access switches.
    for r in range(plan.routers):
        if keep():
            yield rel("LOCATED_IN", _device_ref("Router", _router(r)), site(r // 2))
    for c in range(plan.cores):
        me = _switch(c)
        if keep():
            yield rel("LOCATED_IN", _device_ref("Switch", me), site(c // 2))
        if keep():
            yield rel("CONNECTED_TO", _device_ref("Switch", me), _device_ref("Router", _router(c)))
        if keep():
            yield rel("MEMBER_OF", _device_ref("Switch", me), _named_ref("Cluster", _cluster(c // 2)))
    for a in range(plan.access):
        me, s = _switch(plan.cores + a), plan.access_site(a)
        for core in (2 * s, 2 * s + 1):
            if keep():
                yield rel("CONNECTED_TO", _device_ref("Switch", me), _device_ref("Switch", _switch(core)))
        if keep():
            yield rel("LOCATED_IN", _device_ref("Switch", me), site(s))

    # Hosts.
    for h in range(plan.servers):
        me = _server(h)
        if keep():
            yield rel("CONNECTED_TO", _device_ref("Server", me),
                      _device_ref("Switch", _switch(plan.cores + h // HOSTS_PER_ACCESS_SWITCH)))
        if keep():
            yield rel("LOCATED_IN", _device_ref("Server", me), site(plan.server_site(h)))
        extra = budget.optional(2)
        owner = h % plan.teams
        for rtype in ("OWNED_BY", "SUPPORTED_BY")[:extra]:
            yield rel(rtype, _device_ref("Server", me), team(owner))
    for v in range(plan.vms):
        me = _vm(v)
        hypervisor = rng.randrange(plan.hypervisors)
        if keep():
            yield rel("HOSTED_ON", _device_ref("VirtualMachine", me),
                      _device_ref("Server", _server(hypervisor)))
        if v < POOL_SIZE * plan.pools and keep():
            yield rel("MEMBER_OF", _device_ref("VirtualMachine", me),
                      _named_ref("Cluster", _cluster(plan.sites + v // POOL_SIZE)))
        extra = budget.optional(2)
        owner = v % plan.teams
        for rtype in ("OWNED_BY", "SUPPORTED_BY")[:extra]:
            yield rel(rtype, _device_ref("VirtualMachine", me), team(owner))

    # Databases: on bare-metal servers (those after the hypervisors).
    bare_metal = plan.servers - plan.hypervisors
    for d in range(plan.dbs):
        host = plan.hypervisors + rng.randrange(bare_metal)
        if keep():
            yield rel("RUNS_ON", _named_ref("Database", _db(d)), _device_ref("Server", _server(host)))
        if d < REPLICA_SET_SIZE * plan.replica_sets and keep():
            yield rel("MEMBER_OF", _named_ref("Database", _db(d)),
                      _named_ref("Cluster", _cluster(plan.sites + plan.pools + d // REPLICA_SET_SIZE)))
        if budget.optional(1):
            yield rel("OWNED_BY", _named_ref("Database", _db(d)), team(d % plan.teams))

    # Applications: tier k depends on tier k+1 only, so application dependencies form a DAG.
    pooled_vms = POOL_SIZE * plan.pools
    free_vms = (pooled_vms, plan.vms) if plan.vms > pooled_vms else (0, plan.vms)
    for a in range(plan.apps):
        tier = plan.tier_of(a)
        if a < plan.pools:
            if keep():
                yield rel("DEPENDS_ON", app(a), _named_ref("Cluster", _cluster(plan.sites + a)))
        else:
            vm = rng.randrange(*free_vms)
            if keep():
                yield rel("RUNS_ON", app(a), _device_ref("VirtualMachine", _vm(vm)))
        if keep():
            yield rel("OWNED_BY", app(a), team(a % plan.teams))
        deps: set[int] = set()
        if tier < 3:
            lo = plan.tier_start(tier + 1)
            dep = lo + rng.randrange(plan.tiers[tier + 1])
            deps.add(dep)
            if keep():
                yield rel("DEPENDS_ON", app(a), app(dep))
        data: set[int] = set()
        if tier >= 2:
            target = rng.randrange(plan.db_targets)
            data.add(target)
            if keep():
                yield rel("DEPENDS_ON", app(a), db_target(target))
        n_extra = budget.optional(plan.app_extra_capacity(tier))
        if n_extra:
            lo = plan.tier_start(tier + 1)
            for dep in _sample_excluding(rng, lo, lo + plan.tiers[tier + 1], n_extra, deps):
                yield rel("DEPENDS_ON", app(a), app(dep))
        if budget.optional(plan.app_db_capacity(tier)):
            for target in _sample_excluding(rng, 0, plan.db_targets, 1, data):
                yield rel("DEPENDS_ON", app(a), db_target(target))
        if budget.optional(1):
            yield rel("SUPPORTED_BY", app(a), team((a + 1) % plan.teams))

    # Services: each is built from its own block of front-end applications, and may share others.
    def service(i: int) -> Ref:
        return _named_ref("Service", _service(i))

    for s in range(plan.services):
        lo, hi = plan.service_block(s)
        for a in range(lo, hi):
            if keep():
                yield rel("DEPENDS_ON", service(s), app(a))
        for rtype, end in (("SERVICE_OWNER", _person_ref(s % plan.persons)),
                           ("CHANGE_APPROVER", team((3 * s + 1) % plan.teams)),
                           ("SUPPORTED_BY", team(s % plan.teams)),
                           ("OWNED_BY", team(s % plan.teams))):
            if keep():
                yield rel(rtype, service(s), end)
        n_extra = budget.optional(plan.service_extra_capacity(s))
        if n_extra:
            # Shared applications: tier-0 applications outside the service's own block.
            for x in rng.sample(range(plan.tiers[0] - (hi - lo)), n_extra):
                yield rel("DEPENDS_ON", service(s), app(x if x < lo else x + hi - lo))

    # People subscribe to services.
    for p in range(plan.persons):
        first = p % plan.services
        if keep():
            yield rel("SUBSCRIBED_TO", _person_ref(p), service(first))
        n_extra = budget.optional(plan.person_extra_capacity)
        for s in _sample_excluding(rng, 0, plan.services, n_extra, {first}):
            yield rel("SUBSCRIBED_TO", _person_ref(p), service(s))


def _chunks(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def synthetic_batches(
    n_cis: int,
    seed: int = 7,
    rels_per_ci: float = 3.0,
    batch_size: int = 5000,
    source: str = "import",
    scope: str = "synthetic",
) -> Iterator[dict[str, Any]]:
    """Native batches describing ``n_cis`` CIs and about ``rels_per_ci * n_cis`` relationships.

    CI batches come first, then relationship batches (identity references to the CIs of the
    earlier batches). No batch is ``complete``: each describes part of the scope only.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    plan = _Plan.for_size(n_cis)
    for cis in _chunks(_cis(plan, random.Random(f"synthetic-cis:{seed}")), batch_size):
        yield {"source": source, "scope": scope, "complete": False, "cis": cis}
    rels = _relationships(plan, random.Random(f"synthetic-rels:{seed}"), rels_per_ci)
    for chunk in _chunks(rels, batch_size):
        yield {"source": source, "scope": scope, "complete": False, "relationships": chunk}
