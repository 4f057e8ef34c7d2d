"""Tasks, the notification outbox, scheduler leases and the expiry range filter: the store side.

The part of the product that acts on its own keeps its state in the same store as the graph, so a
second scheduler, a restarted one or ``cmdb migrate`` sees exactly what the first one did.
``TaskStore`` is implemented by ``SqliteTasksMixin`` (``sqlite_tasks``) and ``Neo4jTasks``
(``neo4j.tasks``); ``GraphStore`` includes it. Contract tests: ``tests/contract/test_tasks_contract.py``.

Interface in short (every ``now`` is an aware ``datetime`` passed in: tests inject the clock; every
time *field* is an ISO text from ``cmdb.store.base.iso``, which sorts as text)::

    task = new_task(kind, ci_id, expiry, now=now, actor="scheduler", priority="P3", due=...,
                    threshold="30d", assignee=Assignment(...), services_at_risk=[...], ...)
    task, created = store.raise_task(task)      # unique on (kind, ci_id, expiry): created is False
                                                 # and the stored task comes back when it exists
    store.get_task(id); store.find_tasks([(kind, ci_id, expiry), ...]) -> {key: Task}
    store.list_tasks(TaskQuery(person=..., team=..., states=[...], overdue_at=now, kinds=[...], ci_id=...))
    store.transition_task(id, "acknowledged", actor=..., now=..., note=...)  # InvalidTransitionError
    store.update_task(id, actor=..., now=..., note=..., priority=..., threshold=..., assignee=...,
                      due=..., services_at_risk=..., details=...)   # recorded as an "update" entry

    store.enqueue_messages([new_message(channel, recipient, subject, payload, key, now=now)]) -> [created?]
    store.claim_messages(now, limit=50, hold_seconds=300)  # pending and due; attempts += 1; held
    store.mark_sent(id, now); store.mark_failed(id, error, now, retry_at=None|datetime)  # None: dead
    store.list_messages(state=None); store.get_message(id); store.retry_message(id, now)

    store.acquire_lease(name, holder, ttl_seconds, now) -> bool   # free, expired or already ours
    store.renew_lease(name, holder, ttl_seconds, now) -> bool; store.release_lease(name, holder)

    store.expiring_cis(until, since=None, classes=EXPIRY_ATTRS) -> [ExpiringCI]  # index range scan
    store.get_cis_brief(ids) -> {id: CIState}   # class, name, status, attrs only: no provenance, sightings

``backoff_delay(attempts)`` gives the exponential retry delay; task kinds are open text, the three
named in ``TASK_KINDS`` are the ones the product raises.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from cmdb.errors import BadInputError, NotFoundError

TaskState = Literal["open", "acknowledged", "resolved", "cancelled"]
TASK_STATES: tuple[str, ...] = ("open", "acknowledged", "resolved", "cancelled")
ACTIVE_STATES: tuple[str, ...] = ("open", "acknowledged")
TASK_KINDS: tuple[str, ...] = ("certificate_expiry", "licence_expiry", "licence_compliance")

# state -> the states it may move to; resolved and cancelled are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "resolved", "cancelled"}),
    "acknowledged": frozenset({"resolved", "cancelled"}),
    "resolved": frozenset(),
    "cancelled": frozenset(),
}

MessageState = Literal["pending", "sent", "dead"]
MESSAGE_STATES: tuple[str, ...] = ("pending", "sent", "dead")

# The (class -> expiry attribute) pairs the stores index for ``expiring_cis``.
EXPIRY_ATTRS: dict[str, str] = {"Certificate": "not_after", "License": "expires"}
# How each expiry attribute is written by the schema: datetime (``...T..Z``) or date.
EXPIRY_ATTR_KIND: dict[str, str] = {"not_after": "datetime", "expires": "date"}


class InvalidTransitionError(BadInputError):
    """A task state change the lifecycle does not allow (e.g. resolving a cancelled task)."""


class TaskNotFoundError(NotFoundError):
    """No task (or outbox message) with that id."""


@dataclass
class Assignment:
    """Who holds a task and why; person and/or team are CI ids, with names and email for display."""

    person_id: str | None = None
    person_name: str | None = None
    person_email: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    team_email: str | None = None
    queue: str | None = None
    reason: str = ""


@dataclass
class Transition:
    """One entry of a task's log: ``kind`` is "state" (from -> to) or "update" (to == from)."""

    at: str
    actor: str
    from_state: str | None
    to_state: str
    note: str = ""
    kind: str = "state"


@dataclass
class Task:
    id: str
    kind: str
    ci_id: str
    expiry: str
    state: str
    priority: str
    due: str
    created_at: str
    updated_at: str
    ci_name: str | None = None
    threshold: str | None = None
    assignee: Assignment = field(default_factory=Assignment)
    services_at_risk: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    transitions: list[Transition] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.ci_id, self.expiry)


