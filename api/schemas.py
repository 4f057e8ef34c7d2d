"""Pydantic models of the API's bodies, for validation and for the OpenAPI document (with examples)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

CI_EXAMPLE: dict[str, Any] = {"id": "ci-0001", "class": "Switch", "name": "sw-core-fra-1", "status": "active",
              "attrs": {"hostname": "sw-core-fra-1", "serial_number": "FOC1234X0AB", "vendor": "Cisco"},
              "created_at": "2026-11-20T02:00:00.000000Z", "updated_at": "2026-11-21T08:00:00.000000Z"}


class CIOut(BaseModel):
    """A CI; with ``fields=`` only the fields asked for are present."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [CI_EXAMPLE]})
    id: str | None = None
    class_: str | None = Field(None, alias="class")
    name: str | None = None
    status: str | None = None
    attrs: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None


class CIPage(BaseModel):
    items: list[CIOut]
    total: int = Field(description="How many CIs match, over all pages.")
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last.")


class CIWrite(BaseModel):
    """A CI as the ``manual`` source describes it; identity attributes decide which CI it is."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [
        {"class": "Server", "attrs": {"hostname": "web-07", "fqdn": "web-07.fra.example.com", "owner": "web-team"}}]})
    class_: str = Field(alias="class", min_length=1)
    attrs: dict[str, Any]


class CIPatch(BaseModel):
    """Attributes the ``manual`` source sets on an existing CI."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"attrs": {"owner": "platform-team"}}]})
    attrs: dict[str, Any]


class RelOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    id: str
    type: str
    from_: str = Field(alias="from")
    to: str
    attrs: dict[str, Any]
    status: str


class EventOut(BaseModel):
    at: str
    kind: str
    source: str
    run_id: str | None = None
    ci_id: str | None = None
    rel_id: str | None = None
    peer_id: str | None = None
    attr: str | None = None
    old: Any = None
    new: Any = None
    actor: str | None = None
    seq: int | None = None


class ConflictOut(BaseModel):
    id: str
    at: str
    source: str
    run_id: str
    item: str
    item_class: str
    keys: dict[str, str]
    ci_ids: list[str]
    attrs: dict[str, Any]
    state: Literal["open", "closed", "resolved"] = "open"  # closed: by ageing; resolved: see resolution
    resolution: str | None = None  # None until resolved; merged or keep_separate
    resolved_at: str | None = None
    resolved_by: str | None = None
    closed_at: str | None = None  # closed by ageing: when, by which run, whose batch, why (the keys retired)
    closed_run: str | None = None
    closed_by: str | None = None
    closed_reason: str | None = None


class ConflictResolve(BaseModel):
    """How to resolve an identity conflict (``POST /conflicts/{id}/resolve``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"action": "merge"},
                                                                              {"action": "keep_separate"}]})
    action: Literal["merge", "keep_separate"]
    keep: str | None = None  # with merge: the CI id to keep (default: the conflict's first CI)
    dry_run: bool = False


class BatchSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"run_id": "run-42", "created": 3, "updated": 1, "unchanged": 0, "rels_created": 2, "rels_updated": 0,
         "events": 12, "stale": 0, "retired": 0, "conflicts": 0, "keys_retired": 1, "attrs_dropped": 2,
         "rel_attrs_dropped": 0, "merged": 1, "conflicts_closed": 0, "replayed": False}]})
    run_id: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rels_created: int = 0
    rels_updated: int = 0
    events: int = 0
    stale: int = 0
    retired: int = 0
    conflicts: int = 0
    keys_retired: int = Field(0, description="Identity keys no source yields any more, retired (ci.key.retired).")
    attrs_dropped: int = Field(0, description="CI attribute values a source withdrew or stopped reporting "
                                              "(ci.attr.dropped).")
    rel_attrs_dropped: int = Field(0, description="Relationship attribute values dropped (rel.attr.dropped).")
    merged: int = Field(0, description="CIs merged into another because an item proved them one (ci.merged).")
    conflicts_closed: int = Field(0, description="Recorded conflicts whose cause this batch retired "
                                                 "(conflict.closed).")
    replayed: bool = Field(False, description="True when an Idempotency-Key replay answered without writing.")


BATCH_EXAMPLE = {"source": "import:inventory", "scope": "inventory.csv", "complete": False,
                 "cis": [{"ref": "sw1", "class": "Switch", "hostname": "sw1", "serial_number": "FOC1234"}],
                 "relationships": [{"type": "CONNECTED_TO", "from": "sw1",
                                    "to": {"class": "Switch", "hostname": "core1"}, "attributes": {"port": "Gi0/1"}}]}


class IncidentIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"cis": ["sw-core-fra-1"], "urgency": "high"}]})
    cis: list[str] = Field(min_length=1, description="Failed CIs: ids, names or identity values.")
    mode: Literal["down", "degraded"] = "down"
    urgency: Literal["high", "medium", "low"] = "medium"
    as_of: str | None = Field(None, description="Evaluate on the graph as it was then (ISO time).")
    days: int = Field(7, ge=0, le=3650, description="Recent changes from this many days back.")
    record: str | None = Field(None, description="Store the incident under this key (e.g. INC0012345).")
    max_affected: int | None = Field(500, ge=0, description="At most this many affected CIs, worst first (null: all);"
                                     " affected_total counts them all.")
    max_stakeholders: int | None = Field(200, ge=0, description="At most this many stakeholders, most critical first"
                                         " (null: all); stakeholders_total counts them.")
    max_reasons: int | None = Field(5, ge=0, description="At most this many reasons per stakeholder (null: all);"
                                    " reasons_total counts them.")


class ChangeIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"cis": ["db-fra-01"], "start": "2026-12-01T22:00", "end": "2026-12-01T23:00", "type": "normal"}]})
    cis: list[str] = Field(min_length=1)
    start: str
    end: str
    type: Literal["standard", "normal", "emergency"] = "normal"
    record: str | None = Field(None, description="Store the change under this key (e.g. CHG0042).")
    state: str = "requested"


class RunStart(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"method": "scan", "targets": ["127.0.0.1"],
                                                               "ports": "22,80,443"}]})
    method: Literal["scan"] = "scan"
    targets: list[str] = Field(min_length=1, max_length=4096)
    ports: str | None = Field(None, description="Ports and ranges, e.g. 22,80,8000-8100 (default: common ports).")
    dns: bool = False
    timeout: float = Field(1.0, gt=0, le=60)


class RunOut(BaseModel):
    run_id: str
    method: str
    started_at: str
    ended_at: str | None = None
    actor: str | None = None
    targets: list[str] = []
    options: dict[str, Any] = {}
    outcomes: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    job: str | None = Field(None, description="running, finished, failed or abandoned (the process running it "
                            "died), for runs started over the API.")
    error: str | None = None
