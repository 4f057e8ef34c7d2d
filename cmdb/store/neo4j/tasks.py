"""``TaskStore`` on Neo4j: tasks, outbox messages and leases as nodes beside the graph.

* ``(:Task {id, tkey, kind, ci_id, expiry, state, due, person, team, data})``: ``tkey`` is the
  composite key (kind, ci_id, expiry) as one text, unique by constraint, so ``MERGE`` on it lets
  exactly one of two racing raisers create the task. ``data`` is the whole record as JSON.
* ``(:OutboxMessage {id, idem_key, state, next_attempt_at, created_at, data})``, unique by
  ``idem_key``; ``(:Lease {name, holder, expires_at})``, unique by name.
* The expiry range filter: every CI of a class in ``EXPIRY_ATTRS`` carries ``exp``, the value of its
  expiry attribute, set by ``_index_expiry`` in the batch's own transaction (a hook at the end of
  ``Neo4jStore._execute``) and backfilled on open and after a restore; a range index on ``CI.exp``
  answers ``expiring_cis`` without touching other CIs.

A read-modify-write (a transition, a claim) first sets a property on the node it changes (or on a
``CmdbMeta`` lock node for claims), so Neo4j's write lock serialises it against a concurrent one.
Every write is a managed transaction (``execute_write``), retried by the driver on transient errors.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, TypeVar

import neo4j

from cmdb.store.base import CIState
from cmdb.store.neo4j.connection import Neo4jConnection
from cmdb.store.sqlite_tasks import TASK_TABLES
from cmdb.store.tasks import (
    EXPIRY_ATTRS,
    Assignment,
    ExpiringCI,
    Lease,
    OutboxMessage,
    Task,
    TaskNotFoundError,
    TaskQuery,
    apply_transition,
    apply_update,
    check_expiry_classes,
    expiry_bound,
    iso,
    message_from_dict,
    task_from_dict,
    task_key_text,
)

_T = TypeVar("_T")
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode

TASK_SCHEMA = {
    "cmdb_task_id": "CREATE CONSTRAINT cmdb_task_id IF NOT EXISTS FOR (n:Task) REQUIRE n.id IS UNIQUE",
    "cmdb_task_key": "CREATE CONSTRAINT cmdb_task_key IF NOT EXISTS FOR (n:Task) REQUIRE n.tkey IS UNIQUE",
    "cmdb_task_due": "CREATE INDEX cmdb_task_due IF NOT EXISTS FOR (n:Task) ON (n.state, n.due)",
    "cmdb_task_person": "CREATE INDEX cmdb_task_person IF NOT EXISTS FOR (n:Task) ON (n.person)",
    "cmdb_task_team": "CREATE INDEX cmdb_task_team IF NOT EXISTS FOR (n:Task) ON (n.team)",
    "cmdb_task_ci": "CREATE INDEX cmdb_task_ci IF NOT EXISTS FOR (n:Task) ON (n.ci_id)",
    "cmdb_outbox_id": "CREATE CONSTRAINT cmdb_outbox_id IF NOT EXISTS FOR (n:OutboxMessage) REQUIRE n.id IS UNIQUE",
    "cmdb_outbox_key":
        "CREATE CONSTRAINT cmdb_outbox_key IF NOT EXISTS FOR (n:OutboxMessage) REQUIRE n.idem_key IS UNIQUE",
    "cmdb_outbox_due":
        "CREATE INDEX cmdb_outbox_due IF NOT EXISTS FOR (n:OutboxMessage) ON (n.state, n.next_attempt_at)",
    "cmdb_lease_name": "CREATE CONSTRAINT cmdb_lease_name IF NOT EXISTS FOR (n:Lease) REQUIRE n.name IS UNIQUE",
    "cmdb_ci_exp": "CREATE INDEX cmdb_ci_exp IF NOT EXISTS FOR (n:CI) ON (n.exp)",
}


def _task_props(t: Task) -> dict[str, Any]:
    return {"id": t.id, "tkey": task_key_text(*t.key), "kind": t.kind, "ci_id": t.ci_id, "expiry": t.expiry,
            "state": t.state, "due": t.due, "person": t.assignee.person_id, "team": t.assignee.team_id,
            "data": _dumps(asdict(t))}


def _msg_props(m: OutboxMessage) -> dict[str, Any]:
    return {"id": m.id, "idem_key": m.idempotency_key, "state": m.state, "next_attempt_at": m.next_attempt_at,
            "created_at": m.created_at, "data": _dumps(asdict(m))}


def _exp_of(cls: str, attrs_json: str) -> str | None:
    attr = EXPIRY_ATTRS.get(cls)
    if attr is None:
        return None
    value = json.loads(attrs_json).get(attr)
    return value if isinstance(value, str) else None


class Neo4jTasks(Neo4jConnection):
    """The store's task part: it fills the connection's extension hooks (schema, batch write, dump, restore)."""

    def _extend_schema(self) -> None:
        super()._extend_schema()
        self._ensure_task_schema()

    def _after_batch_write(self, tx: neo4j.ManagedTransaction, prog: Any) -> None:
        super()._after_batch_write(tx, prog)
        self._index_expiry(tx, prog)

    def _dump_extra(self) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from super()._dump_extra()
        yield from self._dump_tasks()

    def _restore_extra(self, records: Iterable[tuple[str, dict[str, Any]]]) -> Iterable[tuple[str, dict[str, Any]]]:
        return self._restore_tasks(super()._restore_extra(records))

    def _after_restore(self) -> None:
        super()._after_restore()
        self._backfill_expiry()

    def _ensure_task_schema(self) -> None:
        have = {r["name"] for r in self._read("SHOW INDEXES YIELD name RETURN name")}
        missing = [ddl for name, ddl in TASK_SCHEMA.items() if name not in have]
        for ddl in missing:
            self._autocommit(ddl, "creating the task schema")
        if missing:
            self._autocommit("CALL db.awaitIndexes(600)", "waiting for indexes")
        self._backfill_expiry()

    def _backfill_expiry(self) -> None:
        """``exp`` on expiring-class CIs written without it (a restore, an older store); "" when the
        CI has no expiry, so the class index is walked once, not on every open."""
        while True:
            rows = self._read("MATCH (c:CI) WHERE c.class IN $classes AND c.exp IS NULL"
                              " RETURN c.id AS id, c.class AS cls, c.attrs AS attrs LIMIT 5000",
                              classes=list(EXPIRY_ATTRS))
            if not rows:
                return
            sets = [[r["id"], _exp_of(r["cls"], r["attrs"]) or ""] for r in rows]
            def work(tx: neo4j.ManagedTransaction, rows: list[list[str]] = sets) -> None:
                tx.run("UNWIND $rows AS row MATCH (c:CI {id: row[0]}) SET c.exp = row[1]", rows=rows).consume()

            self._in_write(work, "indexing expiry dates")

    def _index_expiry(self, tx: neo4j.ManagedTransaction, prog: Any) -> None:
        """Called at the end of every batch's write transaction: ``exp`` of the batch's new and changed CIs."""
        rows = [[r[0], _exp_of(r[1], r[5]) or ""] for _, group in prog.cis_new for r in group
                if r[1] in EXPIRY_ATTRS]
        # A CI whose class changed away keeps a stale ``exp``: harmless, the query filters on class.
        rows += [[r["id"], _exp_of(r["class"], r["attrs"]) or ""] for _, group in prog.cis_changed for r in group
                 if r["class"] in EXPIRY_ATTRS]
        if rows:
            tx.run("UNWIND $rows AS row MATCH (c:CI {id: row[0]}) SET c.exp = row[1]", rows=rows).consume()

    # -- tasks ----------------------------------------------------------------------------------
    def raise_task(self, task: Task) -> tuple[Task, bool]:
        nonce = uuid.uuid4().hex

        def work(tx: neo4j.ManagedTransaction) -> tuple[Task, bool]:
            rec = tx.run("MERGE (t:Task {tkey: $props.tkey}) ON CREATE SET t += $props, t.nonce = $nonce"
                         " RETURN t.data AS data, t.nonce = $nonce AS created",
                         props=_task_props(task), nonce=nonce).single(strict=True)
            return task_from_dict(json.loads(rec["data"])), bool(rec["created"])

        out: tuple[Task, bool] = self._in_write(work, f"raising task {task.kind} for {task.ci_id}")
        return out

    def get_task(self, task_id: str) -> Task | None:
        rows = self._read("MATCH (t:Task {id: $id}) RETURN t.data AS data", id=task_id)
        return task_from_dict(json.loads(rows[0]["data"])) if rows else None

    def find_tasks(self, keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], Task]:
        texts = [task_key_text(*k) for k in keys]
        if not texts:
            return {}
        rows = self._read("UNWIND $keys AS k MATCH (t:Task {tkey: k}) RETURN t.data AS data", keys=texts)
        tasks = [task_from_dict(json.loads(r["data"])) for r in rows]
        return {t.key: t for t in tasks}

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        where, params = ["true"], dict[str, Any]()
        for name, value in (("person", query.person), ("team", query.team), ("ci_id", query.ci_id)):
            if value is not None:
                where.append(f"t.{name} = ${name}")
                params[name] = value
        if query.states:
            where.append("t.state IN $states")
            params["states"] = list(query.states)
        if query.kinds:
            where.append("t.kind IN $kinds")
            params["kinds"] = list(query.kinds)
        if query.overdue_at is not None:
            where.append("t.due < $overdue AND t.state IN ['open', 'acknowledged']")
            params["overdue"] = iso(query.overdue_at)
        rows = self._read(f"MATCH (t:Task) WHERE {' AND '.join(where)} RETURN t.data AS data"
                          " ORDER BY t.due, t.id SKIP $offset LIMIT $limit",
                          offset=query.offset, limit=query.limit, **params)
        return [task_from_dict(json.loads(r["data"])) for r in rows]

    def _change_task(self, task_id: str, change: Callable[[Task], Task], doing: str) -> Task:
        def work(tx: neo4j.ManagedTransaction) -> Task:
            # SET first: the node's write lock is held before its data is read.
            rec = tx.run("MATCH (t:Task {id: $id}) SET t.locked = true RETURN t.data AS data", id=task_id).single()
            if rec is None:
                raise TaskNotFoundError(f"no task {task_id}; `cmdb tasks list` shows the tasks")
            task = change(task_from_dict(json.loads(rec["data"])))
            props = _task_props(task)
            tx.run("MATCH (t:Task {id: $id}) SET t.state = $p.state, t.due = $p.due, t.person = $p.person,"
                   " t.team = $p.team, t.data = $p.data REMOVE t.locked", id=task_id, p=props).consume()
            return task

        out: Task = self._in_write(work, doing)
        return out

    def transition_task(self, task_id: str, to_state: str, *, actor: str, now: datetime, note: str = "") -> Task:
        return self._change_task(task_id, lambda t: apply_transition(t, to_state, actor, now, note),
                                 f"moving task {task_id} to {to_state}")

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
        changes = {"priority": priority, "threshold": threshold, "due": due, "assignee": assignee,
                   "services_at_risk": services_at_risk, "details": details}
        return self._change_task(task_id, lambda t: apply_update(t, actor, now, note, changes),
                                 f"updating task {task_id}")

    # -- outbox ---------------------------------------------------------------------------------
    def enqueue_messages(self, messages: Iterable[OutboxMessage]) -> list[bool]:
        rows = [{"p": _msg_props(m), "nonce": uuid.uuid4().hex} for m in messages]
        if not rows:
            return []

        def work(tx: neo4j.ManagedTransaction) -> list[bool]:
            rec = tx.run("UNWIND $rows AS row MERGE (m:OutboxMessage {idem_key: row.p.idem_key})"
                         " ON CREATE SET m += row.p, m.nonce = row.nonce"
                         " RETURN collect(m.nonce = row.nonce) AS created", rows=rows).single(strict=True)
            return [bool(x) for x in rec["created"]]

        out: list[bool] = self._in_write(work, f"queueing {len(rows)} message(s)")
        return out

    def claim_messages(self, now: datetime, limit: int = 50, hold_seconds: float = 300.0) -> list[OutboxMessage]:
        at, hold = iso(now), iso(now + timedelta(seconds=hold_seconds))

        def work(tx: neo4j.ManagedTransaction) -> list[OutboxMessage]:
            tx.run("MERGE (l:CmdbMeta {name: 'outbox'}) SET l.claims = coalesce(l.claims, 0) + 1").consume()
            rows = tx.run("MATCH (m:OutboxMessage) WHERE m.state = 'pending' AND m.next_attempt_at <= $at"
                          " RETURN m.data AS data ORDER BY m.next_attempt_at, m.created_at, m.id LIMIT $limit",
                          at=at, limit=limit).data()
            out = []
            for row in rows:
                m = message_from_dict(json.loads(row["data"]))
                m.attempts += 1
                m.next_attempt_at = hold
                out.append(m)
            tx.run("UNWIND $rows AS row MATCH (m:OutboxMessage {id: row.id})"
                   " SET m.next_attempt_at = row.next_attempt_at, m.data = row.data",
                   rows=[_msg_props(m) for m in out]).consume()
            return out

        claimed: list[OutboxMessage] = self._in_write(work, "claiming outbox messages")
        return claimed

    def _change_message(self, message_id: str, change: Callable[[OutboxMessage], None], doing: str) -> OutboxMessage:
        def work(tx: neo4j.ManagedTransaction) -> OutboxMessage:
            rec = tx.run("MATCH (m:OutboxMessage {id: $id}) SET m.locked = true RETURN m.data AS data",
                         id=message_id).single()
            if rec is None:
                raise TaskNotFoundError(f"no outbox message {message_id}; `cmdb outbox list` shows them")
            m = message_from_dict(json.loads(rec["data"]))
            change(m)
            tx.run("MATCH (m:OutboxMessage {id: $p.id}) SET m.state = $p.state, m.next_attempt_at = $p.next_attempt_at,"
                   " m.data = $p.data REMOVE m.locked", p=_msg_props(m)).consume()
            return m

        out: OutboxMessage = self._in_write(work, doing)
        return out

    def mark_sent(self, message_id: str, now: datetime) -> None:
        def change(m: OutboxMessage) -> None:
            m.state, m.sent_at, m.last_error = "sent", iso(now), None

        self._change_message(message_id, change, f"marking message {message_id} sent")

    def mark_failed(self, message_id: str, error: str, now: datetime, retry_at: datetime | None) -> OutboxMessage:
        def change(m: OutboxMessage) -> None:
            m.last_error = error
            if retry_at is None:
                m.state, m.next_attempt_at = "dead", iso(now)
            else:
                m.state, m.next_attempt_at = "pending", iso(retry_at)

        return self._change_message(message_id, change, f"recording a failed delivery of {message_id}")

    def get_message(self, message_id: str) -> OutboxMessage | None:
        rows = self._read("MATCH (m:OutboxMessage {id: $id}) RETURN m.data AS data", id=message_id)
        return message_from_dict(json.loads(rows[0]["data"])) if rows else None

    def list_messages(self, state: str | None = None, limit: int = 1000) -> list[OutboxMessage]:
        where = "WHERE m.state = $state" if state is not None else ""
        rows = self._read(f"MATCH (m:OutboxMessage) {where} RETURN m.data AS data ORDER BY m.created_at, m.id"
                          " LIMIT $limit", state=state, limit=limit)
        return [message_from_dict(json.loads(r["data"])) for r in rows]

    def retry_message(self, message_id: str, now: datetime) -> OutboxMessage:
        def change(m: OutboxMessage) -> None:
            if m.state == "sent":
                raise TaskNotFoundError(f"message {message_id} was delivered at {m.sent_at}; nothing to retry")
            m.state, m.attempts, m.next_attempt_at = "pending", 0, iso(now)

        return self._change_message(message_id, change, f"retrying message {message_id}")

    # -- leases ---------------------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl_seconds: float, now: datetime) -> bool:
        at, until = iso(now), iso(now + timedelta(seconds=ttl_seconds))

        def work(tx: neo4j.ManagedTransaction) -> bool:
            rec = tx.run("MERGE (l:Lease {name: $name}) ON CREATE SET l.holder = $holder, l.expires_at = $until"
                         " SET l.locked = true WITH l"
                         " WHERE l.holder = $holder OR l.expires_at <= $at"
                         " SET l.holder = $holder, l.expires_at = $until RETURN count(l) AS n",
                         name=name, holder=holder, until=until, at=at).single(strict=True)
            tx.run("MATCH (l:Lease {name: $name}) REMOVE l.locked", name=name).consume()
            return int(rec["n"]) == 1

        out: bool = self._in_write(work, f"taking lease {name}")
        return out

    def renew_lease(self, name: str, holder: str, ttl_seconds: float, now: datetime) -> bool:
        until = iso(now + timedelta(seconds=ttl_seconds))

        def work(tx: neo4j.ManagedTransaction) -> bool:
            rec = tx.run("MATCH (l:Lease {name: $name}) SET l.locked = true WITH l"
                         " WHERE l.holder = $holder AND l.expires_at > $at"
                         " SET l.expires_at = $until RETURN count(l) AS n",
                         name=name, holder=holder, until=until, at=iso(now)).single(strict=True)
            tx.run("MATCH (l:Lease {name: $name}) REMOVE l.locked", name=name).consume()
            return int(rec["n"]) == 1

        out: bool = self._in_write(work, f"renewing lease {name}")
        return out

    def release_lease(self, name: str, holder: str) -> None:
        self._in_write(lambda tx: tx.run("MATCH (l:Lease {name: $name, holder: $holder}) DELETE l",
                                         name=name, holder=holder).consume(), f"releasing lease {name}")

    def get_lease(self, name: str) -> Lease | None:
        rows = self._read("MATCH (l:Lease {name: $name}) RETURN l.holder AS holder, l.expires_at AS exp", name=name)
        return Lease(name, rows[0]["holder"], rows[0]["exp"]) if rows else None

    # -- expiry range filter -------------------------------------------------------------------
    def expiring_cis(
        self,
        until: datetime,
        since: datetime | None = None,
        classes: Mapping[str, str] | None = None,
        include_retired: bool = False,
    ) -> list[ExpiringCI]:
        classes = dict(EXPIRY_ATTRS if classes is None else classes)
        check_expiry_classes(classes)
        out: list[ExpiringCI] = []
        for cls, attr in classes.items():
            low = expiry_bound(attr, since) if since is not None else "0"  # "" marks no expiry
            rows = self._read(
                "MATCH (c:CI) USING INDEX c:CI(exp) WHERE c.exp >= $low AND c.exp <= $high AND c.class = $cls"
                + ("" if include_retired else " AND c.status <> 'retired'")
                + " RETURN c.id AS id, c.name AS name, c.status AS status, c.exp AS exp",
                low=low, high=expiry_bound(attr, until), cls=cls,
            )
            out += [ExpiringCI(r["id"], cls, r["name"], r["status"], r["exp"]) for r in rows]
        return sorted(out, key=lambda e: (e.expiry, e.id))

    def get_cis_brief(self, ids: Iterable[str]) -> dict[str, CIState]:
        rows = self._read("UNWIND $ids AS id MATCH (c:CI {id: id}) RETURN c.id AS id, c.class AS cls, c.name AS name,"
                          " c.status AS status, c.attrs AS attrs, c.created_at AS created,"
                          " coalesce(c.updated_at, c.created_at) AS updated", ids=list(ids))
        return {r["id"]: CIState(r["id"], r["cls"], r["name"], r["status"], json.loads(r["attrs"]), r["created"],
                                 r["updated"]) for r in rows}

    def ci_labels(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        rows = self._read("UNWIND $ids AS id MATCH (c:CI {id: id}) RETURN c.id AS id, c.class AS cls, c.name AS name",
                          ids=list(ids))
        return {r["id"]: (r["cls"], r["name"] or r["id"]) for r in rows}

    def explain_expiring(self) -> list[str]:
        """The operators of the plan of one expiry query (the tests check it seeks the index)."""
        with self._driver.session(database=self.database) as session:
            summary = session.run("EXPLAIN MATCH (c:CI) USING INDEX c:CI(exp) WHERE c.exp >= '0' AND c.exp <= '9'"
                                  " AND c.class = 'Certificate' RETURN c.id").consume()
        ops: list[str] = []

        def walk(plan: Any) -> None:
            ops.append(str(plan.get("operatorType", "") if isinstance(plan, dict) else plan.operator_type))
            for child in (plan.get("children", []) if isinstance(plan, dict) else plan.children):
                walk(child)

        if summary.plan is not None:
            walk(summary.plan)
        return ops

    # -- export / restore ------------------------------------------------------------------------
    def _dump_tasks(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Rows shaped like the SQLite tables ``task``, ``outbox``, ``lease``."""
        for r in self._read("MATCH (t:Task) RETURN t {.*} AS t ORDER BY t.created_at, t.id"):
            t = r["t"]
            yield "task", {k: t.get(k) for k in ("id", "kind", "ci_id", "expiry", "state", "due", "person", "team",
                                                  "data")}
        for r in self._read("MATCH (m:OutboxMessage) RETURN m {.*} AS m ORDER BY m.created_at, m.id"):
            m = r["m"]
            yield "outbox", {"id": m["id"], "idem_key": m["idem_key"], "state": m["state"],
                             "next_attempt_at": m["next_attempt_at"], "created_at": m["created_at"], "data": m["data"]}
        for r in self._read("MATCH (l:Lease) RETURN l.name AS name, l.holder AS holder, l.expires_at AS expires_at"):
            yield "lease", dict(r)

    def _restore_tasks(self, records: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Pass every record through but the task tables', which are written here as they go by."""
        pending: dict[str, list[dict[str, Any]]] = {t: [] for t in TASK_TABLES}
        queries = {
            "task": "UNWIND $rows AS row CREATE (t:Task) SET t = row,"
                    " t.tkey = row.kind + '\u001f' + row.ci_id + '\u001f' + row.expiry",
            "outbox": "UNWIND $rows AS row CREATE (m:OutboxMessage) SET m = row",
            "lease": "UNWIND $rows AS row CREATE (l:Lease) SET l = row",
        }
        for kind, row in records:
            if kind not in pending:
                yield kind, row
                continue
            pending[kind].append(dict(row))
            if len(pending[kind]) >= 5000:
                self._restore_write(queries[kind], pending[kind])
                pending[kind] = []
        for kind, rows in pending.items():
            if rows:
                self._restore_write(queries[kind], rows)