@dataclass
class TaskQuery:
    person: str | None = None
    team: str | None = None
    states: list[str] | None = None
    kinds: list[str] | None = None
    ci_id: str | None = None
    overdue_at: datetime | None = None
    limit: int = 1000
    offset: int = 0


@dataclass
class OutboxMessage:
    """One notification to deliver. ``idempotency_key`` is unique in the store and travels with the
    message (header or payload) so the receiver can drop a repeat."""

    id: str
    channel: str
    recipient: str
    subject: str
    payload: str
    idempotency_key: str
    state: str
    attempts: int
    next_attempt_at: str
    created_at: str
    last_error: str | None = None
    sent_at: str | None = None
    task_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Lease:
    name: str
    holder: str
    expires_at: str


@dataclass
class ExpiringCI:
    id: str
    cls: str
    name: str | None
    status: str
    expiry: str


def iso(dt: datetime) -> str:
    """Fixed-width UTC timestamp, as ``cmdb.store.base.iso`` writes them (``base`` builds ``GraphStore``
    on this module, so this one cannot import it)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def task_key_text(kind: str, ci_id: str, expiry: str) -> str:
    """The composite uniqueness key as one text (U+001F separated: no kind, id or date holds it)."""
    return f"{kind}\x1f{ci_id}\x1f{expiry}"


def task_id_for(kind: str, ci_id: str, expiry: str) -> str:
    """Task ids derive from the uniqueness key: racing raisers compute the same id."""
    return "task-" + hashlib.sha1(task_key_text(kind, ci_id, expiry).encode()).hexdigest()[:10]


def new_task(
    kind: str,
    ci_id: str,
    expiry: str,
    *,
    now: datetime,
    actor: str,
    priority: str,
    due: str,
    ci_name: str | None = None,
    threshold: str | None = None,
    assignee: Assignment | None = None,
    services_at_risk: list[dict[str, Any]] | None = None,
    details: dict[str, Any] | None = None,
    note: str = "raised",
) -> Task:
    """A task ready for ``raise_task``, its first log entry ``None -> open``."""
    if not kind or not ci_id:
        raise BadInputError("a task needs a kind and a CI id")
    at = iso(now)
    return Task(
        id=task_id_for(kind, ci_id, expiry), kind=kind, ci_id=ci_id, expiry=expiry, state="open",
        priority=priority, due=due, created_at=at, updated_at=at, ci_name=ci_name, threshold=threshold,
        assignee=assignee or Assignment(), services_at_risk=list(services_at_risk or []),
        details=dict(details or {}), transitions=[Transition(at, actor, None, "open", note)],
    )


def new_message(
    channel: str,
    recipient: str,
    subject: str,
    payload: str,
    idempotency_key: str,
    *,
    now: datetime,
    task_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> OutboxMessage:
    at = iso(now)
    return OutboxMessage(
        id="msg-" + uuid.uuid4().hex[:12], channel=channel, recipient=recipient, subject=subject,
        payload=payload, idempotency_key=idempotency_key, state="pending", attempts=0, next_attempt_at=at,
        created_at=at, task_id=task_id, meta=dict(meta or {}),
    )


def backoff_delay(attempts: int, base_seconds: float = 30.0, cap_seconds: float = 3600.0) -> timedelta:
    """Exponential backoff: base, 2 x base, 4 x base ... after the ``attempts``-th failure, capped."""
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(0, attempts - 1)))


def check_transition(task: Task, to_state: str) -> None:
    if to_state not in TASK_STATES:
        raise InvalidTransitionError(f"unknown task state {to_state!r}; use one of {', '.join(TASK_STATES)}")
    if to_state not in TRANSITIONS[task.state]:
        allowed = ", ".join(sorted(TRANSITIONS[task.state])) or "none (it is final)"
        raise InvalidTransitionError(
            f"task {task.id} is {task.state}; it cannot become {to_state} (allowed: {allowed})"
        )


def apply_transition(task: Task, to_state: str, actor: str, now: datetime, note: str) -> Task:
    """The pure state change both stores apply inside their write transaction."""
    check_transition(task, to_state)
    at = iso(now)
    task.transitions.append(Transition(at, actor, task.state, to_state, note))
    task.state = to_state
    task.updated_at = at
    return task


_UNSET: Any = object()


def apply_update(task: Task, actor: str, now: datetime, note: str, changes: Mapping[str, Any]) -> Task:
    """Set the given fields; the log entry names what changed (old -> new) after ``note``."""
    said: list[str] = []
    for name, value in changes.items():
        if value is _UNSET or value is None:
            continue
        old = getattr(task, name)
        if old == value:
            continue
        setattr(task, name, value)
        if name == "assignee":
            said.append(f"assignee {_who(old)} -> {_who(value)}")
        elif name in ("priority", "threshold", "due"):
            said.append(f"{name} {old} -> {value}")
        else:
            said.append(f"{name} changed")
    if said or note:
        at = iso(now)
        text = "; ".join([note] * bool(note) + said)
        task.transitions.append(Transition(at, actor, task.state, task.state, text, kind="update"))
        task.updated_at = at
    return task


def _who(a: Assignment) -> str:
    return a.person_name or a.person_id or a.team_name or a.team_id or a.queue or "nobody"


def task_to_dict(task: Task) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(task)


def task_from_dict(d: Mapping[str, Any]) -> Task:
    data = dict(d)
    data["assignee"] = Assignment(**data.get("assignee") or {})
    data["transitions"] = [Transition(**t) for t in data.get("transitions") or []]
    return Task(**data)


def message_from_dict(d: Mapping[str, Any]) -> OutboxMessage:
    return OutboxMessage(**dict(d))


def expiry_bound(attr: str, when: datetime) -> str:
    """``when`` written as the attribute is stored (datetime or date text), for a range compare."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    if EXPIRY_ATTR_KIND.get(attr) == "date":
        return when.date().isoformat()
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_expiry_classes(classes: Mapping[str, str]) -> None:
    for cls, attr in classes.items():
        if EXPIRY_ATTRS.get(cls) != attr:
            indexed = ", ".join(f"{c}.{a}" for c, a in EXPIRY_ATTRS.items())
            raise BadInputError(f"no expiry index for {cls}.{attr}; the stores index {indexed}")


