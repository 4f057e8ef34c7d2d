"""What the transforms produce: cloud resources and the links between them (the shared observations
``CloudResource`` and ``CloudLink`` of ``discovery.observations``), before ``to_batch`` makes them a Batch.

A ``Resource`` names its strongest identity key (``key``: the ARN, or the id the provider gives it) so a
link from another scope can reference it without carrying its attributes; ``ref`` is that key's value,
unique across an account. ``Link`` ends are refs; a link whose far end belongs to another scope (a target
group's member instance, a listener's ACM certificate) is resolved at the end of the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from discovery.observations import CloudLink, CloudResource, Identity


@dataclass(frozen=True)
class ScopeContext:
    """Where the raw responses came from: every resource carries account and region."""

    account: str
    region: str  # "global" for Route 53 and S3
    service: str
    partition: str = "aws"

    @property
    def scope(self) -> str:
        return f"aws:{self.account}:{self.region}:{self.service}"

    def arn(self, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
        """An ARN for resources whose API answers carry only an id (EC2)."""
        reg = self.region if region is None else region
        acc = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{reg}:{acc}:{resource}"


Resource = CloudResource  # the names the service transforms and their tests use
Link = CloudLink


@dataclass
class Transformed:
    """One scope's resources and links, in a stable order."""

    resources: list[Resource] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    # Other names a resource answers to, for links that only know those: "dns:<name>", "ip:<address>".
    aliases: dict[str, set[str]] = field(default_factory=dict)
    _refs: set[str] = field(default_factory=set, repr=False)

    def add(self, cls: str, key: tuple[str, str], **attrs: Any) -> str:
        """Adds a resource once (later sightings of the same ref are ignored); returns its ref."""
        if key[1] not in self._refs:
            self._refs.add(key[1])
            clean = {k: v for k, v in attrs.items() if v is not None and v != [] and v != ""}
            self.resources.append(Resource(cls, key, {key[0]: key[1], **clean}))
        return key[1]

    def link(self, rtype: str, src: str, dst: str, **attrs: Any) -> None:
        self.links.append(Link(rtype, src, dst, tuple(sorted(attrs.items()))))

    def alias(self, ref: str, *names: str | None) -> None:
        for name in names:
            if name:
                self.aliases.setdefault(name.lower().rstrip("."), set()).add(ref)

    def has(self, ref: str | Identity) -> bool:
        return isinstance(ref, str) and ref in self._refs


# -- tags --------------------------------------------------------------------------------------------

DEFAULT_TAG_MAP: dict[str, str] = {"name": "Name", "owner": "owner", "team": "team", "environment": "environment"}
ENVIRONMENTS = {"prod": "production", "production": "production", "prd": "production", "stage": "staging",
                "staging": "staging", "stg": "staging", "test": "test", "qa": "test", "dev": "development",
                "development": "development", "dr": "dr"}


@dataclass(frozen=True)
class TagMap:
    """Which tag key feeds which role: ``name`` (CI name), ``owner`` (a Person), ``team`` (a Team),
    ``environment`` (the CI attribute, normalised: prod -> production). Keys compare case-insensitively."""

    roles: tuple[tuple[str, str], ...] = tuple(DEFAULT_TAG_MAP.items())

    @classmethod
    def from_pairs(cls, pairs: Iterable[str]) -> TagMap:
        """``role=TagKey`` strings over the defaults (``owner=Owner``)."""
        from cmdb.errors import BadInputError

        roles = dict(DEFAULT_TAG_MAP)
        for pair in pairs:
            role, sep, tag = pair.partition("=")
            if not sep or role not in DEFAULT_TAG_MAP or not tag:
                raise BadInputError(f"tag map {pair!r}: expected ROLE=TagKey with ROLE one of "
                                    f"{', '.join(DEFAULT_TAG_MAP)} (e.g. owner=Owner)")
            roles[role] = tag
        return cls(tuple(roles.items()))

    def read(self, tags: Mapping[str, str]) -> dict[str, str]:
        """role -> tag value for the roles present."""
        lower = {k.lower(): v for k, v in tags.items()}
        out: dict[str, str] = {}
        for role, key in self.roles:
            value = lower.get(key.lower())
            if value is not None and value.strip():
                out[role] = value.strip()
        return out


def tag_dict(tags: Iterable[Mapping[str, Any]] | Mapping[str, str] | None) -> dict[str, str]:
    """AWS tags in either shape (``[{Key, Value}]`` or ``{key: value}``) as a dict."""
    if not tags:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags if "Key" in t}


def apply_tags(out: Transformed, ref: str, tags: Mapping[str, str], tag_map: TagMap) -> dict[str, Any]:
    """The tag-derived attributes of ``ref`` (name, environment, tags) and its OWNED_BY links."""
    roles = tag_map.read(tags)
    attrs: dict[str, Any] = {"tags": sorted(f"{k}={v}" for k, v in tags.items())}
    if "name" in roles:
        attrs["name"] = roles["name"]
    env = ENVIRONMENTS.get(roles.get("environment", "").lower())
    if env:
        attrs["environment"] = env
    if "owner" in roles:
        owner = roles["owner"]
        key = ("email", owner.lower()) if "@" in owner else ("username", owner)
        person = out.add("Person", key, name=owner)
        out.link("OWNED_BY", ref, person)
    if "team" in roles:
        team = out.add("Team", ("name", roles["team"]))
        out.link("OWNED_BY", ref, team)
    return attrs
