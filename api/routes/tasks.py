"""``/tasks``, ``/outbox`` and ``/licences``: the tasks issue's work over HTTP, as ``cmdb tasks`` and
``cmdb licences --json`` show it.

Every read and transition calls the task store (``cmdb.store.tasks.TaskStore``) or ``impact.licences``,
as the CLI does. A task whose CI the caller's partitions hide answers 404 in the very words of a
missing one; the outbox (recipients, payloads) is for operators and admins only.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from api.auth import Principal, require
from api.problems import ConflictError, responses
from api.state import ApiState, api_state
from api.visibility import visible_ids
from cmdb.errors import BadInputError
from cmdb.history import resolve_ci
from cmdb.store.tasks import MESSAGE_STATES, TASK_STATES, InvalidTransitionError, Task, TaskNotFoundError, TaskQuery
from impact.licences import licence_usage

router = APIRouter(tags=["Tasks, outbox and licences"], responses=responses(400, 401, 403, 422, 500, 503))
StateDep = Annotated[ApiState, Depends(api_state)]
Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
OPEN_STATES = ["open", "acknowledged"]
MAX_OFFSET = 1_000_000_000  # beyond any task table; bounds the SQL integer
MOVES = {"ack": "acknowledged", "resolve": "resolved", "cancel": "cancelled"}


class TaskNote(BaseModel):
    note: str = Field("", max_length=4000, description="Why; recorded with the transition.")


def _missing(task_id: str) -> TaskNotFoundError:
    return TaskNotFoundError(f"no task {task_id!r}; GET /api/v1/tasks lists them")


def visible_task(st: ApiState, who: Principal, task_id: str) -> Task:
    """The task, or the one 404 of a missing task when its CI is hidden from the caller."""
    task = st.store.get_task(task_id)
    if task is None or not visible_ids(st.store, who, [task.ci_id]):
        raise _missing(task_id)
    return task


@router.get("/tasks", summary="Tasks by due date; open and acknowledged ones unless state says otherwise",
            responses=responses(404))
def list_tasks(
    st: StateDep, who: Viewer,
    mine: Annotated[str | None, Query(description="Tasks assigned to the person with this e-mail.")] = None,
    team: Annotated[str | None, Query(description="Tasks of this team (CI id, name or identity value).")] = None,
    state: Annotated[list[str] | None, Query(description="open, acknowledged, resolved, cancelled.")] = None,
    overdue: Annotated[bool, Query(description="Only tasks past their due time (now).")] = False,
    kind: Annotated[str | None, Query(description="e.g. certificate_expiry, licence_compliance.")] = None,
    ci: Annotated[str | None, Query(description="Tasks of this CI (id, name or identity value).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="next_offset of the previous page.")] = 0,
) -> dict[str, Any]:
    for s in state or []:
        if s not in TASK_STATES:
            raise BadInputError(f"state {s!r}: use one of {', '.join(TASK_STATES)}")
    query = TaskQuery(states=list(state) if state else list(OPEN_STATES), kinds=[kind] if kind else None,
                      overdue_at=datetime.now(UTC) if overdue else None, limit=limit, offset=offset)
    if mine:
        query.person = resolve_ci(st.store, st.schema, mine)
    if team:
        query.team = resolve_ci(st.store, st.schema, team)
    if ci:
        query.ci_id = resolve_ci(st.store, st.schema, ci)
    page = st.store.list_tasks(query)
    seen = visible_ids(st.store, who, {t.ci_id for t in page})
    return {"items": [asdict(t) for t in page if t.ci_id in seen],
            "next_offset": offset + len(page) if len(page) == limit else None}


@router.get("/tasks/{task_id}", summary="One task with its assignee, services at risk and transitions",
            responses=responses(404))
def get_task(st: StateDep, who: Viewer, task_id: str) -> dict[str, Any]:
    return asdict(visible_task(st, who, task_id))


def _move(st: ApiState, who: Principal, task_id: str, action: str, note: str) -> dict[str, Any]:
    visible_task(st, who, task_id)
    try:
        task = st.store.transition_task(task_id, MOVES[action], actor=who.name, now=datetime.now(UTC), note=note)
    except InvalidTransitionError as exc:  # the task's state, not the request, is in the way
        raise ConflictError(str(exc)) from exc
    return asdict(task)


NoteBody = Annotated[TaskNote | None, Body()]


@router.post("/tasks/{task_id}/ack", summary="Acknowledge a task: someone is on it", responses=responses(404, 409))
def ack_task(st: StateDep, who: Operator, task_id: str, body: NoteBody = None) -> dict[str, Any]:
    return _move(st, who, task_id, "ack", body.note if body else "")


@router.post("/tasks/{task_id}/resolve", summary="Resolve a task", responses=responses(404, 409))
def resolve_task(st: StateDep, who: Operator, task_id: str, body: NoteBody = None) -> dict[str, Any]:
    return _move(st, who, task_id, "resolve", body.note if body else "")


@router.post("/tasks/{task_id}/cancel", summary="Cancel a task that needs no action",
             responses=responses(404, 409))
def cancel_task(st: StateDep, who: Operator, task_id: str, body: NoteBody = None) -> dict[str, Any]:
    return _move(st, who, task_id, "cancel", body.note if body else "")


@router.get("/outbox", summary="Notifications to deliver, delivered or given up (dead)")
def list_outbox(st: StateDep, who: Operator,
                state: Annotated[str | None, Query(description="pending, sent or dead.")] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    if state is not None and state not in MESSAGE_STATES:
        raise BadInputError(f"state {state!r}: use one of {', '.join(MESSAGE_STATES)}")
    return [asdict(m) for m in st.store.list_messages(state, limit)]


@router.post("/outbox/{message_id}/retry", summary="Deliver a dead or pending message again, from now",
             responses=responses(404))
def retry_outbox(st: StateDep, who: Operator, message_id: str) -> dict[str, Any]:
    return asdict(st.store.retry_message(message_id, datetime.now(UTC)))


@router.get("/licences", summary="Licences: seats entitled and used, over/under, expiry (cmdb licences --json)")
def licences(st: StateDep, who: Viewer,
             product: Annotated[str | None, Query(description="Only licences of this product.")] = None,
             ) -> dict[str, Any]:
    usages = licence_usage(st.store, product)
    if who.partitions is None:
        return {"licences": [u.to_dict() for u in usages]}
    seen = visible_ids(st.store, who, {u.id for u in usages} | {c for u in usages for c in u.consumers})
    return {"licences": [{**u.to_dict(), "consumers": [c for c in u.consumers if c in seen]}
                         for u in usages if u.id in seen]}