class TaskStore(Protocol):
    """Tasks, outbox, leases and the expiry range filter; see the module docstring."""

    # -- tasks ----------------------------------------------------------------------------------
    def raise_task(self, task: Task) -> tuple[Task, bool]:
        """Insert ``task`` unless one with its (kind, ci_id, expiry) exists; (stored task, created)."""

    def get_task(self, task_id: str) -> Task | None: ...

    def find_tasks(self, keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], Task]:
        """Tasks by (kind, ci_id, expiry), in one look-up."""

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        """Ordered by due date, then id."""

    def transition_task(self, task_id: str, to_state: str, *, actor: str, now: datetime, note: str = "") -> Task:
        """Move a task along its lifecycle; ``InvalidTransitionError`` when not allowed."""

    def update_task(
        self,
        task_id: str,
        *,
        actor: str,
        now: datetime,
        note: str = "",
        priority: str | None = None,
        threshold: str | None = None,
        due: str | None = None,
        assignee: Assignment | None = None,
        services_at_risk: list[dict[str, Any]] | None = None,
        details: dict[str, Any] | None = None,
    ) -> Task:
        """Change fields of a task; recorded as an "update" log entry when anything changed."""

    # -- outbox ---------------------------------------------------------------------------------
    def enqueue_messages(self, messages: Iterable[OutboxMessage]) -> list[bool]:
        """Insert each message unless its idempotency key exists; whether each one was new."""

    def claim_messages(self, now: datetime, limit: int = 50, hold_seconds: float = 300.0) -> list[OutboxMessage]:
        """Pending messages due at ``now``, oldest first: attempts += 1 and next attempt pushed
        ``hold_seconds`` ahead in the same transaction, so a second deliverer does not take them."""

    def mark_sent(self, message_id: str, now: datetime) -> None: ...

    def mark_failed(self, message_id: str, error: str, now: datetime, retry_at: datetime | None) -> OutboxMessage:
        """Record a failed attempt: pending again at ``retry_at``, or dead when it is None."""

    def get_message(self, message_id: str) -> OutboxMessage | None: ...

    def list_messages(self, state: str | None = None, limit: int = 1000) -> list[OutboxMessage]: ...

    def retry_message(self, message_id: str, now: datetime) -> OutboxMessage:
        """A dead (or pending) message becomes pending now with its attempts counted from zero."""

    # -- leases ---------------------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl_seconds: float, now: datetime) -> bool:
        """Take the lease when it is free, expired or already ``holder``'s (then it is extended)."""

    def renew_lease(self, name: str, holder: str, ttl_seconds: float, now: datetime) -> bool:
        """Extend a lease ``holder`` still holds; False when it lapsed to someone else."""

    def release_lease(self, name: str, holder: str) -> None: ...

    def get_lease(self, name: str) -> Lease | None: ...

    # -- expiry range filter -------------------------------------------------------------------
    def expiring_cis(
        self,
        until: datetime,
        since: datetime | None = None,
        classes: Mapping[str, str] | None = None,
        include_retired: bool = False,
    ) -> list[ExpiringCI]:
        """CIs of ``classes`` (class -> expiry attribute, default ``EXPIRY_ATTRS``) whose expiry is
        in [since, until], by an index range scan; ordered by expiry."""

